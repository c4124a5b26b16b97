import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChargeAttempt, ChargeResult, CommittedCharge } from "../src/db/charges.ts";
import { GroupCommit } from "../src/db/groupCommit.ts";
import { chargeAttemptFor } from "../src/services/messages.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";
import { checkInvariants } from "./helpers/invariants.ts";

/**
 * Group commit (src/db/groupCommit.ts): the charges that arrive while a batch
 * commits go together in the next; each is decided in order with its own
 * outcome; a batch that fails as a whole is committed again charge by charge,
 * so only the bad charge fails; a charge is answered only after its commit.
 */

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("GroupCommit", () => {
  it("gathers what arrives while a batch commits into the next batch, per lane, in order", async () => {
    const batches: string[][] = [];
    let release: () => void = () => {};
    const group = new GroupCommit<string, string>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return items.map((item) => `${item}!`);
    }, queueMicrotask);
    const first = group.submit("team", "a");
    await tick();
    const later = ["b", "c", "d"].map((item) => group.submit("team", item));
    const other = group.submit("other team", "x");
    await tick();
    expect(batches).toEqual([["a"], ["x"]]);
    release();
    expect(await Promise.all([first, ...later, other])).toEqual(["a!", "b!", "c!", "d!", "x!"]);
    expect(batches).toEqual([["a"], ["x"], ["b", "c", "d"]]);
    expect(group.stats).toEqual({ batches: 3, items: 5, failedBatches: 0 });
  });

  it("never puts more than its bound in one batch", async () => {
    const sizes: number[] = [];
    const group = new GroupCommit<number, number>(async (items) => (sizes.push(items.length), items), setImmediate, undefined, 3);
    await Promise.all(Array.from({ length: 8 }, (_, n) => group.submit("team", n)));
    expect(sizes).toEqual([3, 3, 2]);
  });

  it("commits a failed batch again item by item: the bad item fails alone, the innocent ones succeed", async () => {
    const calls: string[][] = [];
    const group = new GroupCommit<string, string>(async (items) => {
      calls.push(items);
      if (items.includes("bad")) throw new Error("constraint violated");
      return items;
    }, setImmediate);
    const settled = await Promise.allSettled(["a", "bad", "c"].map((item) => group.submit("team", item)));
    expect(settled.map((result) => (result.status === "fulfilled" ? result.value : (result.reason as Error).message))).toEqual(["a", "constraint violated", "c"]);
    expect(calls).toEqual([["a", "bad", "c"], ["a"], ["bad"], ["c"]]);
    expect(group.stats).toEqual({ batches: 2, items: 2, failedBatches: 2 });
  });

  it("runs afterCommit for each item in order before the lane's next batch; an error there fails only that item, uncommitted never", async () => {
    const seen: string[] = [];
    const group = new GroupCommit<string, string>(
      async (items) => (seen.push(`commit ${items.join(",")}`), items),
      setImmediate,
      (item) => {
        seen.push(`after ${item}`);
        if (item === "b") throw new Error("publish failed");
      },
    );
    const settled = await Promise.allSettled(["a", "b", "c"].map((item) => group.submit("team", item)));
    expect(settled.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(seen).toEqual(["commit a,b,c", "after a", "after b", "after c"]);
  });
});

