import type { IncomingMessage, ServerResponse } from "node:http";
import { DomainError, ERROR_STATUS, invalidRequest, type ErrorCode } from "../domain/errors.ts";
import { bodyTooLargeMessage, isDatabaseUnavailable, type ErrorLogger } from "../graphql/errors.ts";

/** The REST error body of DESIGN.md section 3. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (status === 204) {
    res.writeHead(204, headers).end();
    return;
  }
  const payload = JSON.stringify(body);
  res
    .writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": String(Buffer.byteLength(payload)),
      "cache-control": "no-store",
      ...headers,
    })
    .end(payload);
}

export function sendError(res: ServerResponse, error: ErrorBody, headers: Record<string, string> = {}): void {
  const body: ErrorBody = { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
  // A 409 (an idempotency key reused across modes) will not change on retry; tell the SDK not to.
  const retry: Record<string, string> = error.code === "conflict" ? { "x-should-retry": "false" } : {};
  sendJson(res, ERROR_STATUS[error.code], body, { ...retry, ...headers });
}

/** The services name input fields as GraphQL arguments ("input.name"); REST bodies have no `input` wrapper. */
function withoutInputPrefix(text: string): string {
  return text.replace(/\binput\./g, "");
}

function restDetails(details: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!details) return undefined;
  const out: Record<string, unknown> = { ...details };
  if (typeof out.field === "string") out.field = withoutInputPrefix(out.field) || undefined;
  if (Array.isArray(out.issues)) {
    out.issues = out.issues.map((issue: { field?: unknown; message?: unknown }) =>
      typeof issue?.field === "string" ? { ...issue, field: withoutInputPrefix(issue.field) } : issue,
    );
  }
  if (out.field === undefined) delete out.field;
  return out;
}

/** Any thrown value as a REST error: DomainErrors keep their code; everything else is masked. */
export function toErrorBody(error: unknown, logger: ErrorLogger, context: object): ErrorBody {
  const isDomain = error instanceof DomainError || (error instanceof Error && error.name === "DomainError" && "code" in error);
  if (isDomain) {
    const domain = error as DomainError;
    return {
      code: domain.code,
      message: domain.code === "invalid_request" ? withoutInputPrefix(domain.message) : domain.message,
      details: domain.code === "invalid_request" ? restDetails(domain.details) : domain.details,
    };
  }
  if (isDatabaseUnavailable(error)) {
    logger.warn({ err: error, ...context }, "database unavailable");
    return {
      code: "internal_error",
      message: "The database is unreachable right now. Retry shortly; a send retried with the same idempotencyKey is never charged twice.",
      details: { retryable: true },
    };
  }
  logger.error({ err: error, ...context }, "unexpected error");
  return { code: "internal_error", message: "Internal error. It has been logged; please retry later or contact support." };
}

export class BodyTooLarge extends Error {}

/**
 * Reads the request body, at most `maxBytes`: a larger declared length is refused
 * before reading, and reading stops at the first byte past the limit.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (error: Error | null) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.pause();
        finish(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(null);
    const onError = (error: Error) => finish(error);
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

export function tooLargeError(maxBytes: number): DomainError {
  return invalidRequest(bodyTooLargeMessage(maxBytes), { maxBytes });
}

/** An empty body is `undefined`; anything else must be JSON. */
export function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0 || raw.toString("utf8").trim() === "") return undefined;
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch (error) {
    const detail = error instanceof SyntaxError ? error.message : "unreadable";
    throw invalidRequest(`The request body is not valid JSON (${detail}). Send a JSON object with Content-Type: application/json.`);
  }
}

/**
 * Answering before the request body has arrived leaves bytes on the wire that
 * Node may not get to discard: the client's next request on that keep-alive
 * connection would then be reset. Such an answer closes the connection instead.
 */
export function closeIfBodyUnread(req: IncomingMessage, res: ServerResponse): void {
  if (!req.complete && !res.headersSent) res.setHeader("connection", "close");
}
