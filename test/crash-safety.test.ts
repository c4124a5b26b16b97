import type http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../src/db/client.ts";
import { runSeed } from "./helpers/arbitraries.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { createTestDatabase } from "./helpers/gateway.ts";
import { createAgent, postJson } from "./helpers/http.ts";
import { startInstance, type Instance } from "./helpers/instances.ts";
import { checkInvariants } from "./helpers/invariants.ts";
import { TSX, childEnv, run } from "./helpers/process.ts";

/**
 * Crash safety: a real gateway process (`npm start`'s command) is killed with
 * SIGKILL at a random moment of a storm of concurrent sends, then restarted,
 * again and again on the same database. After every kill: every charge
 * invariant holds, every send the gateway acknowledged has its
 * message and its ledger entry; after every restart, retrying an acknowledged
 * send with its idempotencyKey returns the same message and charges nothing,
 * and retrying the sends cut off by the kill charges each at most once.
 * CRASH_TRIALS=<n> changes the number of trials (default 20), FUZZ_SEED replays one run.
 */

const TRIALS = Number(process.env.CRASH_TRIALS ?? "20");
const IN_FLIGHT = 24;
const KILL_AFTER_MS = { min: 10, max: 500 };
const TOP_UP_BELOW = 3_000;
const TOP_UP_AMOUNT = 30_000;
/** A storm is far above any per-key rate limit: turn it off, so every send reaches the charge. */
const gatewayEnv = (databaseUrl: string) => ({ DATABASE_URL: databaseUrl, RATE_LIMIT_RPS: "0" });

