import { Redis } from "ioredis";
import type { AccessRevoked } from "../services/deps.ts";
import type { SpendUpdate } from "../services/spend.ts";
import { LocalTopic } from "./inProcess.ts";
import type { BusState, EventBus } from "./types.ts";

export interface RedisBusOptions {
  url: string;
  /** Prefixes every channel, so several deployments (or test runs) can share one Redis. */
  prefix: string;
  onError: (error: unknown) => void;
}

/** Caps the reconnect back-off so delivery resumes soon after Redis returns. */
const RECONNECT_MAX_MS = 1000;

type Envelope = { type: "spend"; update: SpendUpdate } | { type: "access"; signal: AccessRevoked };

/**
 * Several instances: every event goes through one Redis channel and each
 * instance fans it out to its own subscribers. Publishing never waits for or
 * fails a charge: while Redis is down, events are dropped (and subscribers are
 * told), charges go on.
 */
export async function createRedisBus(options: RedisBusOptions): Promise<EventBus> {
  const channel = `${options.prefix}events`;
  const clientOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, RECONNECT_MAX_MS),
  };
  const publisher = new Redis(options.url, clientOptions);
  const subscriber = new Redis(options.url, { ...clientOptions, enableOfflineQueue: true });
  publisher.on("error", options.onError);
  subscriber.on("error", options.onError);

  const local = new LocalTopic<SpendUpdate>();
  const accessListeners: ((signal: AccessRevoked) => void)[] = [];
  const stateListeners: ((state: BusState) => void)[] = [];
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
    if (envelope.type === "spend") local.publish(envelope.update.teamId, envelope.update);
    else accessListeners.forEach((listener) => listener(envelope.signal));
  });
  // A subscribed connection is "ready" again only after ioredis has re-subscribed.
  subscriber.on("ready", () => setState("up"));
  subscriber.on("close", () => setState("down"));

  await Promise.all([publisher.connect(), subscriber.connect()]);
  await subscriber.subscribe(channel);
  setState("up");

  const publish = (envelope: Envelope) => {
    publisher.publish(channel, JSON.stringify(envelope)).catch(options.onError);
  };

  return {
    kind: "redis",
    get state() {
      return state;
    },
    publishSpend: (update) => publish({ type: "spend", update }),
    subscribeSpend: (teamId, listener) => local.subscribe(teamId, listener),
    publishAccessRevoked: (signal) => publish({ type: "access", signal }),
    onAccessRevoked: (listener) => void accessListeners.push(listener),
    onStateChange: (listener) => void stateListeners.push(listener),
    async close() {
      publisher.disconnect();
      subscriber.disconnect();
    },
  };
}
