import type { DomainError } from "../../domain/errors.ts";
import type { Actor } from "../deps.ts";
import { KeyIndex, SequenceOrder, type Sequenced } from "./order.ts";

/** Where one subscription's stream goes: the transport (graphql-ws, SSE) adapts it. */
export interface Sink<E> {
  /** An event, in sequence order per key. */
  update(event: E): void;
  /** Something the subscriber must know; the stream goes on. */
  notice(error: DomainError): void;
  /** The last thing the stream carries: it ends with this error. */
  end(error: DomainError): void;
}

/** What a kind of live event is read back from: the database, the truth behind the bus. */
export interface EventSource<E> extends Sequenced<E> {
  /** One key's events with a sequence in [from, to], in order. */
  read(key: string, from: number, to: number): Promise<E[]>;
  /** The latest sequence of every key of the teams named, and of the keys named. */
  latest(watched: { teamIds: string[]; keys: string[] }): Promise<Map<string, { teamId: string; sequence: number }>>;
}

/** What one subscription follows: every key of its team (a main key's spend), or one key. */
export type Watch = { team: string } | { key: string };

/**
 * How long a subscriber waits for a missing event before reading it from the
 * database. Counted from the first event held ahead of it: later events never
 * extend the wait.
 */
export const GAP_WAIT_MS = 250;
/** Rows read per query while filling a gap or replaying. */
const FILL_BATCH_MAX = 1000;
/** Events held ahead of gaps per subscription before every gap is filled at once. */
const HELD_EVENTS_MAX = 10_000;

/** The reads on their way to each source, by key and range. */
const readsInFlight = new WeakMap<EventSource<unknown>, Map<string, Promise<unknown[]>>>();

/**
 * One key's events in [from, to], sharing a read already on its way for the same range: when an event
 * goes missing (a bus message lost, or the ledger check reading the database before the bus delivered),
 * every stream of the team asks for the same rows at once, and thousands of identical queries would
 * hold the instance up for seconds. They wait on one instead.
 */
function readShared<E>(source: EventSource<E>, key: string, from: number, to: number): Promise<E[]> {
  let reads = readsInFlight.get(source as EventSource<unknown>);
  if (!reads) readsInFlight.set(source as EventSource<unknown>, (reads = new Map()));
  const range = `${key}\u0000${from}\u0000${to}`;
  let reading = reads.get(range) as Promise<E[]> | undefined;
  if (!reading) {
    const inFlight = reads;
    reading = source.read(key, from, to).finally(() => inFlight.delete(range));
    reads.set(range, reading);
  }
  return reading;
}

export interface LiveOptions {
  /** Told how many events were delivered from the database rather than the bus. */
  recovered(count: number): void;
  onError(error: unknown): void;
}

/**
 * One open subscription: it takes events from the bus, delivers those it
 * wants in sequence order per key, and fills every gap from the database (one
 * query for the whole gap), after GAP_WAIT_MS or when the instance's periodic
 * check finds an event it has not seen. It never skips a committed event and
 * never delivers one twice.
 */
export class LiveStream<E> {
  #order: SequenceOrder<E> | null = null;
  /** Events that came before the starting point was known. */
  #early: E[] = [];
  /** Gap waits and fills in progress, per key (made at the first gap: most streams never see one). */
  #gaps: { timers: Map<string, NodeJS.Timeout>; filling: Set<string> } | null = null;
  #closed = false;
  /** A read from the database failed since the ledger check last visited this stream. */
  #owesCatchUp = false;

  constructor(
    readonly actor: Actor,
    readonly watch: Watch,
    /** Which events of the watched keys this subscriber receives (a filter on the ordered stream). */
    private readonly wants: (event: E) => boolean,
    readonly source: EventSource<E>,
    readonly sink: Sink<E>,
    private readonly options: LiveOptions,
  ) {}

  /** Starts ordering from `startAfter` (the last sequence per key not wanted), then takes what came early. */
  start(startAfter: Map<string, number>, keys: KeyIndex = new KeyIndex()): void {
    this.#order = new SequenceOrder(this.source, startAfter, keys);
    const early = this.#early;
    this.#early = [];
    for (const event of early) this.receive(event);
  }

