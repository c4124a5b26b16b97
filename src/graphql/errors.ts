import { createGraphQLError } from "graphql-yoga";
import { BREAK, GraphQLError, Kind, parse, visit, type ASTNode } from "graphql";
import { ERROR_STATUS, type ErrorCode } from "../domain/errors.ts";
import { isDomainError, toEdgeError, type EdgeError, type ErrorLogger } from "../edge/errors.ts";

/**
 * Duck-typed on purpose: more than one copy of `graphql` can be loaded (ESM
 * and CommonJS builds), and `instanceof` fails across copies.
 */
function isGraphQLErrorLike(value: unknown): value is GraphQLError {
  return typeof value === "object" && value !== null && "extensions" in value && "locations" in value && "path" in value;
}

function withCode(error: GraphQLError | null, code: ErrorCode, message: string, details?: Record<string, unknown>): GraphQLError {
  return graphQLErrorOf({ code, status: ERROR_STATUS[code], message, ...(details ? { details } : {}) }, error);
}

/** An EdgeError rendered as a GraphQL error, at the place in the document of `at` if given. */
export function graphQLErrorOf(error: EdgeError, at: GraphQLError | null = null): GraphQLError {
  return createGraphQLError(error.message, {
    nodes: at?.nodes,
    source: at?.source,
    positions: at?.positions,
    path: at?.path,
    extensions: {
      code: error.code,
      ...(error.details ? { details: error.details } : {}),
      http: { status: error.status, ...(error.headers ? { headers: error.headers } : {}) },
    },
  });
}

/** The body of a GraphQL response whose only error is `error` (README.md, "Errors"). */
export function graphQLErrorBody(error: EdgeError): { errors: { message: string; extensions: Record<string, unknown> }[] } {
  return { errors: [{ message: error.message, extensions: { code: error.code, ...(error.details ? { details: error.details } : {}) } }] };
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
 * Gives every error a code of README.md's "Errors" and the matching HTTP status:
 * what graphql-js and Pothos report (syntax, validation, coercion, cursors) is
 * `invalid_request` naming the field at fault; the rest goes through the edge's
 * one error mapper (src/edge/errors.ts), which masks everything unexpected.
 */
export function toClientError(error: unknown, logger: ErrorLogger): GraphQLError {
  const graphqlError = isGraphQLErrorLike(error) ? error : null;
  const original: unknown = graphqlError ? graphqlError.originalError : error;

  if (isDomainError(original)) return graphQLErrorOf(toEdgeError(original, logger), graphqlError);
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
  return graphQLErrorOf(toEdgeError(original, logger, { path: graphqlError?.path }), graphqlError);
}
