import { GraphQLError, Kind } from "graphql";
import { MAX_CENTS, centsToNumber } from "../../domain/money.ts";
import { DATE_TIME_FORMAT_MESSAGE, parseDateTime } from "../../domain/validation.ts";
import { builder } from "../builder.ts";

function invalid(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "invalid_request", http: { status: 400 } } });
}

/** Only the JSON type is checked here; the services validate the amount and name the field at fault. */
function parseCents(value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw invalid(`Cents must be a non-negative integer number of cents, at most ${MAX_CENTS}.`);
  }
  return value;
}

/**
 * A literal's error must not be a GraphQLError: graphql-js then reports it with the literal's
 * location, which names the field at fault (see toValidationError).
 */
function literal<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new TypeError(error instanceof Error ? error.message : String(error));
  }
}

builder.scalarType("Cents", {
  description:
    "An amount of money in integer cents (USD), serialized as a JSON number. Holds up to 2^53-1, unlike Int (32-bit).",
  serialize: (value) => (typeof value === "bigint" ? centsToNumber(value) : value),
  parseValue: parseCents,
  parseLiteral: (ast) =>
    literal(() => {
      if (ast.kind !== Kind.INT && ast.kind !== Kind.FLOAT) throw invalid("Cents must be a number.");
      return parseCents(Number(ast.value));
    }),
});

/** The services check the range (years 0001 to 9999) and name the field; here only the format. */
function parseDateTimeValue(value: unknown): Date {
  const date = typeof value === "string" ? parseDateTime(value) : null;
  if (date === null) throw invalid(`DateTime ${DATE_TIME_FORMAT_MESSAGE}.`);
  return date;
}

builder.scalarType("DateTime", {
  description:
    "An ISO-8601 (RFC 3339) date-time, answered in UTC. Taken as e.g. 2026-11-01T09:30:00Z or 2026-11-01T10:30:00+01:00; a date alone is 00:00 UTC, a time without an offset is UTC.",
  serialize: (value) => (value instanceof Date ? value.toISOString() : new Date(value as string).toISOString()),
  parseValue: parseDateTimeValue,
  parseLiteral: (ast) =>
    literal(() => {
      if (ast.kind !== Kind.STRING) throw invalid(`DateTime ${DATE_TIME_FORMAT_MESSAGE}, as a string.`);
      return parseDateTimeValue(ast.value);
    }),
});

function literalToJson(ast: import("graphql").ValueNode): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map(literalToJson);
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((field) => [field.name.value, literalToJson(field.value)]));
    default:
      throw invalid("JSONObject literals cannot contain variables.");
  }
}

function requireObject(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid("metadata must be a JSON object.");
  return value as Record<string, unknown>;
}

builder.scalarType("JSONObject", {
  description: "A JSON object of arbitrary keys.",
  serialize: (value) => value,
  parseValue: requireObject,
  parseLiteral: (ast) => literal(() => requireObject(literalToJson(ast))),
});
