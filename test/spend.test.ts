import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyError, startGateway, type TestGateway } from "./helpers/gateway.ts";
import { checkInvariants } from "./helpers/invariants.ts";
import { subscribeSse, subscribeWs } from "./helpers/subscriptions.ts";

/**
 * Spend you can see coming (README.md, "Spend reports", "Budgets and alerts"):
 * budgets that renew by UTC day, week (from Monday) and month, decided inside
 * the charge; alerts raised exactly once per crossing; reports from the daily
 * totals, equal to the ledger.
 */

const CREATE = `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateSubAccountInput!) { updateSubAccount(id: $id, input: $input) { id budget { amount period spent periodStart resetsAt remaining } alertThresholds } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id cost } }`;
const BUDGET = `{ balance { totalSpent budget { amount period spent periodStart resetsAt remaining } } }`;
const ALERTS = `query($id: ID, $kind: SpendAlertKind) { spendAlerts(first: 50, subAccountId: $id, kind: $kind) { edges { node { id kind thresholdPercent threshold value messageId sequence subAccount { id } subAccountId } } } }`;

/** 1 cent each: an SMS of one GSM-7 segment to the US with the built-in price table. */
const ONE_CENT = { to: "+14155550100", text: "one cent" };

describe("budgets that renew", () => {
  let gw: TestGateway;
  let mainKey: string;

  beforeAll(async () => {
    gw = await startGateway();
    ({ mainKey } = await gw.createTeam({ balance: 100_000 }));
  });
  afterAll(() => gw?.close());

  async function subAccount(input: Record<string, unknown>) {
    const created = await gw.gql(CREATE, { input: { name: "Budgeted", ...input } }, mainKey);
    expect(created.errors).toBeUndefined();
    return { id: created.data.createSubAccount.subAccount.id as string, key: created.data.createSubAccount.apiKey as string };
  }
  const send = (key: string) => gw.gql(SEND, { input: ONE_CENT }, key);

  it("a MONTH budget: spend in one month does not count against the next; the first charge of a new month is allowed after an exhausted one", async () => {
    gw.clock.set(new Date("2026-01-31T23:00:00Z"));
    const sub = await subAccount({ budget: { amount: 3, period: "MONTH" } });
    for (let i = 0; i < 3; i += 1) expect((await send(sub.key)).status).toBe(200);
    const refused = await send(sub.key);
    expect(refused.status).toBe(402);
    expect(onlyError(refused).extensions).toEqual({
      code: "budget_exceeded",
      details: { cost: 1, periodSpent: 3, budget: 3, period: "month", resetsAt: "2026-02-01T00:00:00.000Z" },
    });
    expect((await gw.gql(BUDGET, {}, sub.key)).data.balance.budget).toEqual({
      amount: 3, period: "MONTH", spent: 3, periodStart: "2026-01-01T00:00:00.000Z", resetsAt: "2026-02-01T00:00:00.000Z", remaining: 0,
    });
    gw.clock.set(new Date("2026-02-01T00:00:00Z"));
    // The new month, before any charge in it: nothing spent yet, though nothing was reset by a timer.
    expect((await gw.gql(BUDGET, {}, sub.key)).data.balance.budget).toMatchObject({ spent: 0, periodStart: "2026-02-01T00:00:00.000Z", remaining: 3 });
    expect((await send(sub.key)).status).toBe(200);
    const row = await gw.db.prisma.account.findUniqueOrThrow({ where: { id: sub.id } });
    expect({ periodSpent: row.periodSpent, periodStart: row.periodStart?.toISOString(), totalSpent: row.totalSpent }).toEqual({ periodSpent: 1n, periodStart: "2026-02-01T00:00:00.000Z", totalSpent: 4n });
  });

  it("a WEEK starts on Monday 00:00 UTC; a DAY at midnight UTC", async () => {
    gw.clock.set(new Date("2026-11-29T23:59:00Z")); // a Sunday
    const weekly = await subAccount({ budget: { amount: 1, period: "WEEK" } });
    const daily = await subAccount({ budget: { amount: 1, period: "DAY" } });
    expect((await gw.gql(BUDGET, {}, weekly.key)).data.balance.budget).toMatchObject({ periodStart: "2026-11-23T00:00:00.000Z", resetsAt: "2026-11-30T00:00:00.000Z" });
    for (const sub of [weekly, daily]) {
      expect((await send(sub.key)).status).toBe(200);
      expect(onlyError(await send(sub.key)).extensions.code).toBe("budget_exceeded");
    }
    gw.clock.set(new Date("2026-11-30T00:00:00Z")); // Monday
    for (const sub of [weekly, daily]) expect((await send(sub.key)).status).toBe(200);
    gw.clock.set(new Date("2026-12-01T00:00:00Z")); // Tuesday: a new day, the same week
    expect((await send(daily.key)).status).toBe(200);
    expect(onlyError(await send(weekly.key)).extensions.details).toMatchObject({ periodSpent: 1, budget: 1, period: "week", resetsAt: "2026-12-07T00:00:00.000Z" });
  });

  it("a budget set mid-period counts what the period had already charged; null removes it; the credit limit still applies", async () => {
    gw.clock.set(new Date("2026-03-10T12:00:00Z"));
    const sub = await subAccount({ creditLimit: 10 });
    for (let i = 0; i < 4; i += 1) await send(sub.key);
    gw.clock.set(new Date("2026-03-12T12:00:00Z"));
    const set = await gw.gql(UPDATE, { id: sub.id, input: { budget: { amount: 5, period: "MONTH" } } }, mainKey);
    expect(set.data.updateSubAccount.budget).toMatchObject({ amount: 5, spent: 4, remaining: 1 });
    expect((await send(sub.key)).status).toBe(200);
    expect(onlyError(await send(sub.key)).extensions.code).toBe("budget_exceeded");
    const removed = await gw.gql(UPDATE, { id: sub.id, input: { budget: null } }, mainKey);
    expect(removed.data.updateSubAccount.budget).toBeNull();
    for (let i = 0; i < 5; i += 1) expect((await send(sub.key)).status).toBe(200);
    expect(onlyError(await send(sub.key)).extensions.code).toBe("credit_limit_exceeded");
  });

  it("refuses bad budgets and thresholds with the field at fault, changing nothing", async () => {
    const sub = await subAccount({});
    for (const [input, field] of [
      [{ budget: { amount: 0, period: "DAY" } }, "input.budget.amount"],
      [{ alertThresholds: [0] }, "input.alertThresholds.0"],
      [{ alertThresholds: [101] }, "input.alertThresholds.0"],
      [{ alertThresholds: [10, 20, 30, 40, 50, 60] }, "input.alertThresholds"],
      [{ alertThresholds: [] }, "input.alertThresholds"],
    ] as const) {
      const refused = await gw.gql(UPDATE, { id: sub.id, input }, mainKey);
      expect(onlyError(refused).extensions).toMatchObject({ code: "invalid_request", details: { field } });
    }
    const row = await gw.db.prisma.account.findUniqueOrThrow({ where: { id: sub.id } });
    expect([row.budgetAmount, row.alertThresholds]).toEqual([null, null]);
  });
});

