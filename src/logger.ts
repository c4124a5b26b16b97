import pino from "pino";

export type Logger = pino.Logger;

/** Structured logs; the Authorization header (an API key) is never written. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: { paths: ["req.headers.authorization", "headers.authorization", "authorization", "apiKey", "key"], censor: "[redacted]" },
  });
}
