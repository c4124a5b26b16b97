/** The error codes of README.md's "Errors", each with its HTTP status. */
export const ERROR_STATUS = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  invalid_request: 400,
  credit_limit_exceeded: 402,
  insufficient_balance: 402,
  budget_exceeded: 402,
  rate_limited: 429,
  conflict: 409,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export type ErrorDetails = Record<string, unknown>;

/**
 * An error the caller can act on. Everything else that escapes a resolver or
 * route is an `internal_error` whose message is masked.
 */
export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;
  /** How HTTP answers it, where the code's status alone does not say (405 with Allow, 429 with Retry-After). */
  readonly http: { status?: number; headers?: Record<string, string> } | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetails, http?: DomainError["http"]) {
    super(message);
    this.name = "DomainError";
    this.code = code;
    this.details = details;
    this.http = http;
  }

  get status(): number {
    return this.http?.status ?? ERROR_STATUS[this.code];
  }
}

export const unauthorized = (message = "Missing, unknown or revoked API key. Send `Authorization: Bearer <key>` with an active key.") =>
  new DomainError("unauthorized", message);

export const forbidden = (message = "This operation needs a main-account API key; sub-account keys cannot manage sub-accounts.") =>
  new DomainError("forbidden", message);

export const notFound = (what: string, id: string) =>
  new DomainError("not_found", `${what} ${JSON.stringify(id)} was not found.`, { id });

export const invalidRequest = (message: string, details?: ErrorDetails) =>
  new DomainError("invalid_request", message, details);

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`invariant violated: ${message}`);
}
