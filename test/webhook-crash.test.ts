import type http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../src/db/client.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { createTestDatabase } from "./helpers/gateway.ts";
import { createAgent, postJson } from "./helpers/http.ts";
import { startInstance, type Instance } from "./helpers/instances.ts";
import { TSX, childEnv, run, waitUntil } from "./helpers/process.ts";
import { WebhookReceiver } from "./helpers/webhookReceiver.ts";
import { CREATE_ENDPOINT, SECRETS_KEY } from "./helpers/webhooks.ts";

/**
 * No webhook lost, no attempt sent twice at once (README.md, "Webhooks"), with
 * real gateway processes: a storm of sub-account updates raises events through
 * the gateways while one of them is killed with SIGKILL and restarted. On
 * PostgreSQL two instances share the database and both dispatch; on SQLite the
 * one instance is killed and restarted. After each trial: every committed event
 * has reached both subscribed endpoints, every acknowledged update has its
 * event, the receiver never saw two attempts of one event to one endpoint in
 * flight at once, and no delivery was sent more often than it was claimed.
 * WEBHOOK_TRIALS=<n> and WEBHOOK_STORM_EVENTS=<n> make it larger.
 */

const TRIALS = Number(process.env.WEBHOOK_TRIALS ?? (TEST_PROVIDER === "postgresql" ? 10 : 3));
const STORM_EVENTS = Number(process.env.WEBHOOK_STORM_EVENTS ?? 500);
const IN_FLIGHT = 16;
const INSTANCES = TEST_PROVIDER === "postgresql" ? 2 : 1;
const PATHS = ["/a", "/b"];
const UPDATE = `mutation($id: ID!, $input: UpdateSubAccountInput!) { updateSubAccount(id: $id, input: $input) { id } }`;

const instanceEnv = (databaseUrl: string) => ({
  DATABASE_URL: databaseUrl,
  SECRETS_KEY,
  RATE_LIMIT_RPS: "0",
  WEBHOOK_TIMEOUT_MS: "1000",
  WEBHOOK_LEASE_MS: "2500",
  WEBHOOK_BACKOFF_BASE_MS: "100",
  WEBHOOK_POLL_MS: "100",
});

interface Totals {
  trials: number;
  events: number;
  acknowledged: number;
  deliveries: number;
  requests: number;
  receivedTwice: number;
  lostAttempts: number;
}

