import { describe, expect, it } from "vitest";
import { ChargeOrder, type SpendUpdate } from "../src/services/spend.ts";

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
});
const seqs = (updates: SpendUpdate[]) => updates.map((u) => `${u.subAccount.id}${u.sequence}`);

describe("ChargeOrder: per sub-account charge order on the subscriber side", () => {
  it("releases events in sequence order when they arrive crossed", () => {
    const order = new ChargeOrder(new Map());
    expect(seqs(order.accept(update("a", 2)))).toEqual([]);
    expect(seqs(order.accept(update("b", 1)))).toEqual(["b1"]);
    expect(seqs(order.accept(update("a", 3)))).toEqual([]);
    expect(order.waiting).toBe(true);
    expect(seqs(order.accept(update("a", 1)))).toEqual(["a1", "a2", "a3"]);
    expect(order.waiting).toBe(false);
  });

  it("drops duplicates and charges from before the subscription began", () => {
    const order = new ChargeOrder(new Map([["a", 5]]));
    expect(seqs(order.accept(update("a", 4)))).toEqual([]);
    expect(seqs(order.accept(update("a", 6)))).toEqual(["a6"]);
    expect(seqs(order.accept(update("a", 6)))).toEqual([]);
  });

  it("moves past a gap that never fills when asked to", () => {
    const order = new ChargeOrder(new Map());
    order.accept(update("a", 1));
    expect(seqs(order.accept(update("a", 3)))).toEqual([]);
    expect(seqs(order.accept(update("a", 4)))).toEqual([]);
    expect(seqs(order.skipGaps())).toEqual(["a3", "a4"]);
    expect(seqs(order.accept(update("a", 5)))).toEqual(["a5"]);
  });
});
