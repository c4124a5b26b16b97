import { Redis } from "ioredis";
import type { AccessChange, Topics } from "./types.ts";
import { LocalTopics } from "./inProcess.ts";
import type { BusState, EventBus } from "./bus.ts";

export interface RedisBusOptions {
  url: string;
  /** Prefixes every channel, so several deployments (or test runs) can share one Redis. */
  prefix: string;
  /** A publish not answered within this is given up (REDIS_TIMEOUT_MS): a stalled Redis never holds a charge's answer. */
  timeoutMs: number;
  onError: (error: unknown) => void;
}

export function isRedisTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === "Command timed out";
}

/** Caps the reconnect back-off so delivery resumes soon after Redis returns. */
const RECONNECT_MAX_MS = 1000;

type Envelope = { [T in keyof Topics]: { type: "event"; topic: T; event: Topics[T] } }[keyof Topics] | { type: "access"; signal: AccessChange };

/**
 * Several instances: every event goes through one Redis channel and each
 * instance fans it out to its own subscribers. Publishing never waits for or
 * fails a charge (fire and forget, given up after `timeoutMs`): an event lost
 * while Redis is down or stalled is read from the ledger by its subscribers
 * (src/services/spend/live.ts), and a lost revocation is caught by the
 * subscriptions' key sweep.
 */
export async function createRedisBus(options: RedisBusOptions): Promise<EventBus> {
  const channel = `${options.prefix}events`;
  const clientOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, RECONNECT_MAX_MS),
  };
  const publisher = new Redis(options.url, { ...clientOptions, commandTimeout: options.timeoutMs });
  const subscriber = new Redis(options.url, { ...clientOptions, enableOfflineQueue: true });
  publisher.on("error", options.onError);
  subscriber.on("error", options.onError);

  const local = new LocalTopics();
  const accessListeners: ((signal: AccessChange) => void)[] = [];
  const stateListeners: ((state: BusState) => void)[] = [];
  const timeoutListeners: ((operation: string) => void)[] = [];
  let state: BusState = "down";
  const setState = (next: BusState) => {
    if (next === state) return;
    state = next;
    stateListeners.forEach((listener) => listener(next));
  };

  subscriber.on("message", (_channel: string, raw: string) => {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(raw) as Envelope;
    } catch (error) {
      options.onError(error);
      return;
    }
    if (envelope.type === "event") local.publish(envelope.topic, envelope.event as never);
    else accessListeners.forEach((listener) => listener(envelope.signal));
  });
  // A subscribed connection is "ready" again only after ioredis has re-subscribed.
  subscriber.on("ready", () => setState("up"));
  subscriber.on("close", () => setState("down"));

  await Promise.all([publisher.connect(), subscriber.connect()]);
  await subscriber.subscribe(channel);
  setState("up");

  const publish = async (envelope: Envelope): Promise<void> => {
    try {
      await publisher.publish(channel, JSON.stringify(envelope));
    } catch (error) {
      if (isRedisTimeout(error)) timeoutListeners.forEach((listener) => listener("publish"));
      else options.onError(error);
    }
  };

  return {
    kind: "redis",
    get state() {
      return state;
    },
    publish: (topic, event) => void publish({ type: "event", topic, event } as Envelope),
    subscribe: (topic, teamId, listener) => local.subscribe(topic, teamId, listener),
    publishAccessChange: (signal) => publish({ type: "access", signal }),
    onAccessChange: (listener) => void accessListeners.push(listener),
    onStateChange: (listener) => void stateListeners.push(listener),
    onTimeout: (listener) => void timeoutListeners.push(listener),
    async close() {
      publisher.disconnect();
      subscriber.disconnect();
    },
  };
}
