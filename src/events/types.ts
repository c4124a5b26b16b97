/**
 * The events the gateway raises, as they travel between instances. Each type
 * is JSON-safe (numbers, strings), so the Redis bus can carry it unchanged.
 * A new event type goes here, with a topic on the bus (src/events/bus.ts).
 */

/** What subscribers of `spendUpdated` receive after each committed charge of a sub-account. */
export interface SpendUpdate {
  teamId: string;
  subAccount: { id: string; totalSpent: number; creditLimit: number | null; status: "active" | "inactive" };
  amount: number;
  messageId: string;
  teamBalance: number;
  remainingCredit: number | null;
  limitReached: boolean;
  chargedAt: string;
  /** The sub-account's gapless charge sequence number (1 for its first charge). */
  sequence: number;
  /** What the budget's current period has left after this charge; null without a budget. */
  budgetRemaining: number | null;
}

/** What subscribers of `spendAlertRaised` receive when a charge crosses a threshold. */
export interface SpendAlertEvent {
  teamId: string;
  id: string;
  /** The team's gapless alert sequence number. */
  sequence: number;
  kind: "credit_limit" | "budget" | "low_balance";
  /** The sub-account whose charge crossed it; null for the main account's. */
  subAccountId: string | null;
  thresholdPercent: number | null;
  threshold: number;
  value: number;
  messageId: string;
  createdAt: string;
}

/** Every kind of event the bus carries, by topic: a new event type is a new entry here. */
export interface Topics {
  spend: SpendUpdate;
  alert: SpendAlertEvent;
}

/**
 * Access changes every instance must hear at once. Revoked keys and keys of a
 * suspended account stop authenticating and their subscriptions end; changed
 * keys (new scopes, a nearer expiry) are read again on their next request.
 * Each instance forgets the keys concerned from its key cache
 * (src/services/keyCache.ts).
 */
export type AccessChange =
  | { type: "keys_revoked"; apiKeyIds: string[] }
  | { type: "keys_changed"; apiKeyIds: string[] }
  | { type: "account_suspended"; accountId: string };
