import type { IncomingMessage, ServerResponse } from "node:http";
import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";
import type { Authenticated } from "../services/auth.ts";
import { bearerKey } from "./auth.ts";
import { readBodyWithinLimit, refuseDeclaredTooLarge } from "./body.ts";
import { createDeadlines } from "./deadlines.ts";
import { toEdgeError, type EdgeError } from "./errors.ts";
import type { Metrics } from "./metrics.ts";
import { rateLimitSubject, rateLimited, type RateLimiter } from "./rateLimit.ts";
import { checkReadiness, type Probe, type Readiness } from "./readiness.ts";
import type { EdgeRequest } from "./requestLog.ts";

export interface EdgeOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  rateLimiter: RateLimiter;
  /** The domain's one rule of which keys authenticate (src/services/auth.ts). */
  authenticateKey(key: string): Promise<Authenticated>;
  /** The dependencies /readyz asks (the database; Redis when configured). */
  probes: Record<string, Probe>;
}

/**
 * What every surface (GraphQL over HTTP and SSE, graphql-ws, REST) needs,
 * decided once: who is calling, whether they are over their rate, how large a
 * body may be, how long an operation may run, how an error is answered, and
 * whether the gateway is ready. Surfaces only adapt these to their protocol.
 */
export function createEdge(options: EdgeOptions) {
  const { config, logger, metrics } = options;
  const deadlines = createDeadlines(config.REQUEST_TIMEOUT_MS);
  return {
    config,
    logger,
    metrics,
    production: config.NODE_ENV === "production",

    /** The caller of an Authorization value (header or connectionParams); null without one; `unauthorized` otherwise. */
    async authenticate(authorization: unknown, request?: EdgeRequest): Promise<Authenticated | null> {
      const key = bearerKey(authorization);
      if (key === null) return null;
      const caller = await options.authenticateKey(key);
      request?.note({ apiKeyId: caller.actor.apiKeyId, accountId: caller.actor.accountId });
      return caller;
    },

    /** Counts one request against its key (its client IP without one); `rate_limited` when over the allowance. */
    async admit(authorization: unknown, clientIp: string | undefined): Promise<void> {
      if (!options.rateLimiter.enabled) return;
      const decision = await options.rateLimiter.consume(rateLimitSubject(authorization, clientIp));
      if (!decision.allowed) throw rateLimited(decision.retryAfterSeconds);
    },

    /** The request body within MAX_BODY_BYTES; `invalid_request` past it. */
    readBody: (req: IncomingMessage, res: ServerResponse) => readBodyWithinLimit(req, res, config.MAX_BODY_BYTES),

    /** `invalid_request` for a declared Content-Length over MAX_BODY_BYTES, before anything is read. */
    refuseDeclaredTooLarge: (req: IncomingMessage, res: ServerResponse) => refuseDeclaredTooLarge(req, res, config.MAX_BODY_BYTES),

    /** Any error as answered to a client, counted by code in the metrics. */
    toError(error: unknown, context: object = {}): EdgeError {
      const mapped = toEdgeError(error, logger, context);
      metrics.rejections.inc({ code: mapped.code });
      return mapped;
    },

    /** How long an operation may run: REQUEST_TIMEOUT_MS, shared by the requests of each 100 ms (src/edge/deadlines.ts). */
    deadlines,

    /** `work`, or a retryable internal_error once REQUEST_TIMEOUT_MS has passed (subscriptions are not cut). */
    async deadline<T>(work: Promise<T>): Promise<T> {
      return deadlines.within(
        () => work,
        (error) => {
          throw error;
        },
      );
    },

    readiness: (): Promise<Readiness> => checkReadiness(options.probes),
  };
}

export type Edge = ReturnType<typeof createEdge>;
export type { EdgeError } from "./errors.ts";
export type { EdgeRequest } from "./requestLog.ts";
