import { parentPort, workerData } from "node:worker_threads";
import { assert } from "../domain/errors.ts";
import { SqliteChargeWriter } from "./sqliteChargeWriter.ts";
import type { WriterReply, WriterRequest, WriterThreadData } from "./sqliteWriterProtocol.ts";

/**
 * The SQLite writer thread: one connection that makes every write of the hot
 * path (src/db/sqliteChargeWriter.ts), one request at a time in the order they
 * arrive, so the main thread's event loop never runs SQLite's writes. It blocks
 * while another connection (Prisma's) holds the write lock: waiting is all a
 * single writer can do, and the requests behind it keep their order. Blocking
 * here is safe because Prisma's connection lives on the main thread, whose
 * event loop keeps running and so can finish the transaction that holds the
 * lock. The pause is ours (at most LOCK_BACKOFF_MAX_MS) rather than SQLite's
 * busy timeout, whose sleeps grow to 100 ms and would hold a batch that long
 * after the lock is free.
 */

/** Attempts to take SQLite's write lock before giving up (about 10 s), and the longest pause between them. */
const LOCK_ATTEMPTS_MAX = 2000;
const LOCK_BACKOFF_MAX_MS = 5;

const port = parentPort;
assert(port !== null, "src/db/sqliteWriterThread.ts runs as a worker thread");
const data = workerData as WriterThreadData;
let statements: string[] = [];
const writer = new SqliteChargeWriter(data.file, data.reportStatements ? (sql) => statements.push(sql) : undefined);
const pause = new Int32Array(new SharedArrayBuffer(4));

function isBusy(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED";
}

function whileBusy<T>(write: () => T): T {
  for (let tries = 1; ; tries += 1) {
    try {
      return write();
    } catch (error) {
      if (!isBusy(error) || tries >= LOCK_ATTEMPTS_MAX) throw error;
      Atomics.wait(pause, 0, 0, Math.min(LOCK_BACKOFF_MAX_MS, tries));
    }
  }
}

function perform(request: WriterRequest): unknown {
  switch (request.op) {
    case "chargeBatch":
      return whileBusy(() => writer.chargeBatch(request.attempts));
    case "advanceStatuses":
      return whileBusy(() => writer.advanceStatuses(request.reports));
    case "touchApiKey":
      return whileBusy(() => writer.touchApiKey(request.apiKeyId, request.at, request.before));
    case "close":
      writer.close();
      return undefined;
  }
}

port.on("message", (request: WriterRequest) => {
  statements = [];
  let reply: WriterReply;
  try {
    reply = { id: request.id, ok: true, value: perform(request), statements };
  } catch (error) {
    const { name, message, code, stack } = error as { name?: string; message?: string; code?: string; stack?: string };
    reply = { id: request.id, ok: false, error: { name: name ?? "Error", message: message ?? String(error), code, stack }, statements };
  }
  port.postMessage(reply);
});
