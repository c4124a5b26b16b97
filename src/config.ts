import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { parseTrustedDocuments, type TrustedDocuments } from "./domain/trustedDocuments.ts";

/** TRUSTED_DOCUMENTS read and checked once, at start: an unreadable or malformed manifest stops the start. */
function readTrustedDocuments(file: string, ctx: z.RefinementCtx): { file: string; documents: TrustedDocuments } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `cannot read the file (${code}); point it at the persisted-documents.json your frontend's build writes` });
    return z.NEVER;
  }
  try {
    return { file: path.resolve(file), documents: parseTrustedDocuments(text) };
  } catch (error) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `the file ${(error as Error).message}` });
    return z.NEVER;
  }
}
import { PREVIOUS_SECRETS_KEYS_MAX, parseSecretsKey, parseSecretsKeyList } from "./domain/secretsKey.ts";

/** Every setting has a default: `npm start` needs no env file. */
const schema = z
  .object({
    NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
    HOST: z.string().min(1).default("0.0.0.0"),
    PORT: z.coerce.number().int().min(0).max(65535).default(4000),
    DATABASE_URL: z
      .string()
      .default(`file:${path.resolve("data", "gateway.db")}`)
      .refine((url) => /^(file:|postgres(ql)?:\/\/)/.test(url), {
        message: "must start with file: (SQLite) or postgresql:// (PostgreSQL)",
      }),
    REDIS_URL: z
      .string()
      .optional()
      .refine((url) => url === undefined || /^rediss?:\/\//.test(url), { message: "must start with redis:// or rediss://" }),
    /**
     * Longest wait for one Redis call on a request's path (rate limit, publish, readiness): past it the
     * call is given up and its fallback used, so a stalled Redis slows a request by at most this.
     */
    REDIS_TIMEOUT_MS: z.coerce.number().int().min(10).max(10_000).default(200),
    /** How long an instance trusts a key that authenticated without reading it again; bounds how long a lost revocation message matters. 0: never. */
    KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).max(1_000).default(500),
    /** Prefix of every Redis channel, so deployments (or test runs) can share one Redis. */
    REDIS_PREFIX: z.string().min(1).max(100).default("subaccounts-gateway:"),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    /** How often the server purges sub-accounts past their grace period. */
    PURGE_INTERVAL_MS: z.coerce.number().int().min(1000).max(86_400_000).default(3_600_000),
    /** Largest request body accepted, in bytes. */
    MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(10_485_760).default(1_048_576),
    /** Sustained requests per second allowed per API key (per client IP without a key); 0 disables rate limiting. */
    RATE_LIMIT_RPS: z.coerce.number().int().min(0).max(1_000_000).default(100),
    /** Requests a key may send at once before the sustained rate applies; 0: none beyond the sustained rate. */
    RATE_LIMIT_BURST: z.coerce.number().int().min(0).max(10_000_000).default(200),
    /** Longest time to receive a request and to answer a query or mutation (subscriptions are not cut). */
    REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
    /**
     * Browser origins allowed to call the API (comma-separated, or `*` for any). Unset: `*` in
     * development and test, none in production.
     */
    CORS_ORIGINS: z
      .string()
      .optional()
      .transform((value) => value?.split(",").map((origin) => origin.trim()).filter((origin) => origin !== ""))
      .refine((origins) => origins === undefined || origins.every((origin) => origin === "*" || /^https?:\/\/[^/\s]+$/.test(origin)), {
        message: "must be * or a comma-separated list of origins such as https://app.example.com (scheme and host, no path)",
      }),
    /** The simulated carrier's delay between queued, sent and delivered. */
    DELIVERY_STEP_MS: z.coerce.number().int().min(0).max(60_000).default(500),
    /** A JSON price table replacing the built-in one (src/domain/prices.json). */
    PRICES_FILE: z.string().min(1).optional(),
    /**
     * A frontend's trusted documents (README.md, "Trusted documents"): when set, only the
     * documents it lists run, sent by hash.
     */
    TRUSTED_DOCUMENTS: z
      .string()
      .min(1)
      .optional()
      .transform((file, ctx) => (file === undefined ? undefined : readTrustedDocuments(file, ctx))),
    /** Create a demo team on first start against an empty database (never in production). */
    DEMO_TEAM: z.enum(["true", "false"]).default("true").transform((v) => v === "true"),
    /**
     * The AES-256 key that encrypts webhook signing secrets at rest. Required in production;
     * elsewhere generated once under ./data/ when unset.
     */
    SECRETS_KEY: z
      .string()
      .optional()
      .refine((value) => value === undefined || parseSecretsKey(value) !== null, {
        message: "must be 32 bytes written as 64 hexadecimal characters or as base64 (e.g. the output of `openssl rand -hex 32`)",
      }),
    /**
     * Earlier SECRETS_KEYs, comma-separated: secrets sealed under them still open, and
     * `npm run admin -- reseal-secrets` seals them again under SECRETS_KEY (README.md, "Rotating SECRETS_KEY").
     */
    SECRETS_KEY_PREVIOUS: z
      .string()
      .optional()
      .transform((value, context) => {
        if (value === undefined) return [];
        const keys = parseSecretsKeyList(value);
        if (keys === null) {
          context.addIssue({
            code: z.ZodIssueCode.custom,
            message: `must be up to ${PREVIOUS_SECRETS_KEYS_MAX} keys separated by commas, each 32 bytes written as 64 hexadecimal characters or as base64`,
          });
          return z.NEVER;
        }
        return keys;
      }),
    /** How long a webhook receiver has to answer an attempt with a 2xx. */
    WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
    /** The delay before a failed webhook attempt's first retry, doubling (with jitter) at each further one. */
    WEBHOOK_BACKOFF_BASE_MS: z.coerce.number().int().min(10).max(3_600_000).default(5_000),
    /** How long a claimed webhook attempt belongs to the instance that claimed it. */
    WEBHOOK_LEASE_MS: z.coerce.number().int().min(1000).max(3_600_000).default(30_000),
    /** How often each instance looks for webhook deliveries due (it also looks at once after writing an event). */
    WEBHOOK_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(1_000),
    /** Whether webhook URLs may lead to private, loopback or link-local addresses. Unset: true, except in production. */
    WEBHOOK_ALLOW_PRIVATE_URLS: z.enum(["true", "false"]).optional(),
  })
  .strict();

