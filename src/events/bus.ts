import type { AccessChange, Topics } from "./types.ts";

export type BusState = "up" | "down";

/**
 * Carries what every gateway instance must hear: events by topic (spend
 * updates, spend alerts) to their subscribers, and access revocations (to end
 * subscriptions at once).
 * In-process for one instance (src/events/inProcess.ts), Redis pub/sub for
 * several (src/events/redis.ts).
 */
export interface EventBus {
  readonly kind: "in-process" | "redis";
  publish<T extends keyof Topics>(topic: T, event: Topics[T]): void;
  /** Calls `listener` with each event of a topic for one team, published by any instance; returns the unsubscribe. */
  subscribe<T extends keyof Topics>(topic: T, teamId: string, listener: (event: Topics[T]) => void): () => void;
  /** Resolves once the change is on its way to every instance (or was given up after the timeout); never rejects. */
  publishAccessChange(signal: AccessChange): Promise<void>;
  onAccessChange(listener: (signal: AccessChange) => void): void;
  /** Told when the bus goes down or comes back (never for the in-process bus). */
  onStateChange(listener: (state: BusState) => void): void;
  /** Told of each call given up after its timeout, by operation (never for the in-process bus). */
  onTimeout(listener: (operation: string) => void): void;
  readonly state: BusState;
  close(): Promise<void>;
}
