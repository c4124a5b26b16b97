import type { Database } from "../../src/db/client.ts";

export interface InvariantReport {
  teamBalance: bigint;
  topUps: bigint;
  charges: bigint;
  chargeEntries: number;
  accounts: { id: string; totalSpent: bigint; creditLimit: bigint | null; ledgerSum: bigint; chargeCount: number; ledgerEntries: number }[];
}

/**
 * Reads the team's state and checks every invariant of README.md's "Messages and charging"
 * and "Budgets and alerts", throwing with the first one broken: the balance is the top-ups
 * minus the charges; each account's ledger, and its daily spend totals, sum to its
 * totalSpent; the team's daily totals sum to its ledger; no limit or budget is exceeded;
 * charge and alert sequences have no gap and no repeat.
 */
export async function checkInvariants(db: Database, teamId: string): Promise<InvariantReport> {
  // One snapshot: a charge committing between separate reads (one still running on the database
  // after its gateway was killed, say) would otherwise look like a broken invariant.
  const [team, ledger, accounts, chargedMessages, daily, alerts, teamDaily] = await db.prisma.$transaction(
    [
      db.prisma.team.findUniqueOrThrow({ where: { id: teamId } }),
      db.prisma.ledgerEntry.findMany({ where: { teamId } }),
      db.prisma.account.findMany({ where: { teamId } }),
      db.prisma.message.count({ where: { teamId, isTestMode: false } }),
      db.prisma.spendDaily.findMany({ where: { teamId } }),
      db.prisma.spendAlert.findMany({ where: { teamId }, select: { sequence: true } }),
      db.prisma.teamSpendDaily.findMany({ where: { teamId } }),
    ],
    { isolationLevel: (db.provider === "postgresql" ? "RepeatableRead" : "Serializable") as "Serializable" },
  );
  const sum = (entries: typeof ledger) => entries.reduce((total, entry) => total + entry.amount, 0n);
  const topUps = sum(ledger.filter((entry) => entry.kind === "top_up"));
  const chargeEntries = ledger.filter((entry) => entry.kind === "charge");
  const charges = sum(chargeEntries);
  const fail = (message: string): never => {
    throw new Error(`invariant broken: ${message}`);
  };
  if (team.balance < 0n) fail(`team balance ${team.balance} < 0`);
  if (team.balance !== topUps - charges) fail(`balance ${team.balance} != top-ups ${topUps} - charges ${charges}`);
  const messageIds = new Set(chargeEntries.map((entry) => entry.messageId));
  if (messageIds.size !== chargeEntries.length) fail("a message was charged twice");
  if (chargedMessages !== chargeEntries.length) fail(`${chargedMessages} live messages but ${chargeEntries.length} charges`);
  const dailySum = daily.reduce((total, row) => total + row.amount, 0n);
  if (dailySum !== charges) fail(`daily spend totals ${dailySum} != the ledger's charges ${charges}`);
  const dailyMessages = daily.reduce((total, row) => total + row.messages, 0);
  if (dailyMessages !== chargeEntries.length) fail(`daily spend totals count ${dailyMessages} messages, the ledger ${chargeEntries.length} charges`);
  checkTeamDailyTotals(daily, teamDaily, fail);
  const alertSequences = alerts.map((alert) => alert.sequence).sort((a, b) => a - b);
  if (alertSequences.length !== team.alertCount || alertSequences.some((sequence, index) => sequence !== index + 1)) {
    fail(`the team's alert sequence has a gap or repeat (${alertSequences.length} alerts, alertCount ${team.alertCount})`);
  }
  const report: InvariantReport["accounts"] = [];
  for (const account of accounts) {
    const own = chargeEntries.filter((entry) => entry.accountId === account.id);
    const ledgerSum = sum(own);
    if (ledgerSum !== account.totalSpent) fail(`account ${account.id}: ledger ${ledgerSum} != totalSpent ${account.totalSpent}`);
    const ownDaily = daily.filter((row) => row.accountId === account.id).reduce((total, row) => total + row.amount, 0n);
    if (ownDaily !== account.totalSpent) fail(`account ${account.id}: daily spend totals ${ownDaily} != totalSpent ${account.totalSpent}`);
    if (account.budgetAmount !== null && account.periodSpent > account.budgetAmount) {
      fail(`account ${account.id}: periodSpent ${account.periodSpent} > budget ${account.budgetAmount}`);
    }
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

type DailyTotals = { day: string; channel: string; messages: number; segments: number; amount: bigint };

/** The team's own daily totals are the sum of its accounts' for every day and channel. */
function checkTeamDailyTotals(daily: DailyTotals[], teamDaily: DailyTotals[], fail: (message: string) => never): void {
  const summed = new Map<string, { messages: number; segments: number; amount: bigint }>();
  for (const row of daily) {
    const key = `${row.day} ${row.channel}`;
    const sum = summed.get(key) ?? { messages: 0, segments: 0, amount: 0n };
    summed.set(key, { messages: sum.messages + row.messages, segments: sum.segments + row.segments, amount: sum.amount + row.amount });
  }
  if (summed.size !== teamDaily.length) fail(`the team has ${teamDaily.length} daily totals, its accounts ${summed.size} days and channels`);
  for (const row of teamDaily) {
    const sum = summed.get(`${row.day} ${row.channel}`);
    if (!sum || sum.messages !== row.messages || sum.segments !== row.segments || sum.amount !== row.amount) {
      fail(`the team's totals of ${row.day} ${row.channel} (${row.amount}) are not its accounts' (${sum?.amount ?? "none"})`);
    }
  }
}
