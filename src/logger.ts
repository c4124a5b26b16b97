import pino from "pino";

export type Logger = pino.Logger;

/**
 * Structured logs (JSON lines). API keys and webhook signing secrets are never
 * written: request logs carry only the key's id and display prefix, and these
 * paths are censored in case a header set, a key or a secret ever reaches a log call.
 */
export const REDACTED_PATHS = [
  "req.headers.authorization",
  "headers.authorization",
  "authorization",
  "*.authorization",
  "connectionParams",
  "*.connectionParams",
  "apiKey",
  "*.apiKey",
  "key",
  "*.key",
  "secret",
  "*.secret",
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = { level, redact: { paths: REDACTED_PATHS, censor: "[redacted]" } };
  return destination ? pino(options, destination) : pino(options);
}
