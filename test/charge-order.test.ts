import { afterEach, describe, expect, it, vi } from "vitest";
import type { SpendUpdate } from "../src/events/types.ts";
import { KeyIndex, SequenceOrder } from "../src/services/live/order.ts";
import { GAP_WAIT_MS, LiveStream, type EventSource } from "../src/services/live/stream.ts";

const update = (account: string, sequence: number): SpendUpdate => ({
  teamId: "t",
  subAccount: { id: account, totalSpent: sequence, creditLimit: null, status: "active" },
  amount: 1,
  messageId: `${account}-${sequence}`,
  teamBalance: 0,
  remainingCredit: null,
  limitReached: false,
  chargedAt: new Date(0).toISOString(),
  sequence,
  budgetRemaining: null,
});
const seqs = (updates: SpendUpdate[]) => updates.map((u) => `${u.subAccount.id}${u.sequence}`);

const bySubAccount = { keyOf: (u: SpendUpdate) => u.subAccount.id, sequenceOf: (u: SpendUpdate) => u.sequence };
class ChargeOrder extends SequenceOrder<SpendUpdate> {
  constructor(startAfter: Map<string, number>) {
    super(bySubAccount, startAfter);
  }
}

describe("SequenceOrder: per sub-account charge order on the subscriber side", () => {
  it("releases events in sequence order when they arrive crossed", () => {
    const order = new ChargeOrder(new Map());
    expect(seqs(order.accept(update("a", 2)))).toEqual([]);
    expect(seqs(order.accept(update("b", 1)))).toEqual(["b1"]);
    expect(seqs(order.accept(update("a", 3)))).toEqual([]);
    expect(order.firstHeld("a")).toBe(2);
    expect(order.waitingKeys).toEqual(["a"]);
    expect(seqs(order.accept(update("a", 1)))).toEqual(["a1", "a2", "a3"]);
    expect(order.waitingKeys).toEqual([]);
  });

  it("drops duplicates and charges from before the starting point", () => {
    const order = new ChargeOrder(new Map([["a", 5]]));
    expect(seqs(order.accept(update("a", 4)))).toEqual([]);
    expect(seqs(order.accept(update("a", 6)))).toEqual(["a6"]);
    expect(seqs(order.accept(update("a", 6)))).toEqual([]);
    expect(order.isNew(update("a", 6))).toBe(false);
    expect(order.isNew(update("a", 7))).toBe(true);
  });

  it("orders sharing one KeyIndex (a team's subscriptions) keep their own positions, keys added later included", () => {
    const keys = new KeyIndex();
    const early = new SequenceOrder(bySubAccount, new Map([["a", 3]]), keys);
    const late = new SequenceOrder(bySubAccount, new Map([["b", 7], ["a", 5]]), keys);
    expect(seqs(early.accept(update("a", 4)))).toEqual(["a4"]);
    expect(seqs(late.accept(update("a", 4)))).toEqual([]);
    expect(seqs(early.accept(update("b", 1)))).toEqual(["b1"]);
    expect(seqs(late.accept(update("b", 8)))).toEqual(["b8"]);
    expect(seqs(early.accept(update("c", 1)))).toEqual(["c1"]);
    expect([early.next("a"), early.next("b"), early.next("c"), late.next("a"), late.next("b"), late.next("c")]).toEqual([5, 2, 2, 6, 9, 1]);
  });

  it("moves past sequences that will never come only when told to (a purged account)", () => {
    const order = new ChargeOrder(new Map());
    order.accept(update("a", 1));
    expect(seqs(order.accept(update("a", 3)))).toEqual([]);
    expect(seqs(order.accept(update("a", 4)))).toEqual([]);
    expect(seqs(order.skipTo("a", 3))).toEqual(["a3", "a4"]);
    expect(seqs(order.accept(update("a", 5)))).toEqual(["a5"]);
  });
});