describe(`group commit in the charge store (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;
  let team: { teamId: string; mainKey: string };
  let subs: { id: string; apiKeyId: string }[];

  beforeAll(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_RPS: "0" } });
    team = await gw.createTeam({ balance: 1_000 });
    subs = [];
    for (const creditLimit of [300, null]) {
      const made = await gw.gql(
        `mutation($limit: Cents) { createSubAccount(input: { name: "Batched", creditLimit: $limit }) { subAccount { id apiKeys { id } } } }`,
        { limit: creditLimit },
        team.mainKey,
      );
      subs.push({ id: made.data.createSubAccount.subAccount.id, apiKeyId: made.data.createSubAccount.subAccount.apiKeys[0].id });
    }
  });
  afterAll(() => gw?.close());

  const attempt = (sub: { id: string; apiKeyId: string }, cost: number, idempotencyKey: string | null = null): ChargeAttempt =>
    chargeAttemptFor(
      { teamId: team.teamId, accountId: sub.id, apiKeyId: sub.apiKeyId, isTestMode: false },
      { to: "+14155550100", channel: "sms", text: "batched", segments: 1, idempotencyKey, metadata: null },
      BigInt(cost),
      gw.clock.now(),
    );

  it("decides a burst in order, each against what the one before left, with its own outcome, in fewer transactions than charges", async () => {
    const before = { ...gw.db.charges.chargeBatches };
    const committed: CommittedCharge[] = [];
    const [limited, open] = [subs[0]!, subs[1]!];
    // The limited sub-account may spend 300 cents, the team has 1,000: submitted together, in this order.
    const burst = [
      attempt(limited, 100), // stored: limited at 100, balance 900
      attempt(limited, 100), // stored: 200, 800
      attempt(open, 500), // stored: balance 300
      attempt(limited, 100), // stored: limited at its 300, balance 200
      attempt(limited, 100), // refused: past the limit
      attempt(open, 100, "same"), // stored: balance 100
      attempt(open, 100, "same"), // the same idempotency key in the same batch: the original, not charged
      attempt(open, 100), // stored: balance 0
      attempt(open, 100), // refused: the balance is spent
    ];
    const results = await Promise.all(burst.map((a) => gw.db.charges.charge(a, (charge) => committed.push(charge))));
    const outcome = (result: ChargeResult) => (result.kind === "rejected" ? result.code : result.kind);
    expect(results.map(outcome)).toEqual(["stored", "stored", "stored", "stored", "credit_limit_exceeded", "stored", "duplicate", "stored", "insufficient_balance"]);
    expect(results[6]).toEqual({ kind: "duplicate", messageId: burst[5]!.message.id });
    // Each committed charge's onCommitted ran after its commit, in commit order, with gapless sequences.
    expect(committed.map((charge) => [charge.accountId === limited.id ? "limited" : "open", charge.sequence, Number(charge.balanceAfter)])).toEqual([
      ["limited", 1, 900],
      ["limited", 2, 800],
      ["open", 1, 300],
      ["limited", 3, 200],
      ["open", 2, 100],
      ["open", 3, 0],
    ]);
    const after = gw.db.charges.chargeBatches;
    expect(after.items - before.items).toBe(burst.length);
    expect(after.batches - before.batches).toBeLessThan(burst.length);
    // The daily totals add up every stored charge of the batch, several of them to the same row.
    const daily = await gw.db.prisma.spendDaily.findMany({ where: { teamId: team.teamId }, orderBy: { amount: "asc" } });
    expect(daily.map((row) => [row.accountId, row.messages, row.segments, Number(row.amount)])).toEqual([
      [limited.id, 3, 3, 300],
      [open.id, 3, 3, 700],
    ]);
    const teamDaily = await gw.db.prisma.teamSpendDaily.findMany({ where: { teamId: team.teamId } });
    expect(teamDaily.map((row) => [row.channel, row.messages, row.segments, Number(row.amount)])).toEqual([["sms", 6, 6, 1000]]);
    await checkInvariants(gw.db, team.teamId);
  });

  it("a charge that breaks its whole batch fails alone: the others in the batch are committed, once", async () => {
    await gw.gateway.services.teams.topUp(team.teamId, 10_000);
    const open = subs[1]!;
    const first = attempt(open, 10);
    await gw.db.charges.charge(first, () => {});
    const before = { ...gw.db.charges.chargeBatches };
    // The same message id again: its insert violates the primary key, which fails the whole batch it is in.
    const clash = { ...attempt(open, 10), message: { ...attempt(open, 10).message, id: first.message.id } };
    const innocents = [attempt(open, 10), attempt(open, 10), attempt(open, 10)];
    const settled = await Promise.allSettled([innocents[0]!, clash, innocents[1]!, innocents[2]!].map((a) => gw.db.charges.charge(a, () => {})));
    expect(settled.map((result) => (result.status === "fulfilled" ? result.value.kind : "error"))).toEqual(["stored", "error", "stored", "stored"]);
    expect(gw.db.charges.chargeBatches.failedBatches - before.failedBatches).toBeGreaterThanOrEqual(1);
    for (const innocent of innocents) expect(await gw.db.prisma.ledgerEntry.count({ where: { messageId: innocent.message.id } })).toBe(1);
    await checkInvariants(gw.db, team.teamId);
  });
});
