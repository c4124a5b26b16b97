import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../src/db/client.ts";
import { REDIS_TEST_URL } from "./helpers/databases.ts";
import { createTestDatabase, onlyError, startGateway, type TestGateway } from "./helpers/gateway.ts";
import { gqlAt as gql, redisPrefix, startInstance, untilOpenSubscriptions, type Instance } from "./helpers/instances.ts";
import { checkInvariants } from "./helpers/invariants.ts";
import { waitUntil } from "./helpers/process.ts";
import { PrivateRedis } from "./helpers/servers.ts";
import { SEND } from "./helpers/storm.ts";
import { subscribeWs, type Collected } from "./helpers/subscriptions.ts";

/**
 * Live spend events when things go wrong (README.md, "Live spend"): the bus is
 * the fast path, the ledger the truth. A lost event is read back from the
 * ledger, a client resumes where it left off, and a stalled Redis never holds
 * a request for longer than REDIS_TIMEOUT_MS. Real gateway processes, real
 * Redis servers of the test's own (stopped, restarted, frozen).
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const KILL_TRIALS = Number(process.env.LIVE_KILL_TRIALS ?? 10);
const EVENT = `subscription Spend($id: ID, $after: Int, $cursors: [SpendCursorInput!]) {
  spendUpdated(subAccountId: $id, afterSequence: $after, after: $cursors) { subAccount { id totalSpent } messageId amount sequence }
}`;

interface Spend {
  spendUpdated: { subAccount: { id: string; totalSpent: number }; messageId: string; amount: number; sequence: number };
}

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(pattern)].reduce((sum, match) => sum + Number(match[1]), 0);
}

/** Every event once, in sequence order, per sub-account: returns the sequences seen per account. */
function expectGaplessOnce(events: Spend[]): Map<string, number[]> {
  const byAccount = new Map<string, number[]>();
  for (const { spendUpdated: update } of events) byAccount.set(update.subAccount.id, [...(byAccount.get(update.subAccount.id) ?? []), update.sequence]);
  for (const [accountId, sequences] of byAccount) {
    const first = sequences[0]!;
    expect(sequences, `sub-account ${accountId}`).toEqual(sequences.map((_, index) => first + index));
  }
  return byAccount;
}

async function subAccount(url: string, mainKey: string, name: string) {
  const created = await gql(url, mainKey, `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`, { input: { name } });
  return { id: created.body.data.createSubAccount.subAccount.id as string, key: created.body.data.createSubAccount.apiKey as string };
}

async function send(url: string, key: string, text: string): Promise<{ id: string; ackedAt: number }> {
  const response = await gql(url, key, SEND, { input: { to: "+14155550100", text } });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return { id: response.body.data.sendMessage.id, ackedAt: Date.now() };
}

/** The team's demo main key, printed once by the first instance on an empty database. */
function demoKey(...instances: Instance[]): string {
  return instances.map((instance) => instance.child.stdout).join("").match(/zv_live_[0-9A-Za-z]{32,}/)![0];
}

