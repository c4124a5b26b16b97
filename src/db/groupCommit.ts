import { assert } from "../domain/errors.ts";

/** The most items one batch carries: one transaction, one round trip. */
export const GROUP_COMMIT_MAX = 256;

interface Waiting<Item, Outcome> {
  item: Item;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

interface Lane<Item, Outcome> {
  waiting: Waiting<Item, Outcome>[];
}

/**
 * Group commit, in the spirit of TigerBeetle's batching: the items that arrive
 * while a batch commits go together in the next one, so a burst pays one
 * transaction (and on PostgreSQL one round trip and one update of the team's
 * row) instead of one each. Per lane (a team), at most one batch is in flight,
 * so a lane's items commit in the order they were submitted.
 *
 * `commit` decides every item of a batch in order, each against what the one
 * before it left, and returns one outcome per item, all committed together; an
 * item's promise settles only after that commit. If `commit` throws, the batch
 * as a whole failed (nothing of it was committed): each of its items is then
 * committed again alone, in order, so one bad item fails alone and never an
 * innocent one.
 */
/** What a GroupCommit has done: batches committed, the items in them, and the batches that failed as a whole. */
export interface GroupCommitStats {
  batches: number;
  items: number;
  failedBatches: number;
}

export class GroupCommit<Item, Outcome> {
  readonly #lanes = new Map<string, Lane<Item, Outcome>>();
  readonly stats: GroupCommitStats = { batches: 0, items: 0, failedBatches: 0 };

  /**
   * `startBatch` decides when a lane's first batch starts: at once
   * (queueMicrotask) when committing waits on the network, or after the
   * current event-loop turn (setImmediate) when it blocks the thread, so that
   * the turn's items can join it.
   */
  constructor(
    private readonly commit: (items: Item[]) => Promise<Outcome[]>,
    private readonly startBatch: (run: () => void) => void,
    /**
     * Runs for each item right after its batch committed, in order, before the lane's next batch starts (e.g.
     * publishing a charge's event, so events leave in commit order). Never retried: if it throws, that
     * item's promise rejects with the error, its commit stands.
     */
    private readonly afterCommit: (item: Item, outcome: Outcome) => void = () => {},
    private readonly maxBatch: number = GROUP_COMMIT_MAX,
  ) {
    assert(maxBatch >= 1, "a batch holds at least one item");
  }

  submit(laneKey: string, item: Item): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      let lane = this.#lanes.get(laneKey);
      if (!lane) {
        lane = { waiting: [] };
        this.#lanes.set(laneKey, lane);
        const started = lane;
        this.startBatch(() => void this.#drain(laneKey, started));
      }
      lane.waiting.push({ item, resolve, reject });
    });
  }

  /** Commits the lane's batches one after the other until nothing waits, then retires the lane. */
  async #drain(laneKey: string, lane: Lane<Item, Outcome>): Promise<void> {
    while (lane.waiting.length > 0) {
      await this.#commitBatch(lane.waiting.splice(0, this.maxBatch));
    }
    this.#lanes.delete(laneKey);
  }

  async #commitBatch(batch: Waiting<Item, Outcome>[]): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.commit(batch.map((waiting) => waiting.item));
    } catch (error) {
      this.stats.failedBatches += 1;
      if (batch.length === 1) return batch[0]!.reject(error);
      for (const waiting of batch) await this.#commitBatch([waiting]);
      return;
    }
    assert(outcomes.length === batch.length, "one outcome per item of a batch");
    this.stats.batches += 1;
    this.stats.items += batch.length;
    batch.forEach((waiting, index) => {
      const outcome = outcomes[index]!;
      try {
        this.afterCommit(waiting.item, outcome);
        waiting.resolve(outcome);
      } catch (error) {
        waiting.reject(error);
      }
    });
  }

}
