import { DomainError, ERROR_STATUS, invalidRequest, type ErrorCode } from "../domain/errors.ts";

/**
 * The one error mapper of every surface: any thrown value becomes
 * `{ code, status, message, details }` (the codes of README.md, "Errors"). Each surface only
 * renders it: GraphQL as `errors[].extensions`, REST as its JSON body,
 * graphql-ws as an error frame. Anything unexpected is logged and masked: no
 * stack, no SQL, no internals reach a client.
 */
export interface EdgeError {
  code: ErrorCode;
  /** The HTTP status: the code's (ERROR_STATUS), unless the edge says otherwise (405). */
  status: number;
  message: string;
  details?: Record<string, unknown>;
  /** Response headers the error needs (Retry-After, Allow, Connection: close). */
  headers?: Record<string, string>;
}

export interface ErrorLogger {
  error(details: object, message: string): void;
  warn(details: object, message: string): void;
}

const CONNECTION_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "57P01", "57P02", "57P03", "08006", "08001", "08003", "P1001", "P1002", "P1017", "P2024"]);
const CONNECTION_ERROR_MESSAGE =
  /Connection terminated|encountered a connection error|ECONNREFUSED|connect ECONN|DatabaseNotReachable|terminating connection|the database system is (starting up|shutting down)|timeout exceeded when trying to connect|Can't reach database/i;

/** A lost or refused database connection (a restart, an outage), as opposed to a bug. */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current = error;
  for (let depth = 0; current && depth < 5; depth += 1) {
    const { code, message, cause } = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === "string" && CONNECTION_ERROR_CODES.has(code)) return true;
    if (typeof message === "string" && CONNECTION_ERROR_MESSAGE.test(message)) return true;
    current = cause;
  }
  return false;
}

/** Duck-typed too: a DomainError can cross module copies (the test runner loads some twice). */
export function isDomainError(value: unknown): value is DomainError {
  return value instanceof DomainError || (value instanceof Error && value.name === "DomainError" && "code" in value);
}

export function edgeErrorOf(error: DomainError): EdgeError {
  return {
    code: error.code,
    status: error.http?.status ?? ERROR_STATUS[error.code],
    message: error.message,
    ...(error.details ? { details: error.details } : {}),
    ...(error.http?.headers ? { headers: error.http.headers } : {}),
  };
}

const DATABASE_UNAVAILABLE = new DomainError(
  "internal_error",
  "The database is unreachable right now. Retry shortly; a send retried with the same idempotencyKey is never charged twice.",
  { retryable: true },
);
const UNEXPECTED = new DomainError("internal_error", "Internal error. It has been logged; please retry later or contact support.");

/** Any thrown value as an EdgeError: DomainErrors keep their code; everything else is logged and masked. */
export function toEdgeError(error: unknown, logger: ErrorLogger, context: object = {}): EdgeError {
  if (isDomainError(error)) return edgeErrorOf(error);
  if (isDatabaseUnavailable(error)) {
    logger.warn({ err: error, ...context }, "database unavailable");
    return edgeErrorOf(DATABASE_UNAVAILABLE);
  }
  logger.error({ err: error, ...context }, "unexpected error");
  return edgeErrorOf(UNEXPECTED);
}

export function bodyTooLarge(maxBytes: number): DomainError {
  return invalidRequest(`The request body is too large: the limit is ${maxBytes} bytes. Send a smaller JSON body.`, { maxBytes });
}

export function timedOut(timeoutMs: number): DomainError {
  return new DomainError(
    "internal_error",
    `The request took longer than ${timeoutMs} ms and was stopped. Retry; a send retried with the same idempotencyKey is never charged twice.`,
    { retryable: true },
  );
}
