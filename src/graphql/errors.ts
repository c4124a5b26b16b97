import { createGraphQLError } from "graphql-yoga";
import { BREAK, GraphQLError, Kind, parse, visit, type ASTNode } from "graphql";
import { DomainError, ERROR_STATUS, type ErrorCode } from "../domain/errors.ts";

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

export function bodyTooLargeMessage(maxBytes: number | undefined): string {
  return `The request body is too large: the limit is ${maxBytes ?? "MAX_BODY_BYTES"} bytes. Send a smaller JSON body.`;
}

/**
 * Duck-typed on purpose: more than one copy of `graphql` can be loaded (ESM
 * and CommonJS builds), and `instanceof` fails across copies.
 */
function isGraphQLErrorLike(value: unknown): value is GraphQLError {
  return typeof value === "object" && value !== null && "extensions" in value && "locations" in value && "path" in value;
}

function isDomainError(value: unknown): value is DomainError {
  return value instanceof DomainError || (value instanceof Error && value.name === "DomainError" && "code" in value);
}

function withCode(error: GraphQLError | null, code: ErrorCode, message: string, details?: Record<string, unknown>): GraphQLError {
  return createGraphQLError(message, {
    nodes: error?.nodes,
    source: error?.source,
    positions: error?.positions,
    path: error?.path,
    extensions: { code, ...(details ? { details } : {}), http: { status: ERROR_STATUS[code] } },
  });
}

/**
 * 'Variable "$input" got invalid value -5 at "input.creditLimit"; ...' names the field at fault;
 * '...; Field "bogus" is not defined by type ...' names a field inside it.
 */
function fieldFromCoercionMessage(message: string): string | undefined {
  const at = /at "([^"]+)"/.exec(message)?.[1] ?? /^Variable "\$([^"]+)"/.exec(message)?.[1];
  const inner = /; Field "([^"]+)" (?:is not defined by type|of required type)/.exec(message)?.[1];
  return at && inner ? `${at}.${inner}` : at;
}

/** The argument/input-field path (e.g. "input.creditLimit") or the field a validation error points at. */
function fieldFromNodes(error: GraphQLError): string | undefined {
  const target = error.nodes?.[0];
  const body = error.source?.body;
  if (!target?.loc || body === undefined) return undefined;
  let field: string | undefined;
  try {
    visit(parse(body), {
      enter(node, _key, parent, _path, ancestors) {
        if (node.kind !== target.kind || node.loc?.start !== target.loc!.start) return undefined;
        const names = [...ancestors, parent, node].flatMap((a) => {
          const n = a as ASTNode | undefined;
          return n?.kind === Kind.ARGUMENT || n?.kind === Kind.OBJECT_FIELD ? [n.name.value] : [];
        });
        if (node.kind === Kind.FIELD) names.push(node.name.value);
        field = names.length > 0 ? names.join(".") : undefined;
        return BREAK;
      },
    });
  } catch {
    return undefined;
  }
  return field;
}

/**
 * GraphQL validation errors (unknown field, bad literal, missing argument) are returned by
 * validate(), not thrown, so maskError never sees them: they are all `invalid_request`, HTTP 400
 * (`spec: false`: yoga would otherwise answer 200 to `accept: application/json`).
 */
export function toValidationError(validationError: Error): GraphQLError {
  const error = isGraphQLErrorLike(validationError) ? validationError : new GraphQLError(validationError.message);
  // A query limit (src/http/queryLimits.ts) brings its own details; other rules name the field at fault.
  const own = error.extensions?.code === "invalid_request" ? (error.extensions.details as Record<string, unknown> | undefined) : undefined;
  const field = own ? undefined : (fieldFromNodes(error) ?? fieldFromCoercionMessage(error.message));
  const mapped = withCode(error, "invalid_request", error.message, own ?? (field ? { field } : undefined));
  (mapped.extensions.http as { spec?: boolean }).spec = false;
  return mapped;
}

/**
 * Pothos rejects an unreadable cursor with "Invalid cursor: <cursor>", which
 * names no argument. Name the one the caller sent it in (`after` or `before`).
 */
function cursorError(error: GraphQLError): { message: string; details: Record<string, unknown> } {
  const sent = new Set(error.nodes?.flatMap((node) => (node.kind === Kind.FIELD ? (node.arguments ?? []).map((arg) => arg.name.value) : [])));
  const field = ["after", "before"].filter((name) => sent.has(name)).join(" or ") || "after";
  return {
    message: `Invalid ${field}: not a cursor of this list. Pass pageInfo.endCursor from a previous page, or omit ${field} to start at the beginning.`,
    details: { field },
  };
}

/**
 * Gives every error a code of DESIGN.md section 3 and the matching HTTP status,
 * and masks everything unexpected: no stack, no SQL, no internals reach a client.
 */
export function toClientError(error: unknown, logger: ErrorLogger, limits: { maxBodyBytes?: number } = {}): GraphQLError {
  const graphqlError = isGraphQLErrorLike(error) ? error : null;
  const original: unknown = graphqlError ? graphqlError.originalError : error;

  // graphql-yoga's own refusal of a body over maxRequestBodySize (413): one code, one status, as REST.
  if (graphqlError?.extensions?.code === "REQUEST_ENTITY_TOO_LARGE") {
    const { maxBodyBytes } = limits;
    return withCode(null, "invalid_request", bodyTooLargeMessage(maxBodyBytes), maxBodyBytes ? { maxBytes: maxBodyBytes } : undefined);
  }

  if (isDomainError(original)) return withCode(graphqlError, original.code, original.message, original.details);
  if (original instanceof Error && original.name === "PothosValidationError") {
    if (graphqlError && original.message.startsWith("Invalid cursor")) {
      const { message, details } = cursorError(graphqlError);
      return withCode(graphqlError, "invalid_request", message, details);
    }
    return withCode(graphqlError, "invalid_request", original.message);
  }
  if (graphqlError) {
    const existing = graphqlError.extensions?.code;
    const field = fieldFromCoercionMessage(graphqlError.message);
    if (typeof existing === "string" && existing in ERROR_STATUS) {
      const details = (graphqlError.extensions.details as Record<string, unknown> | undefined) ?? (field ? { field } : undefined);
      return withCode(graphqlError, existing as ErrorCode, graphqlError.message, details);
    }
    // Syntax, validation and variable-coercion errors come from graphql-js without an original error of ours.
    if (!original || isGraphQLErrorLike(original)) {
      return withCode(graphqlError, "invalid_request", graphqlError.message, field ? { field } : undefined);
    }
  }
  if (isDatabaseUnavailable(original)) {
    logger.warn({ err: original, path: graphqlError?.path }, "database unavailable");
    return withCode(
      graphqlError,
      "internal_error",
      "The database is unreachable right now. Retry shortly; a send retried with the same idempotencyKey is never charged twice.",
      { retryable: true },
    );
  }
  logger.error({ err: original, path: graphqlError?.path }, "unexpected error");
  return withCode(graphqlError, "internal_error", "Internal error. It has been logged; please retry later or contact support.");
}
