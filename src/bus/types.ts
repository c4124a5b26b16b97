import type { AccessRevoked } from "../services/deps.ts";
import type { SpendUpdate } from "../services/spend.ts";

export type BusState = "up" | "down";

/**
 * Carries what every gateway instance must hear: spend updates (to their
 * subscribers) and access revocations (to end subscriptions at once).
 */
export interface EventBus {
  readonly kind: "in-process" | "redis";
  publishSpend(update: SpendUpdate): void;
  /** Calls `listener` with each spend update of one team, published by any instance; returns the unsubscribe. */
  subscribeSpend(teamId: string, listener: (update: SpendUpdate) => void): () => void;
  publishAccessRevoked(signal: AccessRevoked): void;
  onAccessRevoked(listener: (signal: AccessRevoked) => void): void;
  /** Told when the bus goes down or comes back (never for the in-process bus). */
  onStateChange(listener: (state: BusState) => void): void;
  readonly state: BusState;
  close(): Promise<void>;
}
