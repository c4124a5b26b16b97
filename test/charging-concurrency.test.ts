import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";
import { checkInvariants } from "./helpers/invariants.ts";
import { SPEND, expectEventsMatch, expectExactOutcome, fireSends, type StormAccount } from "./helpers/storm.ts";
import { subscribeSse, subscribeWs } from "./helpers/subscriptions.ts";

const LIMITS = [null, 25, 60, 120, 200, 15, 90, 300, null, 45, 75, 150, 10, 500, 35, null, 250, 5, 180, 400];
const SENDS = Number(process.env.STORM_SENDS ?? 2000);
const TEAM_BALANCE = 2500;

describe(`2,000 parallel sends at 20 sub-accounts while the balance runs out (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { DELIVERY_STEP_MS: process.env.STEP ?? "20" } });
  });
  afterAll(async () => gw.close());

  it("charges exactly what the limits and balance allow, and every subscriber sees each charge once, in order", { timeout: 300_000 }, async () => {
    const { teamId, mainKey } = await gw.createTeam({ balance: TEAM_BALANCE });
    const accounts: StormAccount[] = [];
    for (const [index, creditLimit] of LIMITS.entries()) {
      const created = await gw.gql(
        `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`,
        { input: { name: `Customer ${index}`, creditLimit } },
        mainKey,
      );
      accounts.push({ id: created.data.createSubAccount.subAccount.id, key: created.data.createSubAccount.apiKey, creditLimit });
    }
    const watched = accounts[1]!;
    const wsMain = await subscribeWs(gw.url, mainKey, SPEND);
    const sseMain = await subscribeSse(gw.url, mainKey, SPEND);
    const wsOwn = await subscribeWs(gw.url, watched.key, SPEND);
    expect(sseMain.status).toBe(200);
    await gw.untilSubscriptions(3);

    const outcomes = await fireSends([gw.url], accounts, SENDS);

    const accepted = outcomes.filter((o) => o.status === 200);
    const refused = outcomes.filter((o) => o.status === 402);
    expect(accepted.length).toBeGreaterThan(0);
    expect(refused.filter((o) => o.code === "credit_limit_exceeded").length).toBeGreaterThan(0);
    expect(refused.filter((o) => o.code === "insufficient_balance").length, "the balance ran out part way").toBeGreaterThan(0);

    const report = await checkInvariants(gw.db, teamId);
    const final = {
      balance: Number(report.teamBalance),
      accounts: new Map(report.accounts.filter((a) => accounts.some((s) => s.id === a.id)).map((a) => [a.id, { totalSpent: Number(a.totalSpent), creditLimit: a.creditLimit === null ? null : Number(a.creditLimit) }])),
    };
    expectExactOutcome(outcomes, final);
    expect(report.chargeEntries).toBe(accepted.length);
    expect(Number(report.charges)).toBe(TEAM_BALANCE - final.balance);

    expectEventsMatch(await wsMain.waitFor(accepted.length), accepted, "graphql-ws main key");
    expectEventsMatch(await sseMain.waitFor(accepted.length), accepted, "SSE main key");
    const own = accepted.filter((o) => o.account.id === watched.id);
    expectEventsMatch(await wsOwn.waitFor(own.length), own, "graphql-ws sub-account key");
    // Nothing more arrives: no duplicates, nothing of other accounts.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(wsMain.events.length).toBe(accepted.length);
    expect(sseMain.events.length).toBe(accepted.length);
    expect(wsOwn.events.length).toBe(own.length);
    for (const subscription of [wsMain, sseMain, wsOwn]) {
      expect(subscription.errors).toEqual([]);
      subscription.close();
    }
    console.log(
      `accepted ${accepted.length}, refused ${refused.length} (credit limit ${refused.filter((o) => o.code === "credit_limit_exceeded").length}, balance ${refused.filter((o) => o.code === "insufficient_balance").length}); balance ${TEAM_BALANCE} -> ${final.balance}`,
    );
  });
});
