import { Worker } from "node:worker_threads";
import type { ChargeAttempt, ChargeResult } from "./charges.ts";
import type { StatusReport } from "./statusReports.ts";
import type { WriterError, WriterOp, WriterReply, WriterRequest, WriterThreadData } from "./sqliteWriterProtocol.ts";

const BOOT = new URL("./sqliteWriterBoot.mjs", import.meta.url);
const ENTRY = new URL("./sqliteWriterThread.ts", import.meta.url).href;

/**
 * Requests sent to the writer thread and not yet answered, at most: a bound on what a stalled thread can pile up.
 * Far from reached in use: group commit sends one batch at a time, delivery reports one write per window.
 */
const IN_FLIGHT_MAX = 100_000;

interface Waiting {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** An error of the writer thread, rebuilt on this side with its code (SQLITE_CONSTRAINT_PRIMARYKEY, ...). */
function rebuilt(error: WriterError): Error {
  const rebuiltError = new Error(error.message) as Error & { code?: string };
  rebuiltError.name = error.name;
  if (error.code !== undefined) rebuiltError.code = error.code;
  if (error.stack !== undefined) rebuiltError.stack = error.stack;
  return rebuiltError;
}

/**
 * The main thread's side of the SQLite writer thread (src/db/sqliteWriterThread.ts):
 * every write of the hot path is posted to it and answered in order. The thread
 * starts with the first write (a process that only reads never starts it), keeps
 * the process alive only while a write is on its way, and is started again if it
 * died (each request it held fails with the reason; a charge batch that fails is
 * retried one charge at a time by src/db/groupCommit.ts).
 */
export class SqliteWriterClient {
  #worker: Worker | null = null;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;
  #closed = false;

  constructor(
    private readonly file: string,
    private readonly onQuery?: (sql: string) => void,
  ) {}

  chargeBatch(attempts: ChargeAttempt[]): Promise<ChargeResult[]> {
    return this.#send({ op: "chargeBatch", attempts }) as Promise<ChargeResult[]>;
  }

  async advanceStatuses(reports: StatusReport[]): Promise<void> {
    await this.#send({ op: "advanceStatuses", reports });
  }

  async touchApiKey(apiKeyId: string, at: Date, before: Date): Promise<void> {
    await this.#send({ op: "touchApiKey", apiKeyId, at, before });
  }

  /** Waits for the writes on their way, then closes the thread's connection and stops the thread. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const worker = this.#worker;
    if (worker) {
      // Its last request (after every write on its way, in order) closes the connection; then the thread stops.
      await this.#send({ op: "close" }).catch(() => {});
      await worker.terminate();
    }
    this.#closed = true;
  }

  #send(request: WriterOp): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error("the SQLite writer is closed"));
    if (this.#waiting.size >= IN_FLIGHT_MAX) return Promise.reject(new Error(`more than ${IN_FLIGHT_MAX} writes waiting for the SQLite writer`));
    const worker = this.#worker ?? this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      if (this.#waiting.size === 1) worker.ref();
      worker.postMessage({ ...request, id } satisfies WriterRequest);
    });
  }

  #start(): Worker {
    const data: WriterThreadData = { entry: ENTRY, file: this.file, reportStatements: this.onQuery !== undefined };
    // execArgv: [] so that the thread never inherits the parent's inspector or profiler flags; the boot file registers tsx itself.
    const worker = new Worker(BOOT, { workerData: data, execArgv: [] });
    worker.unref();
    worker.on("message", (reply: WriterReply) => this.#settle(worker, reply));
    worker.on("error", (error) => this.#failAll(worker, error));
    worker.on("exit", (code) => this.#failAll(worker, new Error(`the SQLite writer thread stopped (exit code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  #settle(worker: Worker, reply: WriterReply): void {
    const waiting = this.#waiting.get(reply.id);
    if (!waiting) return;
    this.#waiting.delete(reply.id);
    if (this.#waiting.size === 0) worker.unref();
    for (const sql of reply.statements) this.onQuery?.(sql);
    if (reply.ok) waiting.resolve(reply.value);
    else waiting.reject(rebuilt(reply.error));
  }

  /** The thread died: every write it held fails with the reason, and the next write starts a new thread. */
  #failAll(worker: Worker, error: unknown): void {
    if (this.#worker !== worker) return;
    this.#worker = null;
    for (const waiting of this.#waiting.values()) waiting.reject(error);
    this.#waiting.clear();
  }
}
