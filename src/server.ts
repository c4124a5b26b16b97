import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import type { Config } from "./config.ts";
import type { Database } from "./db/client.ts";
import { loadPriceTable } from "./domain/pricing.ts";
import { createHttpServer } from "./edge/http.ts";
import { createEdge, type Edge } from "./edge/index.ts";
import { createMetrics, type Metrics } from "./edge/metrics.ts";
import { createRateLimiter } from "./edge/rateLimit.ts";
import type { EventBus } from "./events/bus.ts";
import { createInProcessBus } from "./events/inProcess.ts";
import { isRedisTimeout } from "./events/redis.ts";
import { dashboardSurface } from "./frontends/dashboard/surface.ts";
import { createGraphQLServer, graphQLSurface, type GraphQLServer } from "./graphql/surface.ts";
import { attachGraphQLWebSocket } from "./graphql/ws.ts";
import type { Logger } from "./logger.ts";
import { restSurface } from "./rest/index.ts";
import { systemClock, type Clock } from "./services/clock.ts";
import { SimulatedProvider, type DeliveryProvider } from "./services/delivery.ts";
import { createServices, type Services } from "./services/index.ts";
import type { WebhookSettings } from "./services/webhooks/index.ts";
import type { Resolver } from "./services/webhooks/urlSafety.ts";
import { resolveSecretsKey } from "./services/webhooks/secrets.ts";

export interface GatewayOptions {
  config: Config;
  db: Database;
  logger: Logger;
  clock?: Clock;
  /** Default: in-process (one instance). Redis when scaled out. */
  bus?: EventBus;
  deliveryProvider?: DeliveryProvider;
  /** How webhook hosts resolve (tests inject one); the system's resolver by default. */
  webhookResolver?: Resolver;
}

export interface Gateway {
  server: Server;
  services: Services;
  edge: Edge;
  yoga: GraphQLServer;
  metrics: Metrics;
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * The rate limiter's shared counters and the readiness probe (REDIS_URL): no
 * call waits longer than REDIS_TIMEOUT_MS, and failures are the limiter's to
 * absorb, never a request's.
 */
function requestPathRedis(config: Config, logger: Logger): Redis | undefined {
  if (!config.REDIS_URL) return undefined;
  const redis = new Redis(config.REDIS_URL, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: config.REDIS_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
  redis.on("error", (error) => logger.debug({ err: error }, "rate limiter (Redis) error"));
  return redis;
}

/** Redis answers /readyz within REDIS_TIMEOUT_MS, or is down. */
function redisProbe(redis: Redis, metrics: Metrics) {
  return async () => {
    try {
      await redis.ping();
    } catch (error) {
      if (isRedisTimeout(error)) metrics.redisTimeouts.inc({ operation: "readiness" });
      throw error;
    }
  };
}

/** How this instance delivers webhooks (README.md, "Webhooks"), its attempts counted in the metrics. */
function webhookSettings(config: Config, metrics: Metrics, resolver: GatewayOptions["webhookResolver"]): WebhookSettings {
  return {
    secretsKey: resolveSecretsKey(config.SECRETS_KEY),
    previousSecretsKeys: config.SECRETS_KEY_PREVIOUS,
    production: config.NODE_ENV === "production",
    allowPrivateUrls: config.WEBHOOK_ALLOW_PRIVATE_URLS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    backoffBaseMs: config.WEBHOOK_BACKOFF_BASE_MS,
    leaseMs: config.WEBHOOK_LEASE_MS,
    pollMs: config.WEBHOOK_POLL_MS,
    resolver,
    onAttempt(kind, state) {
      metrics.webhookAttempts.inc({ outcome: kind });
      if (state !== "pending") metrics.webhookDeliveries.inc({ outcome: state });
    },
  };
}

/**
 * The composition root: the domain services, the edge every surface shares
 * (ARCHITECTURE.md), and the surfaces on one HTTP server: GraphQL over HTTP,
 * SSE and graphql-ws at /graphql, REST under /v1.
 */
export function createGateway(options: GatewayOptions): Gateway {
  const { config, db, logger } = options;
  const metrics = createMetrics();
  const redis = requestPathRedis(config, logger);
  const services = createServices({
    db,
    clock: options.clock ?? systemClock,
    prices: loadPriceTable(config.PRICES_FILE),
    bus: options.bus ?? createInProcessBus(),
    deliveryProvider: options.deliveryProvider ?? new SimulatedProvider(config.DELIVERY_STEP_MS),
    keyCacheTtlMs: config.KEY_CACHE_TTL_MS,
    onBackgroundError: (error) => logger.error({ err: error }, "background task failed"),
    onCharged: (charge) => {
      metrics.charges.inc();
      metrics.chargedCents.inc(Number(charge.amount));
    },
    onEventsRecovered: (count) => metrics.spendEventsRecovered.inc(count),
    webhooks: webhookSettings(config, metrics, options.webhookResolver),
  });
  metrics.observeWebhookBacklog(services.webhooks.backlog);
  const edge = createEdge({
    config,
    logger,
    metrics,
    rateLimiter: createRateLimiter({
      requestsPerSecond: config.RATE_LIMIT_RPS,
      burst: config.RATE_LIMIT_BURST,
      redis,
      redisPrefix: config.REDIS_PREFIX,
      onError: (error) => {
        if (isRedisTimeout(error)) metrics.redisTimeouts.inc({ operation: "rate_limit" });
        logger.debug({ err: error }, "shared rate limit unavailable; counted by this instance");
      },
    }),
    authenticateKey: (key) => services.authenticate(key),
    probes: {
      database: () => db.prisma.$queryRawUnsafe("SELECT 1"),
      ...(redis ? { redis: redisProbe(redis, metrics) } : {}),
    },
  });
  options.bus?.onTimeout((operation) => metrics.redisTimeouts.inc({ operation }));
  metrics.countOpenSubscriptions(() => services.openSubscriptions);
  metrics.countChargeBatches(() => db.charges.chargeBatches);
  const yoga = createGraphQLServer(edge, services, db.prisma);
  const server = createHttpServer(edge, [graphQLSurface(edge, yoga), restSurface(edge, services), dashboardSurface()]);
  const webSockets = attachGraphQLWebSocket(server, yoga, edge);
  // Every instance delivers webhooks, in the background (src/services/webhooks/dispatcher.ts).
  services.webhooks.dispatcher.start();

  return {
    server,
    services,
    edge,
    yoga,
    metrics,
    listen(port = config.PORT, host = config.HOST) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          const shownHost = host === "0.0.0.0" || host === "::" ? "localhost" : host;
          resolve(`http://${shownHost}:${address.port}`);
        });
      });
    },
    async close() {
      await services.webhooks.dispatcher.stop();
      services.close();
      for (const socket of webSockets.clients) socket.terminate();
      await new Promise<void>((resolve) => webSockets.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis?.disconnect();
    },
  };
}
