import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../src/db/client.ts";
import { REDIS_TEST_URL, TEST_PROVIDER } from "./helpers/databases.ts";
import { createTestDatabase } from "./helpers/gateway.ts";
import { createAgent, postJson } from "./helpers/http.ts";
import { gqlAt as gql, redisPrefix, startInstance, untilOpenSubscriptions, type Instance } from "./helpers/instances.ts";
import { checkInvariants } from "./helpers/invariants.ts";
import { PrivatePostgres, PrivateRedis } from "./helpers/servers.ts";
import { SEND, SPEND } from "./helpers/storm.ts";
import { subscribeWs } from "./helpers/subscriptions.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


// Faults injected into servers of the tests' own, never the shared ones. Runs with TEST_DATABASE=postgresql.
describe.runIf(TEST_PROVIDER === "postgresql")("outages", () => {
  describe("Redis stopped and started again", () => {
    let redis: PrivateRedis;
    let database: { url: string; drop(): Promise<void> };
    let a: Instance;
    let b: Instance;
    let db: Database;

    beforeAll(async () => {
      redis = await PrivateRedis.start();
      database = await createTestDatabase();
      const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, REDIS_PREFIX: redisPrefix(), DEMO_TEAM: "true" };
      a = await startInstance(env);
      b = await startInstance(env);
      db = openDatabase(database.url);
    }, 120_000);

    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await redis?.stop();
      await db?.close();
      await database?.drop();
    });

    it("charges go on and stay correct, subscribers are told, and delivery resumes", { timeout: 120_000 }, async () => {
      const mainKey = (a.child.stdout + b.child.stdout).match(/zv_live_[0-9A-Za-z]{32,}/)![0];
      const created = await gql(a.url, mainKey, `mutation { createSubAccount(input: { name: "Redis outage" }) { apiKey subAccount { id } } }`);
      const sub = created.body.data.createSubAccount;
      const onB = await subscribeWs(b.url, mainKey, SPEND);
      await untilOpenSubscriptions(b.url, 1);
      expect((await gql(a.url, sub.apiKey, SEND, { input: { to: "+14155550100", text: "before" } })).status).toBe(200);
      await onB.waitFor(1);

      await redis.stop();
      // Subscribers hear of the outage instead of waiting in silence.
      await expect.poll(() => onB.errors.map((e) => e.extensions?.code), { timeout: 10_000 }).toContain("internal_error");
      expect(onB.errors[0]!.message).toMatch(/Redis/);
      expect(onB.isEnded()).toBe(false);
      const during = [];
      for (let i = 0; i < 5; i += 1) during.push(await gql(a.url, sub.apiKey, SEND, { input: { to: "+14155550100", text: `during ${i}` } }));
      expect(during.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);

      await redis.resume();
      // Delivery resumes: a charge after Redis returns reaches the subscriber on the other instance.
      let afterId = "";
      await expect
        .poll(
          async () => {
            afterId = (await gql(a.url, sub.apiKey, SEND, { input: { to: "+14155550100", text: "after" } })).body.data.sendMessage.id;
            await sleep(1500);
            return onB.events.some((e) => e.spendUpdated.messageId === afterId);
          },
          { timeout: 30_000, interval: 100 },
        )
        .toBe(true);
      const team = await db.prisma.account.findUniqueOrThrow({ where: { id: sub.subAccount.id }, select: { teamId: true } });
      await checkInvariants(db, team.teamId);
      onB.close();
    });
  });

  describe("PostgreSQL restarted during a stream of sends", () => {
    let server: PrivatePostgres;
    let a: Instance;
    let b: Instance;

    beforeAll(async () => {
      server = await PrivatePostgres.start();
      // The stream outruns one key's default rate limit; this test is about the database, not rate limiting.
      const env = { DATABASE_URL: server.url(), REDIS_URL: REDIS_TEST_URL, REDIS_PREFIX: redisPrefix(), DEMO_TEAM: "true", RATE_LIMIT_RPS: "0" };
      a = await startInstance(env);
      b = await startInstance(env);
    }, 120_000);

    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await server?.destroy();
    });

    it("gives clear errors during the outage, recovers without restarting the gateways, and loses no acknowledged charge", { timeout: 180_000 }, async () => {
      const mainKey = (a.child.stdout + b.child.stdout).match(/zv_live_[0-9A-Za-z]{32,}/)![0];
      const created = await gql(a.url, mainKey, `mutation { createSubAccount(input: { name: "PG outage", creditLimit: 100000 }) { apiKey subAccount { id } } }`);
      const sub = created.body.data.createSubAccount;
      const agent = createAgent(16);
      const outcomes: { status: number; body: any }[] = [];
      let streaming = true;
      const stream = (async () => {
        for (let i = 0; streaming; i += 1) {
          const target = i % 2 ? a.url : b.url;
          const batch = await Promise.all(
            Array.from({ length: 8 }, (_, j) =>
              postJson(`${target}/graphql`, { query: SEND, variables: { input: { to: "+14155550100", text: `n${i}-${j}`, idempotencyKey: `k-${i}-${j}` } } }, { authorization: `Bearer ${sub.apiKey}` }, agent).catch(
                (error: Error) => ({ status: 0, body: { error: error.message } }),
              ),
            ),
          );
          outcomes.push(...batch);
          await sleep(20);
        }
      })();

      await sleep(1500);
      await server.stop();
      await sleep(2000);
      await server.resume();
      // Recovery without restarting the gateways: sends succeed again on both instances.
      const gatewaysUp = () => expect(a.child.running && b.child.running, `a gateway died:\n${a.child.stderr}\n${b.child.stderr}`).toBe(true);
      gatewaysUp();
      await expect
        .poll(async () => (gatewaysUp(), [(await gql(a.url, sub.apiKey, SEND, { input: { to: "+14155550100", text: "a" } })).status, (await gql(b.url, sub.apiKey, SEND, { input: { to: "+14155550100", text: "b" } })).status]), { timeout: 60_000, interval: 500 })
        .toEqual([200, 200]);
      await sleep(1000);
      streaming = false;
      await stream;
      agent.destroy();

      const failed = outcomes.filter((o) => o.status !== 200);
      const acknowledged = outcomes.filter((o) => o.status === 200).map((o) => o.body.data.sendMessage.id as string);
      expect(failed.length, "the outage was seen by some sends").toBeGreaterThan(0);
      expect(acknowledged.length).toBeGreaterThan(0);
      for (const refused of failed.filter((o) => o.status !== 0)) {
        expect(refused.status).toBe(500);
        expect(refused.body.errors[0].extensions.code).toBe("internal_error");
        expect(refused.body.errors[0].message).toMatch(/database is unreachable/);
        expect(JSON.stringify(refused.body)).not.toMatch(/ECONN|at \/|SELECT|INSERT|prisma/i);
      }
      expect(a.child.running && b.child.running, `both gateways stayed up\n${a.child.stderr}\n${b.child.stderr}`).toBe(true);

      const db = openDatabase(server.url());
      try {
        const account = await db.prisma.account.findUniqueOrThrow({ where: { id: sub.subAccount.id } });
        await checkInvariants(db, account.teamId);
        const charged = new Set((await db.prisma.ledgerEntry.findMany({ where: { accountId: sub.subAccount.id } })).map((e) => e.messageId));
        const lost = acknowledged.filter((id) => !charged.has(id));
        expect(lost, "every acknowledged charge is present").toEqual([]);
      } finally {
        await db.close();
      }
      console.log(`PostgreSQL restart: ${acknowledged.length} sends acknowledged, ${failed.length} refused during the outage (statuses ${[...new Set(failed.map((o) => o.status))].join(", ")}), none lost`);
    });
  });
});