describe("a spend event lost on the bus is read from the ledger", () => {
  let redis: PrivateRedis;
  let database: { url: string; drop(): Promise<void> };
  let gateway: Instance;
  let db: Database;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    database = await createTestDatabase();
    gateway = await startInstance({ DATABASE_URL: database.url, REDIS_URL: redis.url, REDIS_PREFIX: redisPrefix(), DEMO_TEAM: "true", REQUEST_TIMEOUT_MS: "1000" });
    db = openDatabase(database.url);
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    await redis?.stop();
    await db?.close();
    await database?.drop();
  });

  it("Redis restarted between two sends, then a send every 500 ms for 10 s: every event arrives in order, none later than about 1 s", { timeout: 60_000 }, async () => {
    const mainKey = demoKey(gateway);
    const sub = await subAccount(gateway.url, mainKey, "Bursty customer");
    const arrivals = new Map<string, number>();
    const stream: Collected<Spend> = await subscribeWs<Spend>(gateway.url, mainKey, EVENT);
    const recordArrivals = setInterval(() => stream.events.forEach((e) => arrivals.has(e.spendUpdated.messageId) || arrivals.set(e.spendUpdated.messageId, Date.now())), 5);
    try {
      await untilOpenSubscriptions(gateway.url, 1);
      const sent = [await send(gateway.url, sub.key, "before")];
      await stream.waitFor(1);
      await redis.stop();
      sent.push(await send(gateway.url, sub.key, "committed, its event lost"));
      await redis.resume();
      for (let i = 0; i < 20; i += 1) {
        sent.push(await send(gateway.url, sub.key, `steady ${i}`));
        await sleep(500);
      }
      await stream.waitFor(sent.length, 5_000);
      expect(stream.events.map((e) => e.spendUpdated.messageId)).toEqual(sent.map((s) => s.id));
      expectGaplessOnce(stream.events);
      const delays = sent.map((s) => arrivals.get(s.id)! - s.ackedAt);
      expect(Math.max(...delays), `delays after acknowledgement (ms): ${delays.join(", ")}`).toBeLessThan(1_500);
      expect(await metric(gateway.url, /^gateway_spend_events_recovered_total (\d+)/gm)).toBeGreaterThanOrEqual(1);
    } finally {
      clearInterval(recordArrivals);
      stream.close();
    }
  });

  it("Redis frozen (SIGSTOP) for 10 s under queries and sends: every request answered within REQUEST_TIMEOUT_MS, /readyz says Redis is down, everything flows after SIGCONT", { timeout: 90_000 }, async () => {
    const mainKey = demoKey(gateway);
    const sub = await subAccount(gateway.url, mainKey, "Frozen Redis");
    const stream = await subscribeWs<Spend>(gateway.url, mainKey, EVENT, { id: sub.id });
    try {
      await untilOpenSubscriptions(gateway.url, 1);
      const latencies: number[] = [];
      const sent: string[] = [];
      const timed = async <T>(work: () => Promise<T>) => {
        const started = Date.now();
        const result = await work();
        latencies.push(Date.now() - started);
        return result;
      };
      let frozenReadiness: { status: number; body: any } | undefined;
      const traffic = (async () => {
        for (let i = 0; i < 60; i += 1) {
          const [query, message] = await Promise.all([
            timed(() => gql(gateway.url, sub.key, `{ balance { balance totalSpent } }`)),
            timed(() => send(gateway.url, sub.key, `during ${i}`)),
          ]);
          expect(query.status).toBe(200);
          sent.push(message.id);
          await sleep(150);
        }
      })();
      await sleep(1_000);
      redis.freeze();
      try {
        await sleep(3_000);
        const ready = await fetch(`${gateway.url}/readyz`);
        frozenReadiness = { status: ready.status, body: await ready.json() };
        await sleep(7_000);
      } finally {
        redis.thaw();
      }
      await traffic;
      expect(frozenReadiness).toEqual({ status: 503, body: { status: "unavailable", checks: { database: "up", redis: "down" } } });
      // REQUEST_TIMEOUT_MS is 1000 here; REDIS_TIMEOUT_MS (200) bounds what a frozen Redis adds.
      expect(Math.max(...latencies), `slowest of ${latencies.length} requests`).toBeLessThan(1_000);
      await stream.waitFor(sent.length, 5_000);
      expect(stream.events.map((e) => e.spendUpdated.messageId)).toEqual(sent);
      expect(await metric(gateway.url, /^gateway_redis_timeouts_total\{operation="rate_limit"\} (\d+)/gm)).toBeGreaterThan(0);
      await expect.poll(async () => (await fetch(`${gateway.url}/readyz`)).status, { timeout: 10_000 }).toBe(200);
      const after = await send(gateway.url, sub.key, "after the thaw");
      await stream.waitFor(sent.length + 1, 2_000);
      expect(stream.events.at(-1)!.spendUpdated.messageId).toBe(after.id);
      const { teamId } = await db.prisma.account.findUniqueOrThrow({ where: { id: sub.id }, select: { teamId: true } });
      await checkInvariants(db, teamId);
    } finally {
      stream.close();
    }
  });
});

