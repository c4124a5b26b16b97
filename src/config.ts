import path from "node:path";
import { z } from "zod";

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
    /** Prefix of every Redis channel, so deployments (or test runs) can share one Redis. */
    REDIS_PREFIX: z.string().min(1).max(100).default("subaccounts-gateway:"),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    /** How often the server purges sub-accounts past their grace period. */
    PURGE_INTERVAL_MS: z.coerce.number().int().min(1000).max(86_400_000).default(3_600_000),
    /** Largest request body accepted, in bytes. */
    MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(10_485_760).default(1_048_576),
    /** Sustained requests per second allowed per API key (per client IP without a key); 0 disables rate limiting. */
    RATE_LIMIT_RPS: z.coerce.number().int().min(0).max(1_000_000).default(100),
    /** Requests a key may send at once before the sustained rate applies. */
    RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(10_000_000).default(200),
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
    /** Create a demo team on first start against an empty database (never in production). */
    DEMO_TEAM: z.enum(["true", "false"]).default("true").transform((v) => v === "true"),
  })
  .strict();

export type Config = z.infer<typeof schema>;

const KNOWN = Object.keys(schema.shape) as (keyof Config)[];

export class ConfigError extends Error {}

/** Reads the known variables from `env`; a malformed value stops the start with a clear message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const picked: Record<string, string> = {};
  for (const name of KNOWN) {
    const value = env[name];
    if (value !== undefined && value !== "") picked[name] = value;
  }
  const parsed = schema.safeParse(picked);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}=${JSON.stringify(picked[String(issue.path[0])])}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
  }
  return parsed.data;
}
