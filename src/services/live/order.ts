/** How an event of a stream names its ordering key and its place in that key's gapless sequence. */
export interface Sequenced<E> {
  keyOf(event: E): string;
  sequenceOf(event: E): number;
}

/**
 * Positions of keys (a team's sub-accounts) in the dense arrays of next
 * sequence numbers that every subscription of the team keeps: the keys are
 * stored once, shared, and each subscription keeps one small number per key.
 * With 10,000 subscriptions of a team of 20 sub-accounts, that is the
 * difference between 10,000 maps of 20 entries and 10,000 arrays of 20 numbers.
 */
export class KeyIndex {
  readonly #positions = new Map<string, number>();

  /** The key's position, given one if it has none yet. */
  positionOf(key: string): number {
    let position = this.#positions.get(key);
    if (position === undefined) {
      position = this.#positions.size;
      this.#positions.set(key, position);
    }
    return position;
  }

  /** The key's position, or undefined if no subscription has needed it. */
  find(key: string): number | undefined {
    return this.#positions.get(key);
  }
}

/**
 * Puts one subscription's events in sequence order per key (a sub-account's
 * charges, a team's alerts), with nothing skipped and nothing twice.
 * Instances publish after their own commits, so two events of one key from two
 * instances can cross on the bus, and an event can be lost (Redis restarted,
 * an instance killed between its commit and its publish): the gapless
 * sequence numbers show the order and the gaps, which the subscription fills
 * from the database.
 */
export class SequenceOrder<E> {
  /** The next sequence number due, by the key's position in `keys`; 0 (or none) for a key with no event yet: 1 is due. */
  readonly #next: number[] = [];
  /** Events that arrived ahead of a missing one, per key, by sequence (made at the first gap: most streams never see one). */
  #heldByKey: Map<string, Map<number, E>> | null = null;
  #heldCount = 0;

  /** `startAfter`: per key, the last sequence already seen (or not wanted). `keys`: shared with the team's other subscriptions. */
  constructor(
    private readonly sequenced: Sequenced<E>,
    startAfter: Map<string, number>,
    private readonly keys: KeyIndex = new KeyIndex(),
  ) {
    for (const [key, sequence] of startAfter) this.#setNext(key, sequence + 1);
  }

  next(key: string): number {
    const position = this.keys.find(key);
    return (position === undefined ? undefined : this.#next[position]) || 1;
  }

  #setNext(key: string, sequence: number): void {
    const position = this.keys.positionOf(key);
    // Positions given to the team's keys by other subscriptions since this one started: 0 (nothing due but 1).
    while (this.#next.length < position) this.#next.push(0);
    this.#next[position] = sequence;
  }

  /** Whether this event is due or ahead (not already delivered, not before the start). */
  isNew(event: E): boolean {
    const key = this.sequenced.keyOf(event);
    const sequence = this.sequenced.sequenceOf(event);
    return sequence >= this.next(key) && !this.#heldByKey?.get(key)?.has(sequence);
  }

  /** Accepts one event; returns those now deliverable, in order. */
  accept(event: E): E[] {
    if (!this.isNew(event)) return [];
    const key = this.sequenced.keyOf(event);
    const sequence = this.sequenced.sequenceOf(event);
    // The common case, the event due next with nothing held: delivered without holding it.
    if (sequence === this.next(key) && !this.#heldByKey?.has(key)) {
      this.#setNext(key, sequence + 1);
      return [event];
    }
    this.#heldByKey ??= new Map();
    const held = this.#heldByKey.get(key) ?? new Map<number, E>();
    held.set(sequence, event);
    this.#heldCount += 1;
    this.#heldByKey.set(key, held);
    return this.#drain(key);
  }

  /** The lowest sequence held ahead of a gap, or null when the key waits for nothing. */
  firstHeld(key: string): number | null {
    const held = this.#heldByKey?.get(key);
    return held && held.size > 0 ? Math.min(...held.keys()) : null;
  }

  /** Keys with events held ahead of a gap. */
  get waitingKeys(): string[] {
    return [...(this.#heldByKey?.keys() ?? [])];
  }

  get heldCount(): number {
    return this.#heldCount;
  }

  /**
   * Moves a key past sequences that will never come (the database does not
   * hold them: a purged sub-account) and releases what follows.
   */
  skipTo(key: string, sequence: number): E[] {
    if (sequence > this.next(key)) this.#setNext(key, sequence);
    const held = this.#heldByKey?.get(key);
    for (const stale of [...(held?.keys() ?? [])].filter((at) => at < sequence)) {
      held!.delete(stale);
      this.#heldCount -= 1;
    }
    return this.#drain(key);
  }

  #drain(key: string): E[] {
    const held = this.#heldByKey?.get(key);
    const ready: E[] = [];
    if (!held) return ready;
    let expected = this.next(key);
    for (let event = held.get(expected); event !== undefined; event = held.get(expected)) {
      held.delete(expected);
      this.#heldCount -= 1;
      ready.push(event);
      expected += 1;
    }
    this.#setNext(key, expected);
    if (held.size === 0) this.#heldByKey!.delete(key);
    return ready;
  }
}
