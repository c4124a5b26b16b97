import fc from "fast-check";

/**
 * Input generators for the property tests: plausible values, values just past
 * a limit, and garbage of every JSON type, mixed so that most cases reach the
 * services and some reach the database.
 */

/** Strings chosen to hurt: injection attempts, control characters, limits, odd Unicode. */
export const nastyString = fc.constantFrom(
  "",
  " ",
  "   \t\n ",
  "\u0001\u001f\u007f",
  "\u202e\u200b\ufeff",
  "🙂".repeat(70),
  "é".repeat(201),
  "x".repeat(200),
  "x".repeat(201),
  "x".repeat(255),
  "x".repeat(256),
  "x".repeat(5000),
  "'; DROP TABLE \"Account\"; --",
  "\" OR 1=1 --",
  "%",
  "%zz",
  "..",
  "../../etc/passwd",
  "null",
  "undefined",
  "NaN",
  "__proto__",
  "constructor",
  "$where",
  "{\"$gt\":\"\"}",
  "<script>alert(1)</script>",
  "${7*7}",
  "zv_live_",
  "zv_live_sub_0000000000000000000000000000000000",
  "a\u0000b",
  "x\ud800y",
  "\udfff",
  "\ud83d",
);

/** Any Unicode text, control characters included. */
export const anyString = fc
  .oneof(
    { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 150, maxLength: 320 }) },
    { weight: 2, arbitrary: nastyString },
  );

/** Numbers around every limit: negative, fractional, huge, unsafe, special. */
export const anyNumber = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.integer(),
  fc.constantFrom(0, -1, 1, 100, 101, 0.5, -0.5, 1e-9, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e15, 1e16, 1e21, 1e300, -1e300, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.maxSafeInteger(),
);

/** A JSON value of any shape, deep nesting included. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  // Around the metadata depth limit (20), and far past it.
  { weight: 1, arbitrary: fc.oneof(fc.integer({ min: 1, max: 25 }), fc.integer({ min: 26, max: 300 })).map((depth) => nest(depth)) },
  { weight: 1, arbitrary: fc.dictionary(anyString, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 8 }) },
  { weight: 1, arbitrary: fc.constant({ blob: "m".repeat(16 * 1024) }) },
);

/** A JSON value nested `depth` levels deep, alternating objects and arrays. */
export function nest(depth: number): unknown {
  let value: unknown = "leaf";
  for (let level = 0; level < depth; level += 1) value = level % 2 ? [value] : { deeper: value };
  return value;
}

/** Anything a JSON body may carry where a value is expected. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: anyString },
  { weight: 3, arbitrary: anyNumber },
  { weight: 2, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 2, arbitrary: anyJson },
);

/** A value of the expected kind most of the time, anything at all otherwise. */
export function mostly<T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: anyValue });
}

/** A property of an input object: present with a value, or absent. */
export function optionalField<T>(value: fc.Arbitrary<T>) {
  return fc.option(value, { nil: undefined, freq: 3 });
}

/** Drops undefined properties so "absent" really is absent in the JSON. */
export function defined<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export const phoneNumber = fc.oneof(
  fc.constantFrom("+14155550100", "+447700900123", "+5511999998888", "+4915112345678", "+0000", "+999999999999999", "14155550100"),
  fc.stringMatching(/^\+[1-9]\d{6,14}$/),
);
export const emailAddress = fc.oneof(fc.emailAddress(), fc.constantFrom("a@b", "@example.com", "user@", "user@example.com"));
export const chatId = fc.oneof(fc.bigInt({ min: 1n, max: 10n ** 15n }).map(String), fc.constantFrom("0", "-100123", "12a"));
export const destination = fc.oneof(phoneNumber, emailAddress, chatId, anyString);

export const graphqlChannel = mostly(fc.constantFrom("SMS", "WHATSAPP", "TELEGRAM", "EMAIL", "sms", "FAX", ""));
export const restChannel = mostly(fc.constantFrom("sms", "whatsapp", "telegram", "email", "SMS", "fax", ""));
export const graphqlStatus = mostly(fc.constantFrom("ACTIVE", "INACTIVE", "active", "DELETED"));
export const restStatus = mostly(fc.constantFrom("active", "inactive", "ACTIVE", "deleted"));
export const graphqlEnvironment = mostly(fc.constantFrom("LIVE", "TEST", "live", "PROD"));
export const restEnvironment = mostly(fc.constantFrom("live", "test", "LIVE", "prod"));

export const cents = mostly(fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), fc.constantFrom(0, 10 ** 10, 2 ** 53 - 1)));
export const pageSize = mostly(fc.oneof(fc.integer({ min: -2, max: 102 }), fc.constantFrom(0, 1, 100, 101, 2 ** 31)));
export const metadata = mostly(fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }), anyJson));
export const idempotencyKey = mostly(fc.oneof(fc.stringMatching(/^[\x21-\x7e]{1,40}$/), fc.constantFrom("same-key", "x".repeat(256), "with space")));
export const messageText = mostly(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: "binary", maxLength: 400 }), fc.constantFrom("", "\u0000", "\ud800", "x".repeat(100_001))));

/** Ids: mostly ones that exist (given), sometimes random or malformed. */
export function idFrom(known: () => string[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 1 << 20 }).map((n) => known()[n % Math.max(1, known().length)] ?? "none") },
    { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9]{20,30}$/) },
    { weight: 1, arbitrary: anyString },
    { weight: 1, arbitrary: anyValue },
  );
}

/** Cursors: real-looking base64, random text, or garbage. */
export const cursor = mostly(
  fc.oneof(
    fc.string({ maxLength: 30 }).map((s) => Buffer.from(`OC:${s}`).toString("base64")),
    fc.base64String({ maxLength: 40 }),
    fc.string({ maxLength: 600 }),
  ),
);

/** A seed for this run, or the one to replay (env FUZZ_SEED), printed so any failure can be replayed. */
export function runSeed(label: string): number {
  const fromEnv = process.env.FUZZ_SEED;
  const seed = fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  if (!Number.isInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(fromEnv)}`);
  console.log(`${label}: seed ${seed} (replay with FUZZ_SEED=${seed})`);
  return seed;
}

/** Scales the number of runs (env FUZZ_SCALE, default 1), never below 1. */
export function runs(base: number): number {
  const scale = Number(process.env.FUZZ_SCALE ?? "1");
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}
