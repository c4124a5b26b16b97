import type { AccessRevoked } from "../services/deps.ts";
import type { SpendUpdate } from "../services/spend.ts";
import type { EventBus } from "./types.ts";

/** Listeners by key, called synchronously in publish order. */
export class LocalTopic<T> {
  readonly #listeners = new Map<string, Set<(value: T) => void>>();

  publish(key: string, value: T): void {
    for (const listener of this.#listeners.get(key) ?? []) listener(value);
  }

  /** Registered at once (not on first read), so nothing published after this call is missed. */
  subscribe(key: string, listener: (value: T) => void): () => void {
    const set = this.#listeners.get(key) ?? new Set();
    set.add(listener);
    this.#listeners.set(key, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(key);
    };
  }
}

/** One instance: events go straight to this process's subscribers, in publish order. */
export function createInProcessBus(): EventBus {
  const spend = new LocalTopic<SpendUpdate>();
  const accessListeners: ((signal: AccessRevoked) => void)[] = [];
  return {
    kind: "in-process",
    state: "up",
    publishSpend: (update) => spend.publish(update.teamId, update),
    subscribeSpend: (teamId, listener) => spend.subscribe(teamId, listener),
    publishAccessRevoked: (signal) => accessListeners.forEach((listener) => listener(signal)),
    onAccessRevoked: (listener) => void accessListeners.push(listener),
    onStateChange: () => {},
    close: async () => {},
  };
}