/** A ledger holding charges 1..n per account (minus those `purged`), counting its reads. */
function fakeLedger(latest: Map<string, number>, purged = new Set<string>()) {
  const reads: [string, number, number][] = [];
  const ledger: EventSource<SpendUpdate> = {
    ...bySubAccount,
    async read(accountId, from, to) {
      reads.push([accountId, from, to]);
      const out: SpendUpdate[] = [];
      for (let sequence = from; sequence <= Math.min(to, latest.get(accountId) ?? 0); sequence += 1) {
        if (!purged.has(`${accountId}${sequence}`)) out.push(update(accountId, sequence));
      }
      return out;
    },
    async latest() {
      return new Map([...latest].map(([id, sequence]) => [id, { teamId: "t", sequence }]));
    },
  };
  return { ledger, reads };
}

function liveSubscription(ledger: EventSource<SpendUpdate>, startAfter: Map<string, number>) {
  const delivered: SpendUpdate[] = [];
  let recovered = 0;
  const subscription = new LiveStream<SpendUpdate>(
    { apiKeyId: "k", accountId: "m", teamId: "t", kind: "main", environment: "live", scopes: ["spend:read"] },
    { team: "t" },
    () => true,
    ledger,
    { update: (u) => delivered.push(u), notice: () => {}, end: () => {} },
    { recovered: (n) => (recovered += n), onError: (error) => { throw error; } },
  );
  subscription.start(startAfter);
  return { subscription, delivered, recovered: () => recovered };
}

describe("LiveStream: gaps are filled from the ledger", () => {
  afterEach(() => vi.useRealTimers());

  it("a lost event is read from the ledger GAP_WAIT_MS after the first event held, however often events keep coming", async () => {
    vi.useFakeTimers();
    const latest = new Map([["a", 1]]);
    const { ledger, reads } = fakeLedger(latest);
    const live = liveSubscription(ledger, new Map([["a", 0]]));
    live.subscription.receive(update("a", 1));
    // Event 2 is lost; 3, 4, 5... arrive every 100 ms, more often than the wait.
    latest.set("a", 2);
    for (let sequence = 3; sequence <= 12; sequence += 1) {
      latest.set("a", sequence);
      live.subscription.receive(update("a", sequence));
      await vi.advanceTimersByTimeAsync(100);
      if (sequence === 3 + Math.ceil(GAP_WAIT_MS / 100)) expect(seqs(live.delivered)).toContain("a2");
    }
    expect(seqs(live.delivered)).toEqual(Array.from({ length: 12 }, (_, i) => `a${i + 1}`));
    expect(reads).toEqual([["a", 2, 2]]);
    expect(live.recovered()).toBe(1);
  });

  it("a quiet account's lost last event is found by the periodic check, and nothing is delivered twice", async () => {
    const latest = new Map([["a", 3], ["b", 1]]);
    const { ledger } = fakeLedger(latest);
    const live = liveSubscription(ledger, new Map([["a", 1], ["b", 1]]));
    live.subscription.receive(update("a", 2));
    // a3 was committed, its event lost, and the account went quiet.
    live.subscription.catchUp("a", 3);
    live.subscription.catchUp("b", 1);
    await vi.waitFor(() => expect(seqs(live.delivered)).toEqual(["a2", "a3"]));
    live.subscription.receive(update("a", 3));
    live.subscription.catchUp("a", 3);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(seqs(live.delivered)).toEqual(["a2", "a3"]);
  });

  it("replays a resumed account from the ledger in batches, then goes on live with no gap and no duplicate", async () => {
    const latest = new Map([["a", 2500]]);
    const { ledger, reads } = fakeLedger(latest);
    const live = liveSubscription(ledger, new Map([["a", 10]]));
    live.subscription.receive(update("a", 2501));
    await live.subscription.fill("a", 2500);
    latest.set("a", 2501);
    live.subscription.receive(update("a", 2501));
    expect(live.delivered.map((u) => u.sequence)).toEqual(Array.from({ length: 2491 }, (_, i) => i + 11));
    expect(reads.length).toBe(3);
  });

  it("moves past charges the ledger no longer holds (a purged sub-account)", async () => {
    const latest = new Map([["a", 3]]);
    const { ledger } = fakeLedger(latest, new Set(["a2"]));
    const live = liveSubscription(ledger, new Map([["a", 1]]));
    live.subscription.receive(update("a", 3));
    await live.subscription.fill("a");
    expect(seqs(live.delivered)).toEqual(["a3"]);
  });
});