const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id cost accountId } }`;
const VARIANTS = [
  { to: "+14155550100", text: "Your code is 123456" },
  { to: "+14155550101", text: "x".repeat(200) },
  { to: "+447700900123", text: "Hello from London" },
  { to: "ana@example.com", text: "Your invoice is ready" },
];

/** A small deterministic PRNG (mulberry32), so a run's kill moments replay from its seed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Sender {
  accountId: string;
  key: string;
  /** A main key sending as this sub-account (sendMessage's subAccountId, REST's X-Sub-Account-Id). */
  actingFor?: string;
}

interface Send {
  sender: Sender;
  idempotencyKey: string;
  input: { to: string; text: string; idempotencyKey: string };
  via: "graphql" | "rest";
  /** Set once the gateway answered. */
  status?: number;
  messageId?: string;
  code?: string;
}

async function sendOnce(url: string, send: Send, agent: http.Agent): Promise<{ status: number; messageId?: string; code?: string }> {
  const { actingFor } = send.sender;
  if (send.via === "rest") {
    const headers = { authorization: `Bearer ${send.sender.key}`, ...(actingFor ? { "x-sub-account-id": actingFor } : {}) };
    const response = await postJson(`${url}/v1/messages`, send.input, headers, agent);
    return { status: response.status, messageId: response.body?.message?.id, code: response.body?.code };
  }
  const headers = { authorization: `Bearer ${send.sender.key}` };
  const input = actingFor ? { ...send.input, subAccountId: actingFor } : send.input;
  const response = await postJson(`${url}/graphql`, { query: SEND, variables: { input } }, headers, agent);
  return { status: response.status, messageId: response.body?.data?.sendMessage?.id, code: response.body?.errors?.[0]?.extensions?.code };
}

function acknowledged(send: { status?: number; messageId?: string }): boolean {
  return (send.status === 200 || send.status === 201) && typeof send.messageId === "string";
}

describe(`crash safety: SIGKILL during a storm of sends, then restart (${TEST_PROVIDER})`, () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Database;
  let instance: Instance | undefined;
  let teamId: string;
  let senders: Sender[];
  const seed = runSeed(`crash safety (${TEST_PROVIDER})`);
  const random = prng(seed);

  beforeAll(async () => {
    database = await createTestDatabase();
    const created = await run(TSX, ["src/cli/admin.ts", "create-team", "--name", "Crash team", "--balance", String(TOP_UP_AMOUNT), "--json"], childEnv({ DATABASE_URL: database.url, LOG_LEVEL: "warn" }));
    expect(created.code, created.stderr).toBe(0);
    const team = JSON.parse(created.stdout.slice(created.stdout.indexOf("{")));
    teamId = team.team.id;
    db = openDatabase(database.url);
    instance = await startInstance(gatewayEnv(database.url));
    senders = [{ accountId: team.mainAccount.id, key: team.apiKey }];
    // A tight limit (hit at once), a looser one (hit midway), and no limit.
    for (const [name, creditLimit] of [["Tight", 300], ["Loose", 5_000], ["Unlimited", null]] as const) {
      const response = await fetch(`${instance.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${team.apiKey}` },
        body: JSON.stringify({ query: `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`, variables: { input: { name, creditLimit } } }),
      });
      const body = (await response.json()) as any;
      expect(body.errors).toBeUndefined();
      senders.push({ accountId: body.data.createSubAccount.subAccount.id, key: body.data.createSubAccount.apiKey });
    }
    // The main key sending for the tightly limited sub-account, beside that sub-account's own key.
    senders.push({ accountId: senders[1]!.accountId, key: team.apiKey, actingFor: senders[1]!.accountId });
  });

  afterAll(async () => {
    await instance?.stop();
    await db?.close();
    await database?.drop();
  });

  /** Sends until `stop` resolves, IN_FLIGHT at a time; every send is recorded whether or not it was answered. */
  async function storm(url: string, trial: number, stop: Promise<void>): Promise<Send[]> {
    const agent = createAgent(IN_FLIGHT);
    const sends: Send[] = [];
    let stopped = false;
    void stop.then(() => (stopped = true));
    let counter = 0;
    const worker = async () => {
      while (!stopped) {
        const index = counter++;
        const variant = VARIANTS[index % VARIANTS.length]!;
        const idempotencyKey = `trial-${trial}-send-${index}`;
        const send: Send = {
          sender: senders[index % senders.length]!,
          idempotencyKey,
          input: { ...variant, idempotencyKey },
          via: index % 3 === 0 ? "rest" : "graphql",
        };
        sends.push(send);
        try {
          Object.assign(send, await sendOnce(url, send, agent));
        } catch {
          // Cut off by the kill: the gateway may or may not have committed it.
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    agent.destroy();
    return sends;
  }

  async function killHard(target: Instance): Promise<void> {
    process.kill(-target.child.process.pid!, "SIGKILL");
    const finished = await target.child.exited;
    expect(finished.signal ?? "SIGKILL").toBe("SIGKILL");
  }

  async function teamBalance(): Promise<bigint> {
    return (await db.prisma.team.findUniqueOrThrow({ where: { id: teamId } })).balance;
  }

  async function topUpIfLow(): Promise<void> {
    if ((await teamBalance()) >= TOP_UP_BELOW) return;
    const topUp = await run(TSX, ["src/cli/admin.ts", "top-up", "--team", teamId, "--amount", String(TOP_UP_AMOUNT)], childEnv({ DATABASE_URL: database.url, LOG_LEVEL: "warn" }));
    expect(topUp.code, topUp.stderr).toBe(0);
  }

  /** After a kill, before any restart: the database as the dead process left it. */
  async function checkAfterKill(sends: Send[]): Promise<void> {
    await checkInvariants(db, teamId);
    const acked = sends.filter(acknowledged);
    const ids = acked.map((send) => send.messageId!);
    const [messages, charges] = await Promise.all([
      db.prisma.message.findMany({ where: { id: { in: ids } }, select: { id: true, accountId: true, idempotencyKey: true } }),
      db.prisma.ledgerEntry.findMany({ where: { messageId: { in: ids }, kind: "charge" }, select: { messageId: true } }),
    ]);
    const stored = new Map(messages.map((message) => [message.id, message]));
    const charged = new Set(charges.map((entry) => entry.messageId));
    for (const send of acked) {
      const message = stored.get(send.messageId!);
      if (!message) throw new Error(`acknowledged message ${send.messageId} (${send.idempotencyKey}) is missing after the kill`);
      if (message.accountId !== send.sender.accountId || message.idempotencyKey !== send.idempotencyKey) {
        throw new Error(`acknowledged message ${send.messageId} is stored for ${message.accountId}/${message.idempotencyKey}`);
      }
      if (!charged.has(send.messageId!)) throw new Error(`acknowledged message ${send.messageId} has no charge in the ledger`);
    }
  }

  /** After the restart: retries of acknowledged sends change nothing; retries of cut-off sends charge at most once. */
  async function checkRetries(url: string, sends: Send[]): Promise<{ ackedRetried: number; cutOffRetried: number }> {
    const agent = createAgent(8);
    try {
      const acked = sends.filter(acknowledged);
      const sample = acked.filter((_, index) => index % Math.max(1, Math.floor(acked.length / 5)) === 0).slice(0, 5);
      const balanceBefore = await teamBalance();
      const chargesBefore = await db.prisma.ledgerEntry.count({ where: { teamId, kind: "charge" } });
      for (const send of sample) {
        const again = await sendOnce(url, send, agent);
        if (!acknowledged(again) || again.messageId !== send.messageId) {
          throw new Error(`retrying acknowledged ${send.idempotencyKey} gave ${again.status} ${again.messageId ?? again.code}, not message ${send.messageId}`);
        }
      }
      const balanceAfter = await teamBalance();
      const chargesAfter = await db.prisma.ledgerEntry.count({ where: { teamId, kind: "charge" } });
      if (balanceAfter !== balanceBefore || chargesAfter !== chargesBefore) {
        throw new Error(`retrying acknowledged sends charged again: balance ${balanceBefore} -> ${balanceAfter}, charges ${chargesBefore} -> ${chargesAfter}`);
      }
      const cutOff = sends.filter((send) => send.status === undefined);
      await Promise.all(
        cutOff.map(async (send) => {
          const first = await sendOnce(url, send, agent);
          const second = await sendOnce(url, send, agent);
          if (first.status >= 500 || second.status >= 500) throw new Error(`retrying cut-off ${send.idempotencyKey} gave ${first.status}/${second.status}`);
          if (acknowledged(first) && second.messageId !== first.messageId) {
            throw new Error(`retrying cut-off ${send.idempotencyKey} twice gave two messages ${first.messageId} and ${second.messageId}`);
          }
        }),
      );
      await checkInvariants(db, teamId);
      return { ackedRetried: sample.length, cutOffRetried: cutOff.length };
    } finally {
      agent.destroy();
    }
  }

  it(`survives ${TRIALS} SIGKILLs mid-storm with every invariant and every acknowledged charge intact`, async () => {
    const failures: string[] = [];
    let survived = 0;
    const totals = { sends: 0, acked: 0, refused: 0, cutOff: 0, ackedRetried: 0, cutOffRetried: 0 };
    const killMoments: number[] = [];
    let previous: Send[] | undefined;

    for (let trial = 1; trial <= TRIALS; trial += 1) {
      try {
        instance ??= await startInstance(gatewayEnv(database.url));
        const url = instance.url;
        if (previous) {
          const retried = await checkRetries(url, previous);
          totals.ackedRetried += retried.ackedRetried;
          totals.cutOffRetried += retried.cutOffRetried;
        }
        await topUpIfLow();
        const killAfter = Math.round(KILL_AFTER_MS.min + random() * (KILL_AFTER_MS.max - KILL_AFTER_MS.min));
        killMoments.push(killAfter);
        const target = instance;
        // No new send after the kill moment: only the ones in flight are cut off.
        const killMoment = new Promise<void>((resolve) => setTimeout(resolve, killAfter));
        const killed = killMoment.then(() => killHard(target));
        const sends = await storm(url, trial, killMoment);
        await killed;
        instance = undefined;
        totals.sends += sends.length;
        totals.acked += sends.filter(acknowledged).length;
        totals.refused += sends.filter((send) => send.status === 402).length;
        totals.cutOff += sends.filter((send) => send.status === undefined).length;
        const unexpected = sends.filter((send) => send.status !== undefined && !acknowledged(send) && send.status !== 402);
        if (unexpected.length > 0) throw new Error(`unexpected answers: ${JSON.stringify(unexpected.slice(0, 3).map((s) => [s.status, s.code]))}`);
        await checkAfterKill(sends);
        previous = sends;
        survived += 1;
      } catch (error) {
        failures.push(`trial ${trial}: ${error instanceof Error ? error.message : String(error)}`);
        if (instance?.child.running) await killHard(instance);
        instance = undefined;
        previous = undefined;
      }
    }
    // The last trial's retries, on one more restart.
    instance = await startInstance(gatewayEnv(database.url));
    if (previous) {
      try {
        const retried = await checkRetries(instance.url, previous);
        totals.ackedRetried += retried.ackedRetried;
        totals.cutOffRetried += retried.cutOffRetried;
      } catch (error) {
        failures.push(`final restart: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const report = await checkInvariants(db, teamId);
    console.log(
      `crash safety (${TEST_PROVIDER}): ${survived}/${TRIALS} trials survived; SIGKILL ${Math.min(...killMoments)}-${Math.max(...killMoments)} ms into storms of ${IN_FLIGHT} in flight; ` +
        `${totals.sends} sends: ${totals.acked} acknowledged (every one present and charged once), ${totals.refused} refused with 402, ${totals.cutOff} cut off by the kill; ` +
        `${totals.ackedRetried} acknowledged and ${totals.cutOffRetried} cut-off sends retried after restart without a double charge; ` +
        `${report.chargeEntries} charges in the ledger, team balance ${report.teamBalance} = top-ups ${report.topUps} - charges ${report.charges} (seed ${seed})`,
    );
    expect(failures).toEqual([]);
    expect(survived).toBe(TRIALS);
  }, 900_000);
});
