import type { Database } from "../../src/db/client.ts";

export interface InvariantReport {
  teamBalance: bigint;
  topUps: bigint;
  charges: bigint;
  chargeEntries: number;
  accounts: { id: string; totalSpent: bigint; creditLimit: bigint | null; ledgerSum: bigint; chargeCount: number; ledgerEntries: number }[];
}

/**
 * Reads the team's state and checks every invariant of DESIGN.md section 2,
 * throwing with the first one broken.
 */
export async function checkInvariants(db: Database, teamId: string): Promise<InvariantReport> {
  // One snapshot: a charge committing between separate reads (one still running on the database
  // after its gateway was killed, say) would otherwise look like a broken invariant.
  const [team, ledger, accounts, chargedMessages] = await db.prisma.$transaction(
    [
      db.prisma.team.findUniqueOrThrow({ where: { id: teamId } }),
      db.prisma.ledgerEntry.findMany({ where: { teamId } }),
      db.prisma.account.findMany({ where: { teamId } }),
      db.prisma.message.count({ where: { teamId, isTestMode: false } }),
    ],
    { isolationLevel: (db.provider === "postgresql" ? "RepeatableRead" : "Serializable") as "Serializable" },
  );
  const sum = (entries: typeof ledger) => entries.reduce((total, entry) => total + entry.amount, 0n);
  const topUps = sum(ledger.filter((entry) => entry.kind === "top_up"));
  const chargeEntries = ledger.filter((entry) => entry.kind === "charge");
  const charges = sum(chargeEntries);
  const fail = (message: string) => {
    throw new Error(`invariant broken: ${message}`);
  };
  if (team.balance < 0n) fail(`team balance ${team.balance} < 0`);
  if (team.balance !== topUps - charges) fail(`balance ${team.balance} != top-ups ${topUps} - charges ${charges}`);
  const messageIds = new Set(chargeEntries.map((entry) => entry.messageId));
  if (messageIds.size !== chargeEntries.length) fail("a message was charged twice");
  if (chargedMessages !== chargeEntries.length) fail(`${chargedMessages} live messages but ${chargeEntries.length} charges`);
  const report: InvariantReport["accounts"] = [];
  for (const account of accounts) {
    const own = chargeEntries.filter((entry) => entry.accountId === account.id);
    const ledgerSum = sum(own);
    if (ledgerSum !== account.totalSpent) fail(`account ${account.id}: ledger ${ledgerSum} != totalSpent ${account.totalSpent}`);
    if (account.creditLimit !== null && account.totalSpent > account.creditLimit) {
      fail(`account ${account.id}: totalSpent ${account.totalSpent} > creditLimit ${account.creditLimit}`);
    }
    if (own.length !== account.chargeCount) fail(`account ${account.id}: ${own.length} entries but chargeCount ${account.chargeCount}`);
    const sequences = own.map((entry) => entry.sequence).sort((a, b) => (a ?? 0) - (b ?? 0));
    sequences.forEach((sequence, index) => {
      if (sequence !== index + 1) fail(`account ${account.id}: charge sequence has a gap or repeat at ${index + 1}`);
    });
    report.push({ id: account.id, totalSpent: account.totalSpent, creditLimit: account.creditLimit, ledgerSum, chargeCount: account.chargeCount, ledgerEntries: own.length });
  }
  return { teamBalance: team.balance, topUps, charges, chargeEntries: chargeEntries.length, accounts: report };
}
