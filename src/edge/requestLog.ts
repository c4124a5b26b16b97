import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../logger.ts";
import { routeLabel, type Metrics } from "./metrics.ts";

/** What the edge knows of one HTTP request; surfaces add who made it and what it was. */
export interface EdgeRequest {
  readonly id: string;
  /** The path, as the URL parser gives it (without the query). */
  readonly pathname: string;
  /** The whole URL, parsed on first read (most requests need only the path). */
  readonly url: URL;
  note(fields: RequestNote): void;
}

export interface RequestNote {
  operationName?: string;
  apiKeyId?: string;
  accountId?: string;
}

/** A path of plain segments, up to the query: nothing a URL parser would change (no dots, escapes, backslashes or empty segments). */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9_~-]+)*\/?(?=\?|$)/;

const URL_BASE = "http://gateway.invalid";

/** The request target's path as the URL parser gives it, without parsing when it is plain (the common case). */
export function pathnameOf(target: string): string {
  return PLAIN_PATH.exec(target)?.[0] || new URL(target, URL_BASE).pathname;
}

/** An incoming x-request-id is kept if it is short and plain; anything else is replaced. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Probes are counted in the metrics but not logged: they would drown the log. */
const UNLOGGED_ROUTES = new Set(["/healthz", "/readyz", "/metrics"]);

function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers["x-request-id"];
  return typeof incoming === "string" && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * Gives the request its id (echoed in x-request-id) and, when the response
 * closes, writes its metrics and one log line: id, method, path, status,
 * duration, operation and key id. Never the key itself.
 */
export function beginRequest(req: IncomingMessage, res: ServerResponse, logger: Logger, metrics: Metrics): EdgeRequest {
  const started = process.hrtime.bigint();
  let parsed: URL | undefined;
  const url = () => (parsed ??= new URL(req.url ?? "/", URL_BASE));
  const pathname = pathnameOf(req.url ?? "/");
  const note: RequestNote = {};
  const request: EdgeRequest = {
    id: requestIdOf(req),
    pathname,
    get url() {
      return url();
    },
    note: (fields) => Object.assign(note, fields),
  };
  res.setHeader("x-request-id", request.id);
  res.once("close", () => {
    const route = routeLabel(pathname);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const method = req.method ?? "GET";
    const status = res.headersSent ? res.statusCode : 0;
    metrics.httpRequests.inc({ route, method, status: String(status) });
    const streamed = String(res.getHeader("content-type") ?? "").startsWith("text/event-stream");
    if (!streamed) metrics.httpDuration.observe({ route, method }, seconds);
    if (UNLOGGED_ROUTES.has(route)) return;
    const durationMs = Math.round(seconds * 1000);
    logger.info({ requestId: request.id, method, path: pathname, status, durationMs, ...note }, "request");
  });
  return request;
}
