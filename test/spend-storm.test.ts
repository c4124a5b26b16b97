import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../src/db/client.ts";
import { alertId, alertsOfCharge } from "../src/domain/alerts.ts";
import { REDIS_TEST_URL, TEST_PROVIDER } from "./helpers/databases.ts";
import { createTestDatabase } from "./helpers/gateway.ts";
import { createAgent, postJson } from "./helpers/http.ts";
import { gqlAt, redisPrefix, startInstance, type Instance } from "./helpers/instances.ts";
import { checkInvariants } from "./helpers/invariants.ts";
import { createServicesForTests } from "./helpers/services.ts";
import { SEND } from "./helpers/storm.ts";

/**
 * A concurrent storm of sends with limits, budgets and the team's low-balance
 * threshold all crossed during it (README.md, "Budgets and alerts"): on
 * SQLite one gateway, on PostgreSQL two sharing one database and Redis. No
 * budget or credit limit is ever exceeded; every alert is raised exactly once
 * per crossing, counted against the crossings recomputed from the ledger with
 * the rule's own definition (src/domain/alerts.ts); the reports equal the
 * ledger to the cent. SPEND_STORM_SENDS makes it larger.
 */

const SENDS = Number(process.env.SPEND_STORM_SENDS ?? 2_400);
const TEAM_BALANCE = 30_000;
const LOW_BALANCE = 28_500;

/** Mixed channels and prices: 1, 2, 4 cents (SMS), 1 (email), 1 (telegram), 5 (WhatsApp to the UK). */
const VARIANTS = [
  { to: "+14155550100", text: "Your code is 123456" },
  { to: "+14155550101", text: "x".repeat(200) },
  { to: "+447700900123", text: "Hello from London" },
  { to: "ana@example.com", text: "A receipt" },
  { to: "123456789", text: "A chat" },
  { to: "+447700900124", text: "On WhatsApp", channel: "WHATSAPP" },
];

/** Each sub-account's limits: every kind crossed during the storm. */
const SHAPES = [
  { name: "Limited", creditLimit: 300, alertThresholds: [50, 80, 100] },
  { name: "Daily budget", budget: { amount: 250, period: "DAY" }, alertThresholds: [25, 75, 100] },
  { name: "Both", creditLimit: 400, budget: { amount: 350, period: "MONTH" } },
  { name: "Weekly budget", budget: { amount: 500, period: "WEEK" }, alertThresholds: [90] },
  { name: "Tight limit", creditLimit: 40 },
  { name: "Unlimited" },
];

describe(`a storm of sends crossing limits, budgets and the low balance (${TEST_PROVIDER})`, () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Database;
  let instances: Instance[];

  beforeAll(async () => {
    database = await createTestDatabase();
    const env = {
      DATABASE_URL: database.url,
      DEMO_TEAM: "false",
      RATE_LIMIT_RPS: "0",
      ...(TEST_PROVIDER === "postgresql" ? { REDIS_URL: REDIS_TEST_URL, REDIS_PREFIX: redisPrefix() } : {}),
    };
    instances = TEST_PROVIDER === "postgresql" ? await Promise.all([startInstance(env), startInstance(env)]) : [await startInstance(env)];
    db = openDatabase(database.url);
  }, 120_000);
  afterAll(async () => {
    await Promise.all((instances ?? []).map((instance) => instance.stop()));
    await db?.close();
    await database?.drop();
  });

  it(`${SENDS} concurrent sends: nothing exceeded, each alert once per crossing, reports equal to the ledger`, { timeout: 300_000 }, async () => {
    const services = createServicesForTests(db);
    const team = await services.teams.createTeam({ name: "Storm team", balance: TEAM_BALANCE });
    const urls = instances.map((instance) => instance.url);
    expect((await gqlAt(urls[0]!, team.apiKey, `mutation { updateTeam(input: { lowBalanceThreshold: ${LOW_BALANCE} }) { id } }`)).status).toBe(200);
    const accounts: { id: string; key: string }[] = [];
    for (const shape of SHAPES) {
      const created = await gqlAt(urls[0]!, team.apiKey, `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`, { input: shape });
      expect(created.body.errors).toBeUndefined();
      accounts.push({ id: created.body.data.createSubAccount.subAccount.id, key: created.body.data.createSubAccount.apiKey });
    }

    const agents = urls.map(() => createAgent(32));
    const outcomes = await Promise.all(
      Array.from({ length: SENDS }, async (_, index) => {
        const target = index % urls.length;
        const account = accounts[index % accounts.length]!;
        const input = VARIANTS[Math.floor(index / accounts.length) % VARIANTS.length]!;
        const response = await postJson(`${urls[target]}/graphql`, { query: SEND, variables: { input } }, { authorization: `Bearer ${account.key}` }, agents[target]!);
        return { status: response.status, code: response.body.errors?.[0]?.extensions?.code as string | undefined };
      }),
    );
    agents.forEach((agent) => agent.destroy());
    const statuses = new Set(outcomes.map((o) => (o.status === 200 ? "charged" : o.code)));
    expect(statuses).toEqual(new Set(["charged", "credit_limit_exceeded", "budget_exceeded"]));

    await checkInvariants(db, team.team.id);
    await expectAlertsMatchLedger(db, team.team.id);
    await expectReportsMatchLedger(db, urls[urls.length - 1]!, team.apiKey, team.team.id);
  });
});