type ParsedConfig = z.infer<typeof schema>;
export type Config = Omit<ParsedConfig, "WEBHOOK_ALLOW_PRIVATE_URLS"> & { WEBHOOK_ALLOW_PRIVATE_URLS: boolean };

const KNOWN = Object.keys(schema.shape) as (keyof Config)[];

export class ConfigError extends Error {}

/** Settings whose value is a secret: a malformed one is never repeated in the message (it may be a key with one typo). */
const SECRET_SETTINGS = new Set(["SECRETS_KEY", "SECRETS_KEY_PREVIOUS"]);

/** A value as an error message may show it: secrets hidden, a URL's password masked. */
function shownValue(name: string, value: string | undefined): string {
  if (value === undefined) return "(unset)";
  if (SECRET_SETTINGS.has(name)) return `(hidden, ${value.length} characters)`;
  return JSON.stringify(value.replace(/\/\/([^/@:]*):[^/@]*@/, "//$1:***@"));
}

/** Reads the known variables from `env`; a malformed value stops the start with a clear message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const picked: Record<string, string> = {};
  for (const name of KNOWN) {
    const value = env[name];
    if (value !== undefined && value !== "") picked[name] = value;
  }
  const parsed = schema.safeParse(picked);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}=${shownValue(String(issue.path[0]), picked[String(issue.path[0])])}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
  }
  return withWebhookSettings(parsed.data);
}

/** The settings that depend on one another or on NODE_ENV (README.md, "Configuration"). */
function withWebhookSettings(parsed: ParsedConfig): Config {
  const production = parsed.NODE_ENV === "production";
  const problems: string[] = [];
  if (production && parsed.SECRETS_KEY === undefined) {
    problems.push("  SECRETS_KEY (unset): required when NODE_ENV=production (32 bytes as 64 hexadecimal characters or base64, e.g. `openssl rand -hex 32`); keep it: stored webhook secrets need it");
  }
  if (parsed.WEBHOOK_LEASE_MS < parsed.WEBHOOK_TIMEOUT_MS + 1000) {
    problems.push(`  WEBHOOK_LEASE_MS=${parsed.WEBHOOK_LEASE_MS}: must exceed WEBHOOK_TIMEOUT_MS (${parsed.WEBHOOK_TIMEOUT_MS}) by at least 1000 ms, so that no attempt outlives its lease`);
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n${problems.join("\n")}`);
  const allowPrivate = parsed.WEBHOOK_ALLOW_PRIVATE_URLS === undefined ? !production : parsed.WEBHOOK_ALLOW_PRIVATE_URLS === "true";
  return { ...parsed, WEBHOOK_ALLOW_PRIVATE_URLS: allowPrivate };
}
