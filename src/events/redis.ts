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

/** The most events one Redis message carries. */
export const EVENTS_PER_MESSAGE_MAX = 256;

type TopicEvent = { [T in keyof Topics]: { topic: T; event: Topics[T] } }[keyof Topics];
type Envelope = { type: "events"; events: TopicEvent[] } | { type: "access"; signal: AccessChange };

/** Hands a message read from the channel to this instance's subscribers (events) or access listeners. */
function receive(raw: string, local: LocalTopics, dispatchAccess: (signal: AccessChange) => void, onError: (error: unknown) => void): void {
  let envelope: Envelope | null;
  try {
    envelope = JSON.parse(raw) as Envelope | null;
  } catch (error) {
    onError(error);
    return;
  }
  if (envelope?.type === "events") for (const { topic, event } of envelope.events) local.publish(topic, event as never);
  else if (envelope?.type === "access") dispatchAccess(envelope.signal);
  else onError(new Error(`Ignored a bus message of unknown type ${JSON.stringify((envelope as { type?: unknown } | null)?.type ?? null)}`));
}

/** Gathers the events of one synchronous run; the microtask right after it sends them, in order, EVENTS_PER_MESSAGE_MAX to a message. */
function gatherPerRun(send: (events: TopicEvent[]) => void): (event: TopicEvent) => void {
  let gathered: TopicEvent[] = [];
  const sendGathered = () => {
    const events = gathered;
    gathered = [];
    for (let start = 0; start < events.length; start += EVENTS_PER_MESSAGE_MAX) send(events.slice(start, start + EVENTS_PER_MESSAGE_MAX));
  };
  return (event) => {
    if (gathered.length === 0) queueMicrotask(sendGathered);
    gathered.push(event);
  };
}

/**
 * Several instances: every event goes through one Redis channel and each
 * instance fans it out to its own subscribers. The events published in one
 * synchronous run (a committed charge batch publishes its charges' events in
 * one loop) leave together, in order, as one message, sent by the microtask
 * right after it: one PUBLISH (a write to Redis) and one message to read on
 * each instance per batch, not per charge. Publishing never waits for or
 * fails a charge (fire and forget, given up after `timeoutMs`): an event lost
 * while Redis is down or stalled is read from the ledger by its subscribers
 * (the ledger check of src/services/live/), and a lost revocation is caught by the
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

  const dispatchAccess = (signal: AccessChange) => accessListeners.forEach((listener) => listener(signal));
  subscriber.on("message", (_channel: string, raw: string) => receive(raw, local, dispatchAccess, options.onError));
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

  const publishEvent = gatherPerRun((events) => void publish({ type: "events", events }));

  return {
    kind: "redis",
    get state() {
      return state;
    },
    publish: (topic, event) => publishEvent({ topic, event } as TopicEvent),
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
