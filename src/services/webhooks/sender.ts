import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { resolveTarget, UnsafeTarget, type AddressPolicy, type ResolvedAddress } from "./urlSafety.ts";

/** How an attempt ended; `success` is a 2xx within the timeout, everything else is retried. */
export type AttemptKind = "success" | "http_error" | "timeout" | "connection_error" | "refused_address" | "interrupted";

export interface AttemptResult {
  kind: AttemptKind;
  httpStatus: number | null;
  /** What went wrong, for the attempt list; null on success. */
  error: string | null;
  durationMs: number;
}

export interface SendRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  policy: AddressPolicy;
  /** Aborted when the gateway shuts down: the attempt ends as `interrupted`. */
  shutdown?: AbortSignal;
}

const USER_AGENT = "subaccounts-gateway-webhooks/1";

class Interrupted extends Error {}
class TimedOut extends Error {}

/** A `lookup` that answers every name with the one address already checked: the connection goes exactly there. */
function pinnedLookup(target: ResolvedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) (callback as (error: null, addresses: ResolvedAddress[]) => void)(null, [target]);
    else callback(null, target.address, target.family);
  };
}

/** POSTs the body to the checked address; resolves with the response's status as soon as it arrives. */
function post(url: URL, target: ResolvedAddress, request: SendRequest, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === "https:" ? https : http;
    const outgoing = client.request(
      url,
      {
        method: "POST",
        // One connection per attempt, closed after it: nothing pooled across addresses.
        agent: false,
        lookup: pinnedLookup(target),
        signal,
        headers: {
          ...request.headers,
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(request.body)),
          "user-agent": USER_AGENT,
        },
      },
      (response) => {
        resolve(response.statusCode ?? 0);
        // Only the status counts: the body is not read.
        response.destroy();
      },
    );
    outgoing.on("error", reject);
    outgoing.end(request.body);
  });
}

/** Rejects when `signal` aborts, with its reason. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function failure(error: unknown, signal: AbortSignal, timeoutMs: number): Omit<AttemptResult, "durationMs"> {
  if (signal.aborted && signal.reason instanceof TimedOut) return { kind: "timeout", httpStatus: null, error: `No response within ${timeoutMs} ms.` };
  if (signal.aborted && signal.reason instanceof Interrupted) {
    return { kind: "interrupted", httpStatus: null, error: "Interrupted: the gateway instance shut down during this attempt; it is retried at once." };
  }
  if (error instanceof UnsafeTarget) return { kind: error.kind === "refused_address" ? "refused_address" : "connection_error", httpStatus: null, error: error.message };
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  return { kind: "connection_error", httpStatus: null, error: `Could not deliver: ${code && !message.includes(code) ? `${code} ` : ""}${message}` };
}

/**
 * One attempt: resolve and check the address, connect to it, POST, and wait
 * for the status line; all of it within `timeoutMs`. Never throws.
 */
export async function sendWebhook(request: SendRequest): Promise<AttemptResult> {
  const started = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new TimedOut()), request.timeoutMs);
  const onShutdown = () => controller.abort(new Interrupted());
  if (request.shutdown?.aborted) onShutdown();
  request.shutdown?.addEventListener("abort", onShutdown, { once: true });
  const durationMs = () => Math.round(performance.now() - started);
  try {
    const url = new URL(request.url);
    const target = await abortable(resolveTarget(url, request.policy), controller.signal);
    const status = await post(url, target, request, controller.signal);
    if (status >= 200 && status < 300) return { kind: "success", httpStatus: status, error: null, durationMs: durationMs() };
    return { kind: "http_error", httpStatus: status, error: `HTTP ${status}: the receiver did not answer with a 2xx status.`, durationMs: durationMs() };
  } catch (error) {
    return { ...failure(error, controller.signal, request.timeoutMs), durationMs: durationMs() };
  } finally {
    clearTimeout(timer);
    request.shutdown?.removeEventListener("abort", onShutdown);
  }
}
