/** A provider's report that a message moved forward (README.md, "Messages and charging": delivery). */
export interface StatusReport {
  messageId: string;
  status: "sent" | "delivered" | "failed";
  at: Date;
}

/** Reports written with one statement or transaction at most. */
const BATCH_MAX = 500;

interface Pending {
  report: StatusReport;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * How long the first report of a batch waits for others. A report moves a
 * message's status a little later (at most this long); in exchange, under load
 * one write carries the reports of many turns: on PostgreSQL, with two
 * instances, sends went from about 2,100/s to 2,400-2,700/s (bench/notes.md).
 */
export const STATUS_REPORT_GATHER_MS = 20;

/**
 * Delivery reports arrive one message at a time; a write each would double a
 * send's writes. This gathers the reports that arrive within `gatherMs` of the
 * first and hands them to `write` together, each message at most once per call
 * (a second report of the same message waits for the next call, so the order
 * of its steps holds).
 */
export class StatusReportBatcher {
  readonly #pending: Pending[] = [];

  constructor(
    private readonly write: (reports: StatusReport[]) => Promise<void>,
    private readonly gatherMs: number = STATUS_REPORT_GATHER_MS,
  ) {}

  add(report: StatusReport): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ report, resolve, reject });
      if (this.#pending.length === 1) setTimeout(() => void this.#flush(), this.gatherMs);
    });
  }

  #takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const later: Pending[] = [];
    const ids = new Set<string>();
    for (const pending of this.#pending.splice(0)) {
      if (batch.length < BATCH_MAX && !ids.has(pending.report.messageId)) {
        ids.add(pending.report.messageId);
        batch.push(pending);
      } else later.push(pending);
    }
    this.#pending.push(...later);
    return batch;
  }

  async #flush(): Promise<void> {
    const batch = this.#takeBatch();
    if (this.#pending.length > 0) setImmediate(() => void this.#flush());
    try {
      await this.write(batch.map((pending) => pending.report));
      for (const pending of batch) pending.resolve();
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }
}
