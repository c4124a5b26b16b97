import type { ChargeAttempt } from "./charges.ts";
import type { StatusReport } from "./statusReports.ts";

/** What the SQLite writer thread is started with. */
export interface WriterThreadData {
  /** The TypeScript entry src/db/sqliteWriterBoot.mjs loads. */
  entry: string;
  file: string;
  /** Send back the SQL of each request's statements (for onQuery, which counts them). */
  reportStatements: boolean;
}

/** What the writer thread is asked to do. */
export type WriterOp =
  | { op: "chargeBatch"; attempts: ChargeAttempt[] }
  | { op: "advanceStatuses"; reports: StatusReport[] }
  | { op: "touchApiKey"; apiKeyId: string; at: Date; before: Date }
  | { op: "close" };

/** One request to the writer thread; `id` pairs it with its reply. */
export type WriterRequest = { id: number } & WriterOp;

/** An error thrown in the writer thread, as it crosses to the main thread. */
export interface WriterError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export type WriterReply = { id: number; statements: string[] } & ({ ok: true; value: unknown } | { ok: false; error: WriterError });