describe("alerts, raised exactly once per crossing", () => {
  let gw: TestGateway;
  let mainKey: string;

  beforeAll(async () => {
    gw = await startGateway();
    ({ mainKey } = await gw.createTeam({ balance: 1_000 }));
  });
  afterAll(() => gw?.close());

  it("credit limit thresholds fire once each, 100% when the limit is exactly reached; raising the limit re-arms them", async () => {
    const created = await gw.gql(CREATE, { input: { name: "Alerted", creditLimit: 10, alertThresholds: [50, 80, 100] } }, mainKey);
    const sub = { id: created.data.createSubAccount.subAccount.id, key: created.data.createSubAccount.apiKey };
    const ws = await subscribeWs(gw.url, mainKey, `subscription { spendAlertRaised { kind thresholdPercent threshold value sequence subAccount { id } } }`);
    const sse = await subscribeSse(gw.url, sub.key, `subscription { spendAlertRaised { kind thresholdPercent } }`);
    await gw.untilSubscriptions(2);
    for (let i = 0; i < 10; i += 1) await gw.gql(SEND, { input: ONE_CENT }, sub.key);
    await ws.waitFor(3, 5_000);
    expect(ws.events.map((e: any) => [e.spendAlertRaised.thresholdPercent, e.spendAlertRaised.threshold, e.spendAlertRaised.value])).toEqual([
      [50, 5, 5],
      [80, 8, 8],
      [100, 10, 10],
    ]);
    expect(ws.events.map((e: any) => e.spendAlertRaised.subAccount.id)).toEqual([sub.id, sub.id, sub.id]);
    await sse.waitFor(3, 5_000);
    await gw.gql(UPDATE, { id: sub.id, input: { creditLimit: 20 } }, mainKey);
    for (let i = 0; i < 6; i += 1) await gw.gql(SEND, { input: ONE_CENT }, sub.key);
    await ws.waitFor(4, 5_000);
    expect(ws.events.at(-1)).toMatchObject({ spendAlertRaised: { kind: "CREDIT_LIMIT", thresholdPercent: 80, threshold: 16, value: 16, sequence: 4 } });
    const listed = await gw.gql(ALERTS, { id: sub.id }, mainKey);
    expect(listed.data.spendAlerts.edges.map((e: any) => e.node.thresholdPercent)).toEqual([80, 100, 80, 50]);
    const own = await gw.gql(ALERTS, {}, sub.key);
    expect(own.data.spendAlerts.edges).toHaveLength(4);
    ws.close();
    sse.close();
  });

  it("a budget's thresholds fire once per period; the team's low balance once per fall below it, again only after a top-up lifted it", async () => {
    gw.clock.set(new Date("2026-05-01T10:00:00Z"));
    const created = await gw.gql(CREATE, { input: { name: "Daily budget", budget: { amount: 2, period: "DAY" }, alertThresholds: [100] } }, mainKey);
    const sub = { id: created.data.createSubAccount.subAccount.id, key: created.data.createSubAccount.apiKey };
    const balance = Number((await gw.gql(`{ balance { balance } }`, {}, mainKey)).data.balance.balance);
    expect((await gw.gql(`mutation($t: Cents) { updateTeam(input: { lowBalanceThreshold: $t }) { lowBalanceThreshold lowBalance } }`, { t: balance - 3 }, mainKey)).data.updateTeam).toEqual({
      lowBalanceThreshold: balance - 3,
      lowBalance: false,
    });
    for (let day = 1; day <= 2; day += 1) {
      gw.clock.set(new Date(`2026-05-0${day}T10:00:00Z`));
      for (let i = 0; i < 3; i += 1) await gw.gql(SEND, { input: ONE_CENT }, sub.key);
    }
    const budget = await gw.gql(ALERTS, { id: sub.id, kind: "BUDGET" }, mainKey);
    expect(budget.data.spendAlerts.edges.map((e: any) => [e.node.thresholdPercent, e.node.value])).toEqual([[100, 2], [100, 2]]);
    const low = await gw.gql(ALERTS, { kind: "LOW_BALANCE" }, mainKey);
    expect(low.data.spendAlerts.edges.map((e: any) => [e.node.threshold, e.node.value])).toEqual([[balance - 3, balance - 4]]);
    expect((await gw.gql(`{ viewer { team { lowBalance } } }`, {}, mainKey)).data.viewer.team.lowBalance).toBe(true);
    await gw.gateway.services.teams.topUp((await gw.db.prisma.account.findUniqueOrThrow({ where: { id: sub.id } })).teamId, 100);
    gw.clock.set(new Date("2026-05-03T10:00:00Z"));
    for (let i = 0; i < 2; i += 1) await gw.gql(SEND, { input: ONE_CENT }, sub.key);
    expect((await gw.gql(ALERTS, { kind: "LOW_BALANCE" }, mainKey)).data.spendAlerts.edges).toHaveLength(1);
  });

  it("spendAlertRaised resumes after a team alert sequence: the alerts missed, then live ones", async () => {
    const created = await gw.gql(CREATE, { input: { name: "Resumed alerts", creditLimit: 4, alertThresholds: [25, 50, 75, 100] } }, mainKey);
    const key = created.data.createSubAccount.apiKey;
    const before = (await gw.gql(ALERTS, {}, mainKey)).data.spendAlerts.edges[0]?.node.sequence ?? 0;
    for (let i = 0; i < 2; i += 1) await gw.gql(SEND, { input: ONE_CENT }, key);
    const stream = await subscribeWs(gw.url, mainKey, `subscription($after: Int) { spendAlertRaised(afterSequence: $after) { thresholdPercent sequence } }`, { after: before });
    await gw.untilSubscriptions(1);
    for (let i = 0; i < 2; i += 1) await gw.gql(SEND, { input: ONE_CENT }, key);
    await stream.waitFor(4, 5_000);
    expect(stream.events.map((e: any) => e.spendAlertRaised.thresholdPercent)).toEqual([25, 50, 75, 100]);
    expect(stream.events.map((e: any) => e.spendAlertRaised.sequence)).toEqual([before + 1, before + 2, before + 3, before + 4]);
    stream.close();
  });
});

