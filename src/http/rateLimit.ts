import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import { parseBearer } from "../services/auth.ts";

/** The burst reserve refills over this many seconds. */
export const BURST_REFILL_SECONDS = 10;

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export interface RateLimiter {
  /** Counts one request of `subject` (see rateLimitSubject); never throws. */
  consume(subject: string): Promise<RateDecision>;
}

export interface RateLimitOptions {
  /** Sustained requests per second per subject; 0 disables the limiter. */
  requestsPerSecond: number;
  /** Requests a subject may send on top of the sustained rate, refilled every BURST_REFILL_SECONDS. */
  burst: number;
  /** Shared counters for every instance; without it (or while it is down) each instance counts alone. */
  redis?: Redis;
  redisPrefix?: string;
  onError(error: unknown): void;
}

/**
 * Who a request is counted against: the SHA-256 of its bearer key (never the
 * key itself, which would then sit in Redis), or its client IP without one.
 */
export function rateLimitSubject(authorization: string | null | undefined, clientIp: string | undefined): string {
  const key = parseBearer(authorization ?? null);
  if (key !== null) return `key:${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
  return `ip:${clientIp ?? "unknown"}`;
}

function limiter(name: string, points: number, duration: number, options: RateLimitOptions): RateLimiterAbstract {
  const memory = new RateLimiterMemory({ keyPrefix: name, points, duration });
  if (!options.redis) return memory;
  // While Redis is unreachable each instance limits on its own (the insurance) instead of refusing or failing requests.
  return new RateLimiterRedis({
    storeClient: options.redis,
    keyPrefix: `${options.redisPrefix ?? ""}rate:${name}`,
    points,
    duration,
    rejectIfRedisNotReady: true,
    insuranceLimiter: memory,
  });
}

/**
 * Per subject: `requestsPerSecond` in each one-second window, then up to `burst`
 * more from a reserve refilled every BURST_REFILL_SECONDS (rate-limiter-flexible's
 * BurstyRateLimiter). Over both, the request is refused until the window ends.
 */
export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  if (options.requestsPerSecond === 0) return { consume: async () => ({ allowed: true }) };
  const sustained = limiter("rps", options.requestsPerSecond, 1, options);
  const bursty =
    options.burst > 0 ? new BurstyRateLimiter(sustained, limiter("burst", options.burst, BURST_REFILL_SECONDS, options)) : sustained;
  return {
    async consume(subject) {
      try {
        await bursty.consume(subject);
        return { allowed: true };
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) {
          return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
        }
        // A store failure must not take the API down: serve the request, report the failure.
        options.onError(rejection);
        return { allowed: true };
      }
    },
  };
}

export function rateLimitedMessage(retryAfterSeconds: number): string {
  return `Too many requests for this API key. Retry after ${retryAfterSeconds} s (the Retry-After header), and spread requests out.`;
}
