import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import { DomainError } from "../domain/errors.ts";

/** The burst reserve refills over this many seconds. */
export const BURST_REFILL_SECONDS = 10;

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export interface RateLimiter {
  /** False when RATE_LIMIT_RPS is 0: nothing is counted, so nobody needs to name the subject. */
  readonly enabled: boolean;
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
export function rateLimitSubject(authorization: unknown, clientIp: string | undefined): string {
  const key = typeof authorization === "string" ? authorization.trim().replace(/^Bearer\s+/i, "") : "";
  if (key !== "") return `key:${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
  return `ip:${clientIp ?? "unknown"}`;
}

type Store = "memory" | "redis";

function limiter(store: Store, name: string, points: number, duration: number, options: RateLimitOptions): RateLimiterAbstract {
  if (store === "memory" || !options.redis) return new RateLimiterMemory({ keyPrefix: name, points, duration });
  // Not ready (down, reconnecting): refused at once, so the request falls back without waiting.
  return new RateLimiterRedis({ storeClient: options.redis, keyPrefix: `${options.redisPrefix ?? ""}rate:${name}`, points, duration, rejectIfRedisNotReady: true });
}

/** `requestsPerSecond` in each one-second window, then up to `burst` more from a reserve refilled every BURST_REFILL_SECONDS. */
function sustainedWithBurst(store: Store, options: RateLimitOptions): RateLimiterAbstract | BurstyRateLimiter {
  const sustained = limiter(store, "rps", options.requestsPerSecond, 1, options);
  return options.burst > 0 ? new BurstyRateLimiter(sustained, limiter(store, "burst", options.burst, BURST_REFILL_SECONDS, options)) : sustained;
}

/** The decision, or the store's own failure thrown (anything but a RateLimiterRes refusal). */
async function decide(limiter: RateLimiterAbstract | BurstyRateLimiter, subject: string): Promise<RateDecision> {
  try {
    await limiter.consume(subject);
    return { allowed: true };
  } catch (rejection) {
    if (!(rejection instanceof RateLimiterRes)) throw rejection;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
  }
}

/**
 * Per subject (rate-limiter-flexible): `requestsPerSecond` in each one-second
 * window, then up to `burst` more. Over both, the request is refused until
 * the window ends. With Redis the counters are shared by every instance; a
 * Redis call that fails or takes longer than its client's command timeout is
 * given up, reported, and the request is counted by this instance alone (the
 * in-memory limiter) rather than refused or delayed.
 */
export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  if (options.requestsPerSecond === 0) return { enabled: false, consume: async () => ({ allowed: true }) };
  const local = sustainedWithBurst("memory", options);
  const shared = options.redis ? sustainedWithBurst("redis", options) : null;
  return {
    enabled: true,
    async consume(subject) {
      if (shared) {
        try {
          return await decide(shared, subject);
        } catch (error) {
          options.onError(error);
        }
      }
      try {
        return await decide(local, subject);
      } catch (error) {
        options.onError(error);
        return { allowed: true };
      }
    },
  };
}

/** The refusal of a request over its rate, saying when to retry (Retry-After). */
export function rateLimited(retryAfterSeconds: number): DomainError {
  return new DomainError(
    "rate_limited",
    `Too many requests for this API key. Retry after ${retryAfterSeconds} s (the Retry-After header), and spread requests out.`,
    { retryAfterSeconds },
    { headers: { "retry-after": String(retryAfterSeconds) } },
  );
}