  /** The events that arrived before `start`, for the caller to adjust the starting point. */
  get early(): readonly E[] {
    return this.#early;
  }

  watches(key: string, teamId: string): boolean {
    return "key" in this.watch ? this.watch.key === key : this.watch.team === teamId;
  }

  /** An event from the bus (of the subscriber's team): ordered if its key is watched, delivered if wanted. */
  receive(event: E): void {
    const key = this.source.keyOf(event);
    if (this.#closed || !this.watches(key, this.actor.teamId)) return;
    if (!this.#order) return void this.#early.push(event);
    this.#deliver(this.#order.accept(event));
    this.#armGapWait(key);
    if (this.#order.heldCount > HELD_EVENTS_MAX) for (const waiting of this.#order.waitingKeys) void this.fill(waiting);
  }

  /** The instance's periodic check: the latest sequence of a watched key, as the database has it. */
  catchUp(key: string, latest: number): void {
    if (!this.#order || this.#closed || latest < this.#order.next(key)) return;
    if (!this.#gaps?.filling.has(key)) void this.fill(key, latest);
  }

  /** A read from the database failed since the ledger check last visited every key of this stream. */
  get owesCatchUp(): boolean {
    return this.#owesCatchUp;
  }

  /** The ledger check's visit of every watched key, whatever the bus carried (after a failed read). */
  catchUpAll(latest: Map<string, { teamId: string; sequence: number }>): void {
    this.#owesCatchUp = false;
    for (const [key, { teamId, sequence }] of latest) if (this.watches(key, teamId)) this.catchUp(key, sequence);
  }

  close(): void {
    this.#closed = true;
    for (const timer of this.#gaps?.timers.values() ?? []) clearTimeout(timer);
    this.#gaps?.timers.clear();
  }

  #deliver(events: E[]): void {
    if (this.#closed) return;
    for (const event of events) if (this.wants(event)) this.sink.update(event);
  }

  #gapState(): { timers: Map<string, NodeJS.Timeout>; filling: Set<string> } {
    return (this.#gaps ??= { timers: new Map(), filling: new Set() });
  }

  #armGapWait(key: string): void {
    if (!this.#order?.firstHeld(key)) return;
    const gaps = this.#gapState();
    if (gaps.timers.has(key) || gaps.filling.has(key)) return;
    const timer = setTimeout(() => {
      gaps.timers.delete(key);
      void this.fill(key);
    }, GAP_WAIT_MS);
    gaps.timers.set(key, timer);
  }

  /** Reads the key's missing events from the database, up to `upTo` or to the first event held. */
  async fill(key: string, upTo = 0): Promise<void> {
    const order = this.#order;
    const gaps = this.#gapState();
    if (!order || gaps.filling.has(key)) return;
    gaps.filling.add(key);
    clearTimeout(gaps.timers.get(key));
    gaps.timers.delete(key);
    try {
      for (let target = this.#fillTarget(key, upTo); !this.#closed && order.next(key) <= target; target = this.#fillTarget(key, upTo)) {
        await this.#fillBatch(order, key, target);
      }
    } catch (error) {
      this.#owesCatchUp = true;
      this.options.onError(error);
    } finally {
      gaps.filling.delete(key);
      // A failed read is retried after the same wait; so is a gap that opened while filling.
      this.#armGapWait(key);
    }
  }

  #fillTarget(key: string, upTo: number): number {
    const firstHeld = this.#order?.firstHeld(key);
    return Math.max(upTo, firstHeld ? firstHeld - 1 : 0);
  }

  async #fillBatch(order: SequenceOrder<E>, key: string, target: number): Promise<void> {
    const from = order.next(key);
    const to = Math.min(target, from + FILL_BATCH_MAX - 1);
    const events = await readShared(this.source, key, from, to);
    if (this.#closed) return;
    const recovered = events.filter((event) => order.isNew(event));
    this.options.recovered(recovered.filter(this.wants).length);
    for (const event of recovered) this.#deliver(order.accept(event));
    // Sequences the database does not hold will never come (a purged sub-account): move past them.
    if (order.next(key) <= to) this.#deliver(order.skipTo(key, to + 1));
  }
}