describe("spend reports", () => {
  let gw: TestGateway;
  let mainKey: string;
  let teamId: string;
  let subs: { id: string; key: string }[];

  const REPORT = `query($from: DateTime!, $to: DateTime!, $groupBy: [SpendGroup!], $id: ID) {
    spendReport(from: $from, to: $to, groupBy: $groupBy, subAccountId: $id) { from to rows { period channel accountId messages segments amount } total { messages segments amount } } }`;

  beforeAll(async () => {
    gw = await startGateway();
    ({ mainKey, teamId } = await gw.createTeam({ balance: 100_000 }));
    subs = [];
    for (const name of ["Report A", "Report B"]) {
      const created = await gw.gql(CREATE, { input: { name } }, mainKey);
      subs.push({ id: created.data.createSubAccount.subAccount.id, key: created.data.createSubAccount.apiKey });
    }
    const sends: [string, string, Record<string, string>][] = [
      ["2026-01-30T10:00:00Z", subs[0]!.key, ONE_CENT],
      ["2026-01-31T23:59:59Z", subs[0]!.key, { to: "+447700900123", text: "four cents" }],
      ["2026-02-01T00:00:00Z", subs[1]!.key, { to: "ana@example.com", text: "email" }],
      ["2026-02-01T08:00:00Z", subs[1]!.key, ONE_CENT],
      ["2026-02-02T08:00:00Z", mainKey, { to: "+14155550101", text: "x".repeat(200) }],
    ];
    for (const [at, key, input] of sends) {
      gw.clock.set(new Date(at));
      expect((await gw.gql(SEND, { input }, key)).status).toBe(200);
    }
  });
  afterAll(() => gw?.close());

  it("groups by day, month, channel and account, from the daily totals, equal to the ledger", async () => {
    const byDay = await gw.gql(REPORT, { from: "2026-01-01T00:00:00Z", to: "2026-03-01T00:00:00Z" }, mainKey);
    expect(byDay.data.spendReport.rows.map((r: any) => [r.period, r.messages, r.amount])).toEqual([
      ["2026-01-30", 1, 1],
      ["2026-01-31", 1, 4],
      ["2026-02-01", 2, 2],
      ["2026-02-02", 1, 2],
    ]);
    const ledger = await gw.db.prisma.ledgerEntry.aggregate({ where: { teamId, kind: "charge" }, _sum: { amount: true }, _count: true });
    expect(byDay.data.spendReport.total).toEqual({ messages: ledger._count, segments: 6, amount: Number(ledger._sum.amount) });
    const byMonthChannel = await gw.gql(REPORT, { from: "2026-01-01T00:00:00Z", to: "2026-03-01T00:00:00Z", groupBy: ["MONTH", "CHANNEL"] }, mainKey);
    expect(byMonthChannel.data.spendReport.rows.map((r: any) => [r.period, r.channel, r.amount])).toEqual([
      ["2026-01", "SMS", 5],
      ["2026-02", "EMAIL", 1],
      ["2026-02", "SMS", 3],
    ]);
    const byAccount = await gw.gql(REPORT, { from: "2026-02-01T00:00:00Z", to: "2026-02-02T00:00:00Z", groupBy: ["ACCOUNT"] }, mainKey);
    expect(byAccount.data.spendReport.rows).toEqual([{ period: null, channel: null, accountId: subs[1]!.id, messages: 2, segments: 2, amount: 2 }]);
  });

  it("a sub-account key reports only itself; another sub-account is forbidden", async () => {
    const own = await gw.gql(REPORT, { from: "2026-01-01T00:00:00Z", to: "2026-03-01T00:00:00Z", groupBy: ["ACCOUNT"] }, subs[0]!.key);
    expect(own.data.spendReport.rows.map((r: any) => r.accountId)).toEqual([subs[0]!.id]);
    const other = await gw.gql(REPORT, { from: "2026-01-01T00:00:00Z", to: "2026-03-01T00:00:00Z", id: subs[1]!.id }, subs[0]!.key);
    expect(onlyError(other).extensions.code).toBe("forbidden");
    const named = await gw.gql(REPORT, { from: "2026-01-01T00:00:00Z", to: "2026-03-01T00:00:00Z", id: subs[1]!.id }, mainKey);
    expect(named.data.spendReport.total.amount).toBe(2);
  });

  it("a range over 366 days, reversed, empty or not at midnight UTC is invalid_request", async () => {
    for (const [from, to] of [
      ["2026-01-01T00:00:00Z", "2027-01-03T00:00:00Z"],
      ["2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"],
      ["2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z"],
      ["2026-02-01T12:00:00Z", "2026-02-03T00:00:00Z"],
    ]) {
      const refused = await gw.gql(REPORT, { from, to }, mainKey);
      expect(refused.status).toBe(400);
      expect(onlyError(refused).extensions.code).toBe("invalid_request");
    }
    expect((await gw.gql(REPORT, { from: "2026-01-01T00:00:00Z", to: "2027-01-02T00:00:00Z" }, mainKey)).status).toBe(200);
  });

  it("REST: GET /v1/spend as JSON, and as CSV with a header row (format=csv or Accept: text/csv)", async () => {
    const headers = { authorization: `Bearer ${mainKey}` };
    const json = await fetch(`${gw.url}/v1/spend?from=2026-01-01&to=2026-03-01&groupBy=day,channel`, { headers });
    expect(json.status).toBe(200);
    expect(((await json.json()) as any).total).toEqual({ messages: 5, segments: 6, amount: 9 });
    const csv = await fetch(`${gw.url}/v1/spend?from=2026-01-01&to=2026-03-01&groupBy=month,account&format=csv`, { headers });
    expect(csv.headers.get("content-type")).toMatch(/^text\/csv/);
    expect((await csv.text()).split("\r\n")).toEqual([
      "period,accountId,messages,segments,amount",
      `2026-01,${subs[0]!.id},2,2,5`,
      `2026-02,${[...(await gw.db.prisma.account.findMany({ where: { teamId, kind: "main" } }))][0]!.id},1,2,2`,
      `2026-02,${subs[1]!.id},2,2,2`,
      "",
    ].sort((a, b) => (a.startsWith("period") ? -1 : b.startsWith("period") ? 1 : a === "" ? 1 : b === "" ? -1 : a.localeCompare(b))));
    const accepted = await fetch(`${gw.url}/v1/spend?from=2026-01-01&to=2026-03-01&groupBy=channel`, { headers: { ...headers, accept: "text/csv" } });
    expect(await accepted.text()).toBe("channel,messages,segments,amount\r\nemail,1,1,1\r\nsms,4,5,8\r\n");
    const reversed = await fetch(`${gw.url}/v1/spend?from=2026-03-01&to=2026-01-01`, { headers });
    expect(reversed.status).toBe(400);
    expect(await reversed.json()).toMatchObject({ code: "invalid_request", details: { field: "to" } });
    await checkInvariants(gw.db, teamId);
  });
});
