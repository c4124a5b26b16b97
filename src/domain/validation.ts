import { z } from "zod";
import { invalidRequest } from "./errors.ts";
import { MAX_CENTS } from "./money.ts";

/** Explicit limits on every input (README.md, "Security": limits). */
export const LIMITS = {
  nameMaxChars: 200,
  externalIdMaxChars: 255,
  metadataMaxBytes: 16 * 1024,
  idMaxChars: 64,
  pageMaxSize: 100,
  pageDefaultSize: 20,
  apiKeyNameMaxChars: 100,
  metadataMaxDepth: 20,
} as const;

/** NUL (PostgreSQL text cannot hold it) and unpaired surrogates (not Unicode text): refused in everything stored. */
const UNSTORABLE_CHARACTER = /[\u0000]|[\uD800-\uDFFF]/u;
export const UNSTORABLE_TEXT_MESSAGE = "must not contain NUL characters or unpaired UTF-16 surrogates";

export function isStorableText(text: string): boolean {
  return !UNSTORABLE_CHARACTER.test(text);
}

/** A string that any database can store as given. */
export const storableString = () => z.string().refine(isStorableText, UNSTORABLE_TEXT_MESSAGE);

/**
 * The instants every store keeps and every client reads as given: the years 0001 to 9999 (ISO-8601's four-digit
 * years). JavaScript dates reach year 275760, written "+275760-…", which neither database takes.
 */
const DATE_TIME_MIN_MS = Date.parse("0001-01-01T00:00:00.000Z");
const DATE_TIME_MAX_MS = Date.parse("9999-12-31T23:59:59.999Z");
const DATE_TIME_RANGE_MESSAGE = "must fall within the years 0001 to 9999";

export function isStorableInstant(ms: number): boolean {
  return ms >= DATE_TIME_MIN_MS && ms <= DATE_TIME_MAX_MS;
}

/**
 * ISO-8601 / RFC 3339: a calendar date, optionally a time (seconds and fraction optional) and an offset.
 * The year has four digits, or six with a sign (ISO's expanded years, so that a year out of range is named as such).
 */
const ISO_DATE_TIME =
  /^([+-]\d{6}|\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?)?$/;
export const DATE_TIME_FORMAT_MESSAGE = "must be an ISO-8601 date-time, e.g. 2026-11-01T09:30:00Z (a time without an offset is UTC)";

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

