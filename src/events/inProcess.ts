import type { AccessChange, Topics } from "./types.ts";
import type { EventBus } from "./bus.ts";

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

/** Every topic's listeners by team, for the events this instance delivers. */
export class LocalTopics {
  readonly #topics = new Map<keyof Topics, LocalTopic<unknown>>();

  #topic<T extends keyof Topics>(topic: T): LocalTopic<Topics[T]> {
    let local = this.#topics.get(topic);
    if (!local) this.#topics.set(topic, (local = new LocalTopic<unknown>()));
    return local as LocalTopic<Topics[T]>;
  }

  publish<T extends keyof Topics>(topic: T, event: Topics[T]): void {
    this.#topic(topic).publish(event.teamId, event);
  }

  subscribe<T extends keyof Topics>(topic: T, teamId: string, listener: (event: Topics[T]) => void): () => void {
    return this.#topic(topic).subscribe(teamId, listener);
  }
}

/** One instance: events go straight to this process's subscribers, in publish order. */
export function createInProcessBus(): EventBus {
  const topics = new LocalTopics();
  const accessListeners: ((signal: AccessChange) => void)[] = [];
  return {
    kind: "in-process",
    state: "up",
    publish: (topic, event) => topics.publish(topic, event),
    subscribe: (topic, teamId, listener) => topics.subscribe(topic, teamId, listener),
    publishAccessChange: async (signal) => accessListeners.forEach((listener) => listener(signal)),
    onAccessChange: (listener) => void accessListeners.push(listener),
    onStateChange: () => {},
    onTimeout: () => {},
    close: async () => {},
  };
}
