import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../src/db/client.ts";
import { REDIS_TEST_URL, TEST_PROVIDER } from "./helpers/databases.ts";
import { createTestDatabase } from "./helpers/gateway.ts";
import { gqlAt as gql, redisPrefix, startInstance, untilOpenSubscriptions, type Instance } from "./helpers/instances.ts";
import { checkInvariants } from "./helpers/invariants.ts";
import { SEND, SPEND, expectEventsMatch, expectExactOutcome, fireSends, type StormAccount } from "./helpers/storm.ts";
import { subscribeSse, subscribeWs } from "./helpers/subscriptions.ts";
import { createServices } from "../src/services/index.ts";
import { createInProcessBus } from "../src/events/inProcess.ts";
import { systemClock } from "../src/services/clock.ts";
import { loadPriceTable } from "../src/domain/pricing.ts";
import { SimulatedProvider } from "../src/services/delivery.ts";

const LIMITS = [null, 25, 60, 120, 200, 15, 90, 300, null, 45, 75, 150, 10, 500, 35, null, 250, 5, 180, 400];
const END_WITHIN_MS = 1000;

function endsWithin(ended: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([ended.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
}

// Two gateway processes sharing one PostgreSQL database and one Redis: runs with TEST_DATABASE=postgresql.
describe.runIf(TEST_PROVIDER === "postgresql")("two gateway instances on one PostgreSQL and one Redis", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Database;
  let a: Instance;
  let b: Instance;
  let teams: ReturnType<typeof createServices>["teams"];

  beforeAll(async () => {
    database = await createTestDatabase();
    const env = { DATABASE_URL: database.url, REDIS_URL: REDIS_TEST_URL, REDIS_PREFIX: redisPrefix() };
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
    db = openDatabase(database.url);
    teams = createServices({
      db,
      clock: systemClock,
      prices: loadPriceTable(),
      bus: createInProcessBus(),
      deliveryProvider: new SimulatedProvider(20),
      onBackgroundError: () => {},
    }).teams;
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.close();
    await database?.drop();
  });

  // Each test's subscriptions are gone before the next one counts its own.
  afterEach(async () => {
    await Promise.all([a, b].filter(Boolean).map((instance) => untilOpenSubscriptions(instance.url, 0)));
  });

  async function subAccount(url: string, mainKey: string, creditLimit: number | null, name = "Customer"): Promise<StormAccount> {
    const created = await gql(url, mainKey, `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`, {
      input: { name, creditLimit },
    });
    return { id: created.body.data.createSubAccount.subAccount.id, key: created.body.data.createSubAccount.apiKey, creditLimit };
  }

  it("2,000 sends split across both instances keep every invariant, and a subscriber on each sees every charge in order", { timeout: 300_000 }, async () => {
    const team = await teams.createTeam({ name: "Scale-out team", balance: 2500 });
    const accounts: StormAccount[] = [];
    for (const [index, limit] of LIMITS.entries()) accounts.push(await subAccount(index % 2 ? a.url : b.url, team.apiKey, limit, `Customer ${index}`));
    const onB = await subscribeWs(b.url, team.apiKey, SPEND);
    const onA = await subscribeSse(a.url, team.apiKey, SPEND);
    await Promise.all([untilOpenSubscriptions(b.url, 1), untilOpenSubscriptions(a.url, 1)]);

    const outcomes = await fireSends([a.url, b.url], accounts, 2000);

    const accepted = outcomes.filter((o) => o.status === 200);
    expect(outcomes.filter((o) => o.code === "insufficient_balance").length, "the balance ran out part way").toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.code === "credit_limit_exceeded").length).toBeGreaterThan(0);
    const report = await checkInvariants(db, team.team.id);
    expectExactOutcome(outcomes, {
      balance: Number(report.teamBalance),
      accounts: new Map(
        report.accounts
          .filter((row) => accounts.some((s) => s.id === row.id))
          .map((row) => [row.id, { totalSpent: Number(row.totalSpent), creditLimit: row.creditLimit === null ? null : Number(row.creditLimit) }]),
      ),
    });
    expect(report.chargeEntries).toBe(accepted.length);
    expectEventsMatch(await onB.waitFor(accepted.length, 60_000), accepted, "graphql-ws on instance B");
    expectEventsMatch(await onA.waitFor(accepted.length, 60_000), accepted, "SSE on instance A");
    onA.close();
    onB.close();
  });

  it("a charge through A reaches a subscriber on B, in order", async () => {
    const team = await teams.createTeam({ name: "Relay team", balance: 1000 });
    const sub = await subAccount(a.url, team.apiKey, null);
    const onB = await subscribeWs(b.url, sub.key, SPEND);
    await untilOpenSubscriptions(b.url, 1);
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push((await gql(a.url, sub.key, SEND, { input: { to: "+14155550100", text: `m${i}` } })).body.data.sendMessage.id);
    const events = await onB.waitFor(5);
    expect(events.map((e) => e.spendUpdated.messageId)).toEqual(ids);
    expect(events.map((e) => e.spendUpdated.sequence)).toEqual([1, 2, 3, 4, 5]);
    onB.close();
  });

  it("a key revoked through A is refused by B at once, and its open subscription on B ends within one second", async () => {
    const team = await teams.createTeam({ name: "Revocation team", balance: 1000 });
    const sub = await subAccount(a.url, team.apiKey, null);
    const keys = await gql(a.url, team.apiKey, `query($id: ID!) { subAccount(id: $id) { apiKeys { id } } }`, { id: sub.id });
    const keyId = keys.body.data.subAccount.apiKeys[0].id;
    expect((await gql(b.url, sub.key, `{ balance { balance } }`)).status).toBe(200);
    const onB = await subscribeWs(b.url, sub.key, SPEND);
    const sseOnB = await subscribeSse(b.url, sub.key, SPEND);
    await untilOpenSubscriptions(b.url, 2);

    const revoked = await gql(a.url, team.apiKey, `mutation($s: ID!, $k: ID!) { revokeSubAccountApiKey(subAccountId: $s, apiKeyId: $k) { revokedAt } }`, { s: sub.id, k: keyId });
    expect(revoked.status).toBe(200);
    const refused = await gql(b.url, sub.key, `{ balance { balance } }`);
    expect(refused.status).toBe(401);
    expect(refused.body.errors[0].extensions.code).toBe("unauthorized");
    expect(await endsWithin(onB.ended, END_WITHIN_MS)).toBe(true);
    expect(await endsWithin(sseOnB.ended, END_WITHIN_MS)).toBe(true);
    expect(onB.errors.map((e) => e.extensions?.code)).toEqual(["unauthorized"]);
    expect(sseOnB.errors.map((e) => e.extensions?.code)).toEqual(["unauthorized"]);
  });

  it("two instances starting at once on an empty database migrate it and create one demo team", { timeout: 120_000 }, async () => {
    const fresh = await createTestDatabase();
    // The template is already migrated: start from an empty database instead.
    const { withAdmin } = await import("./helpers/databases.ts");
    const name = new URL(fresh.url).pathname.slice(1);
    await withAdmin(async (client) => {
      await client.query(`DROP DATABASE "${name}" WITH (FORCE)`);
      await client.query(`CREATE DATABASE "${name}"`);
    });
    const env = { DATABASE_URL: fresh.url, REDIS_URL: REDIS_TEST_URL, REDIS_PREFIX: redisPrefix(), DEMO_TEAM: "true" };
    const [first, second] = await Promise.all([startInstance(env), startInstance(env)]);
    try {
      const dbFresh = openDatabase(fresh.url);
      expect(await dbFresh.prisma.team.count()).toBe(1);
      await dbFresh.close();
      const printedKeys = (first.child.stdout + second.child.stdout).match(/zv_live_[0-9A-Za-z]{32,}/g) ?? [];
      expect(printedKeys).toHaveLength(1);
      expect((await gql(first.url, printedKeys[0]!, `{ balance { balance } }`)).status).toBe(200);
      expect((await fetch(`${first.url}/healthz`)).ok && (await fetch(`${second.url}/healthz`)).ok).toBe(true);
    } finally {
      await Promise.all([first.stop(), second.stop()]);
      await fresh.drop();
    }
  });
});