describe(`webhooks survive SIGKILL during a storm (${TEST_PROVIDER}, ${INSTANCES} instance${INSTANCES > 1 ? "s" : ""})`, () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Database;
  let instances: Instance[] = [];
  let receiver: WebhookReceiver;
  let agent: http.Agent;
  const totals: Totals = { trials: 0, events: 0, acknowledged: 0, deliveries: 0, requests: 0, receivedTwice: 0, lostAttempts: 0 };

  beforeAll(async () => {
    database = await createTestDatabase();
    db = openDatabase(database.url);
    receiver = await WebhookReceiver.start();
    // Mostly quick answers, some slow, some errors: retries and in-flight attempts when the kill comes.
    receiver.answer = async () => {
      const roll = Math.random();
      await new Promise((resolve) => setTimeout(resolve, roll < 0.1 ? 50 : roll * 10));
      return roll > 0.95 ? 500 : 200;
    };
    instances = await Promise.all(Array.from({ length: INSTANCES }, () => startInstance(instanceEnv(database.url))));
    agent = createAgent(IN_FLIGHT * 2);
  }, 120_000);

  afterAll(async () => {
    agent?.destroy();
    await Promise.all(instances.map((instance) => instance.stop()));
    await receiver?.close();
    await db?.close();
    await database?.drop();
    console.log(
      `webhook crash safety (${TEST_PROVIDER}): ${totals.trials} trials, ${totals.events} events committed (${totals.acknowledged} acknowledged), ` +
        `${totals.deliveries} deliveries, ${totals.requests} requests received, ${totals.lostAttempts} attempts lost to a kill and retried, ` +
        `${totals.receivedTwice} deliveries accepted (2xx) more than once (at least once allows it), ${receiver?.overlaps.length ?? "?"} concurrent attempts of one delivery`,
    );
  });

  async function gqlAt(url: string, key: string, query: string, variables: Record<string, unknown>) {
    return postJson(`${url}/graphql`, { query, variables }, { authorization: `Bearer ${key}` }, agent);
  }

  /** A team with sub-accounts to update and two endpoints subscribed to sub_account.updated. */
  async function prepareTrial(trial: number) {
    const created = await run(TSX, ["src/cli/admin.ts", "create-team", "--name", `Storm ${trial}`, "--json"], childEnv({ DATABASE_URL: database.url, LOG_LEVEL: "warn" }));
    expect(created.code, created.stderr).toBe(0);
    const team = JSON.parse(created.stdout.slice(created.stdout.indexOf("{")));
    const url = instances[0]!.url;
    for (const path of PATHS) {
      const endpoint = await gqlAt(url, team.apiKey, CREATE_ENDPOINT, { input: { url: `${receiver.url}/t${trial}${path}`, events: ["SUB_ACCOUNT_UPDATED"] } });
      expect(endpoint.body.errors).toBeUndefined();
    }
    const subs: string[] = [];
    for (let i = 0; i < 8; i += 1) {
      const sub = await gqlAt(url, team.apiKey, `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { subAccount { id } } }`, { input: { name: `s${i}` } });
      subs.push(sub.body.data.createSubAccount.subAccount.id);
    }
    return { teamId: team.team.id as string, key: team.apiKey as string, subs };
  }

  /** Updates until `target` have been acknowledged, spread over the live instances; kills and restarts one part way. */
  async function storm(trial: number, prepared: Awaited<ReturnType<typeof prepareTrial>>): Promise<number> {
    let acknowledged = 0;
    let sent = 0;
    const victim = trial % instances.length;
    const killAt = Math.floor(STORM_EVENTS * (0.2 + 0.5 * Math.random()));
    let restarted: Promise<void> | null = null;
    const live = new Set(instances.map((_, index) => index));
    const worker = async () => {
      while (acknowledged < STORM_EVENTS) {
        const n = sent++;
        if (n === killAt) restarted = killAndRestart(victim, live);
        const targets = [...live];
        if (targets.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          continue;
        }
        const url = instances[targets[n % targets.length]!]!.url;
        const sub = prepared.subs[n % prepared.subs.length]!;
        try {
          const response = await gqlAt(url, prepared.key, UPDATE, { id: sub, input: { name: `t${trial}-n${n}` } });
          if (response.status === 200 && !response.body.errors) acknowledged += 1;
        } catch {
          // Cut off by the kill.
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    await restarted;
    return acknowledged;
  }

  async function killAndRestart(index: number, live: Set<number>): Promise<void> {
    live.delete(index);
    process.kill(-instances[index]!.child.process.pid!, "SIGKILL");
    await instances[index]!.child.exited;
    instances[index] = await startInstance(instanceEnv(database.url));
    live.add(index);
  }

  /** Every committed event of the trial received with a 2xx at both endpoints. */
  async function expectAllDelivered(trial: number, teamId: string) {
    const events = await db.prisma.webhookEvent.findMany({ where: { teamId, type: "sub_account.updated" }, select: { id: true } });
    const delivered = () => {
      const ok = new Set(receiver.received.filter((r) => r.path.startsWith(`/t${trial}/`)).map((r) => `${r.path} ${r.id}`));
      return events.filter((event) => PATHS.some((path) => !ok.has(`/t${trial}${path} ${event.id}`)));
    };
    await waitUntil(`every event of trial ${trial} delivered to both endpoints`, 60_000, async () => {
      const missing = delivered();
      if (missing.length > 0) return undefined;
      const pending = await db.prisma.webhookDelivery.count({ where: { event: { teamId }, status: { not: "succeeded" } } });
      return pending === 0 ? true : undefined;
    });
    return events.length;
  }

  /** Each delivery received no more often than it was claimed; counts the ones received twice and the lost attempts. */
  async function checkAttempts(trial: number, teamId: string) {
    const deliveries = await db.prisma.webhookDelivery.findMany({ where: { event: { teamId } }, include: { endpoint: { select: { url: true } } } });
    const requests = new Map<string, number>();
    const accepted = new Map<string, number>();
    const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
    for (const r of receiver.received.filter((r) => r.path.startsWith(`/t${trial}/`))) {
      count(requests, `${r.path} ${r.id}`);
      if (r.answered === 200) count(accepted, `${r.path} ${r.id}`);
    }
    let receivedTwice = 0;
    for (const delivery of deliveries) {
      const key = `${new URL(delivery.endpoint.url).pathname} ${delivery.eventId}`;
      expect(requests.get(key) ?? 0, `delivery ${delivery.id} received more often than claimed`).toBeLessThanOrEqual(delivery.attempts);
      if ((accepted.get(key) ?? 0) > 1) receivedTwice += 1;
    }
    const lost = await db.prisma.webhookAttempt.count({ where: { delivery: { event: { teamId } }, error: { startsWith: "No result recorded" } } });
    return { deliveries: deliveries.length, requests: [...requests.values()].reduce((a, b) => a + b, 0), receivedTwice, lost };
  }

  it(`${TRIALS} trials of at least ${STORM_EVENTS} events each: every committed event delivered, never two attempts at once`, { timeout: 30 * 60_000 }, async () => {
    for (let trial = 1; trial <= TRIALS; trial += 1) {
      const prepared = await prepareTrial(trial);
      const acknowledged = await storm(trial, prepared);
      const events = await expectAllDelivered(trial, prepared.teamId);
      expect(events, "every acknowledged update has its event").toBeGreaterThanOrEqual(acknowledged);
      expect(events).toBeGreaterThanOrEqual(STORM_EVENTS);
      const checked = await checkAttempts(trial, prepared.teamId);
      expect(checked.deliveries).toBe(events * PATHS.length);
      expect(receiver.overlaps, "two attempts of one delivery in flight at once").toEqual([]);
      Object.assign(totals, {
        trials: trial,
        events: totals.events + events,
        acknowledged: totals.acknowledged + acknowledged,
        deliveries: totals.deliveries + checked.deliveries,
        requests: totals.requests + checked.requests,
        receivedTwice: totals.receivedTwice + checked.receivedTwice,
        lostAttempts: totals.lostAttempts + checked.lost,
      });
    }
  });
});