function daysInMonth(year: number, month: number): number {
  return month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/**
 * The instant an ISO-8601 date-time names, or null when the text is not one or names no real time
 * (2026-02-30, 24:00, an offset beyond 23:59). JavaScript's own Date parser is not used: it takes
 * "foo 1" for 2001-01-01, rolls 2026-02-30 over into March, and reads an offset-less time in the
 * server's time zone. Here a date alone is 00:00 UTC and a time without an offset is UTC.
 */
export function parseDateTime(text: string): Date | null {
  const match = ISO_DATE_TIME.exec(text);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map((part) => Number(part ?? 0)) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  const offsetHours = Number(match[10] ?? 0);
  const offsetMinutes = Number(match[11] ?? 0);
  if (offsetHours > 23 || offsetMinutes > 59) return null;
  const offsetMs = (match[9] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // not Date.UTC: it reads the years 0 to 99 as 1900 to 1999
  date.setUTCHours(hour, minute, second, Math.floor(Number(`0.${match[7] ?? "0"}`) * 1000));
  const instant = date.getTime() - offsetMs;
  return Number.isNaN(instant) ? null : new Date(instant);
}

/** A date-time as a client sends it: an ISO-8601 string, a valid Date (from the GraphQL scalar) or, over REST, epoch milliseconds. */
function dateTimeOf(value: unknown): Date | null {
  if (typeof value === "string") return parseDateTime(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return new Date(value);
  return null;
}

/**
 * A date-time input (an ISO-8601 string; REST also takes epoch milliseconds) that every store keeps as given.
 * A preprocessed z.date(), so that the OpenAPI document describes it as a string of format date-time.
 */
export const dateTimeSchema = (message = DATE_TIME_FORMAT_MESSAGE) =>
  z
    .preprocess((value) => dateTimeOf(value) ?? new Date(Number.NaN), z.date({ errorMap: () => ({ message }) }))
    .refine((date) => isStorableInstant(date.getTime()), DATE_TIME_RANGE_MESSAGE);

/** A date-time carried in a cursor: parseable and storable. */
export function isCursorInstant(text: string): boolean {
  const date = parseDateTime(text);
  return date !== null && isStorableInstant(date.getTime());
}

/** Characters as a person counts them: Unicode code points (an emoji is one), not UTF-16 units. */
export function characterCount(text: string): number {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/** A string of `min` to `max` characters (code points), every limit of this API counted this way. */
export function charactersBetween(min: number, max: number, what = "characters") {
  const schema = z.string().refine((text) => characterCount(text) <= max, `must be at most ${max} ${what}`);
  return min > 0 ? schema.refine((text) => text.length >= min, "must not be empty") : schema;
}

export const idSchema = z
  .string()
  .min(1, "must not be empty")
  .max(LIMITS.idMaxChars, `must be at most ${LIMITS.idMaxChars} characters`)
  .regex(/^[A-Za-z0-9_-]+$/, "must contain only letters, digits, '_' and '-'");

export const nameSchema = storableString()
  .transform((value) => value.trim())
  .pipe(
    z
      .string()
      .min(1, "must not be empty or only spaces")
      .pipe(charactersBetween(0, LIMITS.nameMaxChars, "characters after trimming")),
  );

export const externalIdSchema = storableString()
  .transform((value) => value.trim())
  .pipe(z.string().min(1, "must not be empty; send null to clear it").pipe(charactersBetween(0, LIMITS.externalIdMaxChars)));

export const centsSchema = z
  .number({ invalid_type_error: "must be an integer number of cents" })
  .int("must be an integer number of cents")
  .min(0, "must be >= 0")
  .max(Number(MAX_CENTS), `must be at most ${MAX_CENTS}`);

/** Why a metadata value cannot be stored, or null; walks no deeper than the depth limit. */
function metadataProblem(value: unknown, depth: number): string | null {
  if (depth > LIMITS.metadataMaxDepth) return `must be nested at most ${LIMITS.metadataMaxDepth} levels deep`;
  if (typeof value === "string") return isStorableText(value) ? null : `text ${UNSTORABLE_TEXT_MESSAGE}`;
  if (typeof value !== "object" || value === null) return null;
  for (const [key, item] of Object.entries(value)) {
    if (!isStorableText(key)) return `keys ${UNSTORABLE_TEXT_MESSAGE}`;
    const problem = metadataProblem(item, depth + 1);
    if (problem) return problem;
  }
  return null;
}

export const metadataSchema = z
  .record(z.unknown(), { invalid_type_error: "must be a JSON object" })
  .superRefine((value, ctx) => {
    if (Array.isArray(value)) return void ctx.addIssue({ code: z.ZodIssueCode.custom, message: "must be a JSON object, not an array" });
    // Depth first: serializing a value nested without bound could exhaust the stack.
    const problem = metadataProblem(value, 1);
    if (problem) return void ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    if (Buffer.byteLength(JSON.stringify(value), "utf8") > LIMITS.metadataMaxBytes) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be at most ${LIMITS.metadataMaxBytes} bytes as JSON` });
    }
  });

export const accountStatusSchema = z.enum(["active", "inactive"], {
  errorMap: () => ({ message: "must be 'active' or 'inactive'" }),
});
export const keyEnvironmentSchema = z.enum(["live", "test"], {
  errorMap: () => ({ message: "must be 'live' or 'test'" }),
});

export const apiKeyNameSchema = storableString()
  .transform((value) => value.trim())
  .pipe(charactersBetween(1, LIMITS.apiKeyNameMaxChars));

export const pageSizeSchema = z
  .number()
  .int("must be an integer")
  .min(1, "must be at least 1")
  .max(LIMITS.pageMaxSize, `must be at most ${LIMITS.pageMaxSize}`);

export interface FieldIssue {
  field: string;
  message: string;
}

/**
 * Parses `input` or throws `invalid_request` whose details name every field at
 * fault. Nothing is written before this passes.
 */
export function parseInput<S extends z.ZodTypeAny>(schema: S, input: unknown, fieldPrefix = ""): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.map((issue) => ({
    field: [fieldPrefix, ...issue.path.map(String)].filter(Boolean).join("."),
    message: issue.code === "unrecognized_keys" ? `unknown field(s): ${issue.keys.join(", ")}` : issue.message,
  }));
  const first = issues[0]!;
  const summary = first.field ? `Invalid ${first.field}: ${first.message}` : `Invalid input: ${first.message}`;
  throw invalidRequest(issues.length > 1 ? `${summary} (and ${issues.length - 1} more)` : summary, {
    field: first.field,
    issues,
  });
}
