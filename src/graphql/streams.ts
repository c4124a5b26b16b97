import { DomainError } from "../domain/errors.ts";
import { markShareable } from "./plugins/sharedSubscriptionResults.ts";

/** What a live service stream pushes (the services' sinks, e.g. SpendSink, have this shape). */
export interface Sink<T> {
  update(value: T): void;
  /** Something the subscriber must know; the stream goes on. */
  notice(error: DomainError): void;
  /** The stream ends with this error. */
  end(error: DomainError): void;
}

export type StreamItem<T> =
  | { type: "value"; value: T }
  | { type: "notice"; error: DomainError }
  /** A DomainError, or an unexpected error that the edge masks and logs. */
  | { type: "ended"; error: Error };

/** Updates waiting for one slow subscriber, at most. */
const SUBSCRIPTION_BUFFER_MAX = 10_000;

/**
 * One stream item per event, whoever receives it: every subscriber of an event
 * then shares one execution of its selection (src/graphql/plugins/sharedSubscriptionResults.ts).
 */
const itemsByEvent = new WeakMap<object, StreamItem<unknown>>();

function sharedItem<T extends object>(value: T): StreamItem<T> {
  const known = itemsByEvent.get(value);
  if (known) return known as StreamItem<T>;
  const item = markShareable<StreamItem<T>>({ type: "value", value });
  itemsByEvent.set(value, item);
  return item;
}

/**
 * The queue between a service's sink and the GraphQL subscription reading it: items wait here until the
 * subscription asks for the next one. Small on purpose (an array, one pending reader, one stop): at 10,000
 * open subscriptions, what each one keeps costs memory and every delivered event passes through it.
 */
class StreamQueue<T> implements AsyncIterableIterator<T> {
  readonly #items: T[] = [];
  #reader: ((result: IteratorResult<T>) => void) | null = null;
  #finished = false;
  #stopSource: (() => void) | null = null;
  #stopped = false;
  #direct: ((item: T) => boolean) | null = null;

  /**
   * Items offered to `direct` before the waiting reader: a reader waits only once everything before has been
   * written, so an item `direct` takes (returning true) keeps its place in the stream. Used to write shared
   * results straight to a connection (src/graphql/plugins/sharedSubscriptionResults.ts).
   */
  deliverDirectly(direct: (item: T) => boolean): void {
    this.#direct = direct;
  }

  /**
   * Whether `direct` took the item. Pushes run inside the event bus's dispatch to every stream of a team, so a
   * failure here must not throw: the item then goes to the reader, whose path reports it to this subscriber alone.
   */
  #tryDirect(item: T): boolean {
    try {
      return this.#direct?.(item) ?? false;
    } catch {
      return false;
    }
  }

  /** Queues an item (or hands it to the waiting reader); false when SUBSCRIPTION_BUFFER_MAX items already wait. */
  push(item: T): boolean {
    if (this.#finished) return true;
    if (this.#reader) {
      if (this.#tryDirect(item)) return true;
      const reader = this.#reader;
      this.#reader = null;
      reader({ value: item, done: false });
      return true;
    }
    if (this.#items.length >= SUBSCRIPTION_BUFFER_MAX) return false;
    this.#items.push(item);
    return true;
  }

  /** No more items after those queued; the source is stopped. */
  finish(): void {
    this.#finished = true;
    this.#stop();
    if (this.#reader && this.#items.length === 0) {
      const reader = this.#reader;
      this.#reader = null;
      reader({ value: undefined, done: true });
    }
  }

  /** The source's stop, once it has started (at once if the queue was already finished). */
  started(stopSource: () => void): void {
    this.#stopSource = stopSource;
    if (this.#finished) this.#stop();
  }

  #stop(): void {
    if (this.#stopped || !this.#stopSource) return;
    this.#stopped = true;
    this.#stopSource();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) return Promise.resolve({ value: this.#items.shift()!, done: false });
    if (this.#finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#reader = resolve));
  }

  /** The subscriber went away: drop what waits and stop the source. */
  return(): Promise<IteratorResult<T>> {
    this.#items.length = 0;
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error: unknown): Promise<IteratorResult<T>> {
    this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * A service's live stream as the async iterable a GraphQL subscription
 * resolver returns: `start` opens it into a sink and returns its stop, called
 * when the client goes away or the stream ends. A subscriber that falls
 * SUBSCRIPTION_BUFFER_MAX items behind is ended with `rate_limited`.
 */
export function streamOf<T extends object>(start: (sink: Sink<T>) => Promise<() => void>): AsyncIterableIterator<StreamItem<T>> {
  const queue = new StreamQueue<StreamItem<T>>();
  let ended = false;
  const end = (error: Error) => {
    if (ended) return;
    ended = true;
    queue.push({ type: "ended", error });
    queue.finish();
  };
  const send = (item: StreamItem<T>) => {
    if (!ended && !queue.push(item)) {
      end(new DomainError("rate_limited", `This subscriber fell more than ${SUBSCRIPTION_BUFFER_MAX} updates behind; the subscription has ended. Subscribe again.`));
    }
  };
  start({ update: (value) => send(sharedItem(value)), notice: (error) => send({ type: "notice", error }), end }).then(
    (stopSource) => queue.started(stopSource),
    (error: unknown) => end(error instanceof Error ? error : new Error(String(error))),
  );
  return queue;
}

/** A subscription field's resolve: the value, or the item's error (which ends the stream for "ended"). */
export function valueOf<T>(item: StreamItem<T>): T {
  if (item.type !== "value") throw item.error;
  return item.value;
}