/** Every alert of the team is exactly one crossing recomputed from its ledger, and every crossing has its alert. */
async function expectAlertsMatchLedger(db: Database, teamId: string): Promise<void> {
  const [ledger, accounts, alerts] = await Promise.all([
    db.prisma.ledgerEntry.findMany({ where: { teamId, kind: "charge" }, orderBy: [{ accountId: "asc" }, { sequence: "asc" }] }),
    db.prisma.account.findMany({ where: { teamId } }),
    db.prisma.spendAlert.findMany({ where: { teamId } }),
  ]);
  const team = await db.prisma.team.findUniqueOrThrow({ where: { id: teamId } });
  const kindOf = new Map(accounts.map((account) => [account.id, account]));
  const expected = ledger.flatMap((entry) => {
    const account = kindOf.get(entry.accountId!)!;
    const crossings = alertsOfCharge({
      cost: entry.amount,
      totalSpentAfter: entry.totalSpentAfter!,
      creditLimit: entry.creditLimit,
      periodSpentAfter: entry.periodSpentAfter,
      budgetAmount: entry.budgetAmount,
      thresholds: (account.alertThresholds as number[] | null) ?? null,
      balanceAfter: entry.balanceAfter,
      lowBalanceThreshold: team.lowBalanceThreshold,
      isSubAccount: account.kind === "sub",
    });
    return crossings.map((crossing) => `${alertId(entry.messageId!, crossing)} ${crossing.kind} ${crossing.thresholdPercent} ${crossing.threshold} ${crossing.value}`);
  });
  const raised = alerts.map((alert) => `${alert.id} ${alert.kind} ${alert.thresholdPercent} ${alert.threshold} ${alert.value}`);
  expect(raised.sort()).toEqual(expected.sort());
  const kinds = new Set(alerts.map((alert) => alert.kind));
  expect(kinds, "the storm crossed every kind of threshold").toEqual(new Set(["credit_limit", "budget", "low_balance"]));
  expect(alerts.filter((alert) => alert.kind === "low_balance")).toHaveLength(1);
}

/** The reports, by account and channel, equal the ledger (joined with its messages' channels) to the cent. */
async function expectReportsMatchLedger(db: Database, url: string, mainKey: string, teamId: string): Promise<void> {
  const today = new Date(new Date().toISOString().slice(0, 10));
  const from = new Date(today.getTime() - 86_400_000).toISOString();
  const to = new Date(today.getTime() + 2 * 86_400_000).toISOString();
  const report = await gqlAt(url, mainKey, `query($from: DateTime!, $to: DateTime!) { spendReport(from: $from, to: $to, groupBy: [ACCOUNT, CHANNEL]) { rows { accountId channel messages amount } total { messages amount } } }`, { from, to });
  expect(report.body.errors).toBeUndefined();
  const entries = await db.prisma.ledgerEntry.findMany({ where: { teamId, kind: "charge" }, select: { accountId: true, amount: true, messageId: true } });
  const channels = new Map((await db.prisma.message.findMany({ where: { teamId }, select: { id: true, channel: true } })).map((m) => [m.id, m.channel]));
  const expected = new Map<string, { messages: number; amount: number }>();
  for (const entry of entries) {
    const group = `${entry.accountId} ${channels.get(entry.messageId!)!.toUpperCase()}`;
    const sum = expected.get(group) ?? { messages: 0, amount: 0 };
    expected.set(group, { messages: sum.messages + 1, amount: sum.amount + Number(entry.amount) });
  }
  const rows = report.body.data.spendReport.rows as { accountId: string; channel: string; messages: number; amount: number }[];
  expect(new Map(rows.map((row) => [`${row.accountId} ${row.channel}`, { messages: row.messages, amount: row.amount }]))).toEqual(expected);
  expect(report.body.data.spendReport.total).toEqual({ messages: entries.length, amount: entries.reduce((sum, entry) => sum + Number(entry.amount), 0) });
}
