import { expect } from "vitest";
import { createAgent, postJson } from "./http.ts";

export const SEND = `mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id cost accountId } }`;
export const SPEND = `subscription Spend($id: ID) { spendUpdated(subAccountId: $id) { subAccount { id totalSpent creditLimit status } amount messageId teamBalance remainingCredit limitReached chargedAt sequence } }`;

/** Destinations and texts whose prices differ: 1, 2, 4 and 8 cents with the built-in table. */
const VARIANTS = [
  { to: "+14155550100", text: "Your code is 123456" }, // 1 segment x 1 cent
  { to: "+14155550101", text: "x".repeat(200) }, // GSM-7, 2 segments x 1 cent
  { to: "+447700900123", text: "Hello from London" }, // 1 segment x 4 cents
  { to: "+447700900124", text: "Olá, tudo bem? ✓ ".repeat(5) }, // UCS-2 > 70 units: 2 segments x 4 cents
];

export interface StormAccount {
  id: string;
  key: string;
  creditLimit: number | null;
}

export interface StormOutcome {
  account: StormAccount;
  status: number;
  cost?: number;
  messageId?: string;
  code?: string;
  details?: { cost: number; totalSpent: number; creditLimit: number | null; balance: number };
}

/** Fires `total` sends at once, spread round-robin over the accounts and the given gateway URLs. */
export async function fireSends(urls: string[], accounts: StormAccount[], total: number): Promise<StormOutcome[]> {
  const agents = urls.map(() => createAgent(64));
  const sends = Array.from({ length: total }, async (_, index) => {
    const account = accounts[index % accounts.length]!;
    const variant = VARIANTS[Math.floor(index / accounts.length) % VARIANTS.length]!;
    const target = index % urls.length;
    const response = await postJson(`${urls[target]}/graphql`, { query: SEND, variables: { input: variant } }, { authorization: `Bearer ${account.key}` }, agents[target]!);
    const error = response.body.errors?.[0];
    return {
      account,
      status: response.status,
      cost: response.body.data?.sendMessage?.cost,
      messageId: response.body.data?.sendMessage?.id,
      code: error?.extensions?.code,
      details: error?.extensions?.details,
    } satisfies StormOutcome;
  });
  try {
    return await Promise.all(sends);
  } finally {
    agents.forEach((agent) => agent.destroy());
  }
}

export interface FinalState {
  balance: number;
  accounts: Map<string, { totalSpent: number; creditLimit: number | null }>;
}

/**
 * Accepted sends are exactly what the limits and the balance allow: every
 * acceptance fits, and every refusal is still justified by the final state
 * (spending only grows and the balance only shrinks, so a refusal justified
 * when made stays justified).
 */
export function expectExactOutcome(outcomes: StormOutcome[], final: FinalState) {
  const unexpected = outcomes.filter((o) => !(o.status === 200 && o.messageId) && !(o.status === 402 && o.code));
  expect(unexpected, "every send is either charged (200) or refused with 402").toEqual([]);
  for (const [id, account] of final.accounts) {
    const accepted = outcomes.filter((o) => o.account.id === id && o.status === 200);
    const charged = accepted.reduce((sum, o) => sum + o.cost!, 0);
    expect(charged, `sum of accepted costs for ${id}`).toBe(account.totalSpent);
    if (account.creditLimit !== null) expect(account.totalSpent).toBeLessThanOrEqual(account.creditLimit);
  }
  expect(final.balance).toBeGreaterThanOrEqual(0);
  for (const refused of outcomes.filter((o) => o.status === 402)) {
    const account = final.accounts.get(refused.account.id)!;
    expect(refused.details?.cost).toBe(refused.details?.cost); // present
    if (refused.code === "credit_limit_exceeded") {
      expect(account.creditLimit).not.toBeNull();
      expect(account.totalSpent + refused.details!.cost, "a credit-limit refusal is still justified").toBeGreaterThan(account.creditLimit!);
    } else {
      expect(refused.code).toBe("insufficient_balance");
      expect(final.balance, "a balance refusal is still justified").toBeLessThan(refused.details!.cost);
    }
  }
}

/** One event per accepted send, and per sub-account in charge order: sequence 1, 2, 3... and totalSpent rising. */
export function expectEventsMatch(events: any[], accepted: StormOutcome[], label: string) {
  const updates = events.map((event) => event.spendUpdated);
  expect(updates.map((u) => u.messageId).sort(), `${label}: one event per accepted send`).toEqual(accepted.map((o) => o.messageId).sort());
  const byAccount = new Map<string, any[]>();
  for (const update of updates) byAccount.set(update.subAccount.id, [...(byAccount.get(update.subAccount.id) ?? []), update]);
  for (const [id, list] of byAccount) {
    list.forEach((update, index) => {
      expect(update.sequence, `${label}: ${id} event ${index} in charge order`).toBe(index + 1);
      if (index > 0) expect(update.subAccount.totalSpent).toBeGreaterThan(list[index - 1].subAccount.totalSpent);
    });
  }
}