describe("a client resumes after a disconnect with afterSequence", () => {
  let gw: TestGateway;
  let mainKey: string;

  beforeAll(async () => {
    gw = await startGateway();
    ({ mainKey } = await gw.createTeam());
  });
  afterAll(() => gw?.close());

  it("disconnected for 5 s during a stream, it receives exactly the charges it missed, then live ones", { timeout: 60_000 }, async () => {
    const sub = await subAccount(gw.url, mainKey, "Flaky network");
    const first = await subscribeWs<Spend>(gw.url, sub.key, EVENT);
    await gw.untilSubscriptions(1);
    const sent: string[] = [];
    for (let i = 0; i < 3; i += 1) sent.push((await send(gw.url, sub.key, `seen ${i}`)).id);
    await first.waitFor(3);
    const lastSeen = first.events.at(-1)!.spendUpdated.sequence;
    first.close();
    await expect.poll(() => gw.gateway.services.openSubscriptions).toBe(0);

    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      sent.push((await send(gw.url, sub.key, "missed")).id);
      await sleep(250);
    }
    const resumed = await subscribeWs<Spend>(gw.url, sub.key, EVENT, { after: lastSeen });
    await gw.untilSubscriptions(1);
    for (let i = 0; i < 3; i += 1) sent.push((await send(gw.url, sub.key, `live ${i}`)).id);
    await resumed.waitFor(sent.length - 3, 5_000);
    expect([...first.events, ...resumed.events].map((e) => e.spendUpdated.messageId)).toEqual(sent);
    expectGaplessOnce([...first.events, ...resumed.events]);
    resumed.close();
  });

  it("a main key resumes its whole team with one cursor per sub-account, those never seen included", { timeout: 60_000 }, async () => {
    const [a, b] = [await subAccount(gw.url, mainKey, "Seen"), await subAccount(gw.url, mainKey, "Charged before, never seen")];
    await send(gw.url, b.key, "old, before the first subscription");
    const start = await gw.gql<{ subAccounts: { edges: { node: { id: string; chargeSequence: number } }[] } }>(
      `{ subAccounts(first: 100) { edges { node { id chargeSequence } } } }`,
      {},
      mainKey,
    );
    const cursors = new Map(start.data.subAccounts.edges.map(({ node }) => [node.id, node.chargeSequence]));
    expect(cursors.get(b.id)).toBe(1);
    const first = await subscribeWs<Spend>(gw.url, mainKey, EVENT, { cursors: [...cursors].map(([subAccountId, afterSequence]) => ({ subAccountId, afterSequence })) });
    await gw.untilSubscriptions(1);
    await send(gw.url, a.key, "seen");
    await first.waitFor(1);
    for (const { spendUpdated: u } of first.events) cursors.set(u.subAccount.id, u.sequence);
    first.close();
    await expect.poll(() => gw.gateway.services.openSubscriptions).toBe(0);

    const missed = [(await send(gw.url, b.key, "missed b")).id, (await send(gw.url, a.key, "missed a")).id, (await send(gw.url, b.key, "missed b again")).id];
    const resumed = await subscribeWs<Spend>(gw.url, mainKey, EVENT, { cursors: [...cursors].map(([subAccountId, afterSequence]) => ({ subAccountId, afterSequence })) });
    await resumed.waitFor(3, 5_000);
    expect(new Set(resumed.events.map((e) => e.spendUpdated.messageId))).toEqual(new Set(missed));
    expectGaplessOnce(resumed.events);
    resumed.close();
  });

  it("a resume point that does not exist, or afterSequence without the sub-account it counts, is invalid_request", async () => {
    const sub = await subAccount(gw.url, mainKey, "Resume errors");
    await send(gw.url, sub.key, "one");
    for (const [variables, field] of [
      [{ id: sub.id, after: 2 }, "afterSequence"],
      [{ id: sub.id, after: -1 }, "afterSequence"],
      [{ after: 0 }, "afterSequence"],
    ] as const) {
      const stream = await subscribeWs<Spend>(gw.url, mainKey, EVENT, variables);
      await stream.ended;
      expect(stream.errors.map((e) => e.extensions?.code)).toEqual(["invalid_request"]);
      expect((stream.errors[0] as any).extensions.details.field).toBe(field);
    }
    const other = await gw.createTeam({ name: "Another team" });
    const foreign = await subAccount(gw.url, other.mainKey, "Not yours");
    const stream = await subscribeWs<Spend>(gw.url, mainKey, EVENT, { cursors: [{ subAccountId: foreign.id, afterSequence: 0 }] });
    await stream.ended;
    expect(stream.errors.map((e) => e.extensions?.code)).toEqual(["not_found"]);
  });
});

