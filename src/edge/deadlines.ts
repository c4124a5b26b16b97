import type { DomainError } from "../domain/errors.ts";
import { timedOut } from "./errors.ts";

/**
 * Requests that start within the same slice of DEADLINE_SLICE_MS share one
 * deadline: one timer per slice, fired timeoutMs + DEADLINE_SLICE_MS after the
 * slice opened, so each request has between timeoutMs and timeoutMs +
 * DEADLINE_SLICE_MS. A timer, an AbortController and a promise race of its own
 * per request were a few percent of a small query's CPU (bench/notes.md); a
 * slice costs each request one Set entry, and a request answered synchronously
 * nothing at all. Work that must be told to stop brings its own AbortController
 * (never a signal shared between requests: executors add a listener to it per
 * request and never remove it).
 */
export const DEADLINE_SLICE_MS = 100;

interface Slice {
  closesAt: number;
  /** The requests of this slice still running: each is answered with the error when the slice expires. */
  running: Set<(error: DomainError) => void>;
}

export type Deadlines = ReturnType<typeof createDeadlines>;

export function createDeadlines(timeoutMs: number, now: () => number = () => performance.now()) {
  let open: Slice | null = null;

  function currentSlice(): Slice {
    const at = now();
    if (open !== null && at < open.closesAt) return open;
    const slice: Slice = { closesAt: at + DEADLINE_SLICE_MS, running: new Set() };
    setTimeout(() => {
      const reason = timedOut(timeoutMs);
      for (const expire of slice.running) expire(reason);
      slice.running.clear();
    }, timeoutMs + DEADLINE_SLICE_MS).unref();
    open = slice;
    return slice;
  }

  return {
    timeoutMs,
    /**
     * Runs `work`. A synchronous answer is returned as it is; a promise is answered by
     * `expired(error)` instead if it outlives the deadline (it keeps running; `stop`, when
     * given, is aborted with the error so that it stops at its next step).
     */
    within<T>(work: () => T | PromiseLike<T>, expired: (error: DomainError) => T | PromiseLike<T>, stop?: AbortController): T | Promise<T> {
      const slice = currentSlice();
      const result = work();
      if (!isPromiseLike(result)) return result;
      return new Promise<T>((resolve, reject) => {
        const expire = (error: DomainError) => {
          stop?.abort(error);
          try {
            resolve(expired(error));
          } catch (thrown) {
            reject(thrown);
          }
        };
        slice.running.add(expire);
        result.then(
          (value) => {
            slice.running.delete(expire);
            resolve(value);
          },
          (error: unknown) => {
            slice.running.delete(expire);
            reject(error);
          },
        );
      });
    },
  };
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}
