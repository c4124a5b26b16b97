import { openDatabase, type Database } from "../src/db/client.ts";
import { checkInvariants } from "../test/helpers/invariants.ts";

export interface InvariantCheck {
  teamId: string;
  /** Zero when every invariant of README.md's "Messages and charging" holds. */
  violations: number;
  message: string | null;
  charges: number;
  balance: number;
}

/**
 * The load generator stops at its deadline without waiting for the requests in
 * flight, which the gateway still completes: wait until the team's ledger
 * stops growing, since the checker's reads are not one snapshot.
 */
async function settled(db: Database, teamId: string): Promise<void> {
  let previous = -1;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const count = await db.prisma.ledgerEntry.count({ where: { teamId } });
    if (count === previous) return;
    previous = count;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`team ${teamId}: charges still arriving after 50 s`);
}

/** Charges in the team's ledger now (after the in-flight ones land). */
export async function countCharges(databaseUrl: string, teamId: string): Promise<number> {
  const db = openDatabase(databaseUrl);
  try {
    await settled(db, teamId);
    return await db.prisma.ledgerEntry.count({ where: { teamId, kind: "charge" } });
  } finally {
    await db.close();
  }
}

/** The charge invariants for one team (the tests' own checker), read straight from the database. */
export async function checkTeam(databaseUrl: string, teamId: string): Promise<InvariantCheck> {
  const db = openDatabase(databaseUrl);
  try {
    await settled(db, teamId);
    const report = await checkInvariants(db, teamId);
    return { teamId, violations: 0, message: null, charges: report.chargeEntries, balance: Number(report.teamBalance) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (!message.startsWith("invariant broken")) throw error;
    return { teamId, violations: 1, message, charges: Number.NaN, balance: Number.NaN };
  } finally {
    await db.close();
  }
}