describe("one of two instances killed during a stream of charges", () => {
  let database: { url: string; drop(): Promise<void> };
  let survivor: Instance;
  let db: Database;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url, REDIS_URL: REDIS_TEST_URL, REDIS_PREFIX: redisPrefix(), DEMO_TEAM: "true", RATE_LIMIT_RPS: "0" };
    survivor = await startInstance(env);
    db = openDatabase(database.url);
  }, 120_000);
  afterAll(async () => {
    await survivor?.stop();
    await db?.close();
    await database?.drop();
  });

  it(`every subscriber on the survivor receives every committed charge exactly once, in order (${KILL_TRIALS} trials)`, { timeout: 60_000 + KILL_TRIALS * 30_000 }, async () => {
    const mainKey = demoKey(survivor);
    const accounts = [await subAccount(survivor.url, mainKey, "Killed A"), await subAccount(survivor.url, mainKey, "Killed B")];
    for (let trial = 0; trial < KILL_TRIALS; trial += 1) {
      const victim = await startInstance(env);
      const start = await db.prisma.account.findMany({ where: { id: { in: accounts.map((a) => a.id) } }, select: { id: true, chargeCount: true } });
      const streams = [await subscribeWs<Spend>(survivor.url, mainKey, EVENT), await subscribeWs<Spend>(survivor.url, accounts[0]!.key, EVENT)];
      await untilOpenSubscriptions(survivor.url, 2).catch((error: unknown) => {
        victim.child.signalGroup("SIGKILL");
        throw new Error(`${String(error)}; the subscribers saw: ${JSON.stringify(streams.map((stream) => ({ errors: stream.errors, events: stream.events.length })))}`);
      });
      const killAt = 100 + Math.floor(Math.random() * 600);
      const killer = sleep(killAt).then(() => victim.child.signalGroup("SIGKILL"));
      const sends = Array.from({ length: 40 }, async (_, i) => {
        await sleep(i * 20);
        const target = i % 2 === 0 ? victim : survivor;
        try {
          await gql(target.url, accounts[i % accounts.length]!.key, SEND, { input: { to: "+14155550100", text: `trial ${trial} send ${i}` } });
        } catch {
          // The victim died with this request in flight: committed or not, the ledger says.
        }
      });
      await Promise.all([killer, ...sends]);
      await victim.child.exited;
      const ledger = await db.prisma.ledgerEntry.findMany({
        where: { OR: start.map((s) => ({ accountId: s.id, sequence: { gt: s.chargeCount } })) },
        orderBy: [{ accountId: "asc" }, { sequence: "asc" }],
        select: { accountId: true, sequence: true, messageId: true },
      });
      const expected = (accountId: string | null) => ledger.filter((e) => accountId === null || e.accountId === accountId).map((e) => `${e.accountId}#${e.sequence}:${e.messageId}`);
      for (const [index, stream] of streams.entries()) {
        const only = index === 0 ? null : accounts[0]!.id;
        await waitUntil(`trial ${trial}: subscriber ${index} to receive ${expected(only).length} charges`, 5_000, () =>
          stream.events.length >= expected(only).length ? true : undefined,
        );
        await sleep(300); // nothing more may come: no duplicate
        const received = stream.events.map((e) => `${e.spendUpdated.subAccount.id}#${e.spendUpdated.sequence}:${e.spendUpdated.messageId}`);
        expect([...received].sort(), `trial ${trial}, subscriber ${index}`).toEqual([...expected(only)].sort());
        expectGaplessOnce(stream.events);
        stream.close();
      }
      await expect.poll(() => metric(survivor.url, /^gateway_open_subscriptions (\d+)/gm)).toBe(0);
    }
    const { teamId } = await db.prisma.account.findUniqueOrThrow({ where: { id: accounts[0]!.id }, select: { teamId: true } });
    await checkInvariants(db, teamId);
  });
});
