import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createYoga, type Plugin, type YogaServerInstance } from "graphql-yoga";
import { GraphQLError, getOperationAST, type DocumentNode } from "graphql";
import { Redis } from "ioredis";
import { WebSocketServer } from "ws";
import { useServer } from "graphql-ws/use/ws";
import { loadPriceTable } from "./domain/pricing.ts";
import { SimulatedProvider, type DeliveryProvider } from "./services/delivery.ts";
import { createInProcessBus } from "./bus/inProcess.ts";
import type { EventBus } from "./bus/types.ts";
import type { Config } from "./config.ts";
import type { Database } from "./db/client.ts";
import { DomainError } from "./domain/errors.ts";
import { createLoaders, type GraphQLContext } from "./graphql/context.ts";
import { bodyTooLargeMessage, toClientError, toValidationError } from "./graphql/errors.ts";
import { applyCors, corsOrigins } from "./http/cors.ts";
import { executionTimeout } from "./http/executionTimeout.ts";
import { countCharges, createMetrics, routeLabel, type Metrics } from "./http/metrics.ts";
import { disableIntrospection, queryLimitsPlugin } from "./http/queryLimits.ts";
import { createRateLimiter, rateLimitSubject, rateLimitedMessage, type RateLimiter } from "./http/rateLimit.ts";
import { schema } from "./graphql/schema/index.ts";
import type { Logger } from "./logger.ts";
import { createRestHandler } from "./rest/index.ts";
import { codedContentNegotiationErrors } from "./graphql/contentNegotiation.ts";
import { useSharedSubscriptionResults } from "./graphql/sharedSubscriptionResults.ts";
import { BodyTooLarge, closeIfBodyUnread, readBody, sendError } from "./rest/http.ts";
import { parseBearer, type Authenticated } from "./services/auth.ts";
import type { Actor } from "./services/deps.ts";
import { systemClock, type Clock } from "./services/clock.ts";
import { createServices, type Services } from "./services/index.ts";

export const GRAPHIQL_EXAMPLE = `# Paste your API key into the Headers tab below:
#   { "Authorization": "Bearer zv_live_..." }
# The demo team's main key is printed once by the first \`npm start\`.

query Overview {
  viewer {
    account { id name isSubAccount }
    team { name balance currency }
    isTestMode
  }
  balance { balance currency isSubAccount totalSpent creditLimit }
  subAccounts(first: 10) {
    totalCount
    edges { node { id name externalId status totalSpent creditLimit apiKeys { keyPrefix environment revokedAt } } }
    pageInfo { hasNextPage endCursor }
  }
}

mutation CreateSubAccount {
  createSubAccount(input: { name: "Client ABC", externalId: "client_123", creditLimit: 100000, metadata: { plan: "enterprise" } }) {
    apiKey
    subAccount { id name status creditLimit }
  }
}
`;

export interface GatewayOptions {
  config: Config;
  db: Database;
  logger: Logger;
  clock?: Clock;
  /** Default: in-process (one instance). Redis when scaled out. */
  bus?: EventBus;
  deliveryProvider?: DeliveryProvider;
}

export interface Gateway {
  server: Server;
  services: Services;
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>;
  metrics: Metrics;
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

/** How long /readyz waits for the database or Redis before calling it down. */
const READINESS_TIMEOUT_MS = 2000;
/** How often the HTTP server looks for requests past REQUEST_TIMEOUT_MS. */
const CONNECTION_CHECK_INTERVAL_MS = 1000;

function authError(error: DomainError): GraphQLError {
  return new GraphQLError(error.message, { extensions: { code: error.code, http: { status: error.status } } });
}

/** Unknown fields, bad literals, missing arguments: invalid_request (HTTP 400), naming the field. */
const validationErrors: Plugin = {
  onValidate: () => ({ valid, result, setResult }) => {
    if (!valid) setResult(result.map(toValidationError));
  },
};

/** What the request log line says about one request, filled in as the request is handled. */
interface RequestInfo {
  id: string;
  operationName?: string;
  apiKeyId?: string;
  accountId?: string;
}

/** An incoming x-request-id is kept if it is short and plain; anything else is replaced. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers["x-request-id"];
  return typeof incoming === "string" && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

function operationNameOf(document: DocumentNode | undefined, named: string | null | undefined): string | undefined {
  if (named) return named;
  try {
    return document ? (getOperationAST(document)?.name?.value ?? undefined) : undefined;
  } catch {
    return undefined;
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}

function errorCodes(result: unknown): string[] {
  const results = Array.isArray(result) ? result : [result];
  return results.flatMap((one) =>
    ((one as { errors?: { extensions?: { code?: unknown } }[] } | undefined)?.errors ?? []).map((error) =>
      typeof error.extensions?.code === "string" ? error.extensions.code : "internal_error",
    ),
  );
}

export function createGateway(options: GatewayOptions): Gateway {
  const { config, db, logger } = options;
  const production = config.NODE_ENV === "production";
  const metrics = createMetrics();
  const requests = new WeakMap<IncomingMessage, RequestInfo>();

  const charges = countCharges(db.charges, metrics);

  const redis = config.REDIS_URL
    ? new Redis(config.REDIS_URL, {
        lazyConnect: false,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
      })
    : undefined;
  redis?.on("error", (error) => logger.debug({ err: error }, "rate limiter (Redis) error"));

  const rateLimiter: RateLimiter = createRateLimiter({
    requestsPerSecond: config.RATE_LIMIT_RPS,
    burst: config.RATE_LIMIT_BURST,
    redis,
    redisPrefix: config.REDIS_PREFIX,
    onError: (error) => logger.warn({ err: error }, "rate limiter failed; request served"),
  });

  const services = createServices({
    db: { ...db, charges },
    clock: options.clock ?? systemClock,
    prices: loadPriceTable(config.PRICES_FILE),
    bus: options.bus ?? createInProcessBus(),
    deliveryProvider: options.deliveryProvider ?? new SimulatedProvider(config.DELIVERY_STEP_MS),
    onBackgroundError: (error) => logger.error({ err: error }, "background task failed"),
  });

  async function resolveCaller(authorization: string | null): Promise<Authenticated | null> {
    const key = parseBearer(authorization);
    if (key === null) return null;
    try {
      return await services.authenticateWithTeam(key);
    } catch (error) {
      if (error instanceof DomainError) throw authError(error);
      throw error;
    }
  }

  /** Operation names for the request log, rejection counts, open subscriptions. */
  const observe: Plugin = {
    onParams({ params, context }) {
      const { req } = context as { req?: IncomingMessage };
      const info = req ? requests.get(req) : undefined;
      if (info && params.operationName) info.operationName = params.operationName;
    },
    onExecute({ args }) {
      const { req } = args.contextValue as { req?: IncomingMessage };
      const info = req ? requests.get(req) : undefined;
      if (info) info.operationName = operationNameOf(args.document, args.operationName);
    },
    onSubscribe() {
      return {
        onSubscribeResult({ result }) {
          if (!isAsyncIterable(result)) return undefined;
          metrics.openSubscriptions.inc();
          return { onEnd: () => metrics.openSubscriptions.dec() };
        },
      };
    },
    onResultProcess({ result }) {
      if (!isAsyncIterable(result)) for (const code of errorCodes(result)) metrics.rejections.inc({ code });
    },
  };

  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    logging: false,
    // The HTTP handler reads POST bodies itself, within MAX_BODY_BYTES (see handle()).
    maxRequestBodySize: false,
    // CORS is applied to every route by the HTTP server (src/http/cors.ts).
    cors: false,
    graphiql: production
      ? false
      : { title: "Sub-accounts gateway", defaultQuery: GRAPHIQL_EXAMPLE, headers: JSON.stringify({ Authorization: "Bearer zv_live_..." }, null, 2) },
    maskedErrors: { maskError: (error) => toClientError(error, logger, { maxBodyBytes: config.MAX_BODY_BYTES }) },
    plugins: [
      validationErrors,
      queryLimitsPlugin({ production }),
      ...(production ? [disableIntrospection] : []),
      executionTimeout(config.REQUEST_TIMEOUT_MS),
      observe,
      useSharedSubscriptionResults,
      codedContentNegotiationErrors,
    ],
    // HTTP and SSE send the key in the Authorization header; graphql-ws in connectionParams.authorization.
    context: async (initial) => {
      const caller = await resolveCaller(
        initial.request?.headers.get("authorization") ??
          ((initial as { connectionParams?: { authorization?: unknown } }).connectionParams?.authorization as string | undefined) ??
          null,
      );
      const info = requests.get((initial as { req?: IncomingMessage }).req!);
      if (info && caller) Object.assign(info, { apiKeyId: caller.actor.apiKeyId, accountId: caller.actor.accountId });
      const loaders = createLoaders(db.prisma);
      // The team was read with the key: fields asking for it this request need no statement of their own.
      if (caller) loaders.teamById.prime(caller.team.id, caller.team);
      return { actor: caller?.actor ?? null, services, prisma: db.prisma, loaders };
    },
  });

  const rest = createRestHandler({
    services,
    maxBodyBytes: config.MAX_BODY_BYTES,
    timeoutMs: config.REQUEST_TIMEOUT_MS,
    logger,
    onActor: (req, actor) => {
      const info = requests.get(req);
      if (info) Object.assign(info, { apiKeyId: actor.apiKeyId, accountId: actor.accountId });
    },
    onError: (code) => metrics.rejections.inc({ code }),
  });
  const allowedOrigins = corsOrigins(config.CORS_ORIGINS, production);

  /** An error answered before the request reaches GraphQL or REST, in the shape of the surface asked. */
  function refuse(req: IncomingMessage, res: ServerResponse, surface: "graphql" | "rest", code: "invalid_request" | "rate_limited", message: string, details: Record<string, unknown>, headers: Record<string, string> = {}) {
    metrics.rejections.inc({ code });
    closeIfBodyUnread(req, res);
    if (surface === "rest") {
      sendError(res, { code, message, details }, headers);
      return;
    }
    const body = JSON.stringify({ errors: [{ message, extensions: { code, details } }] });
    res
      .writeHead(code === "rate_limited" ? 429 : 400, { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(body)), ...headers })
      .end(body);
  }

  async function readiness(): Promise<{ ok: boolean; checks: Record<string, "up" | "down"> }> {
    const withTimeout = <T>(promise: Promise<T>) =>
      Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timed out")), READINESS_TIMEOUT_MS).unref())]);
    const checks: Record<string, "up" | "down"> = {};
    checks.database = await withTimeout(db.prisma.$queryRawUnsafe("SELECT 1")).then(
      () => "up" as const,
      () => "down" as const,
    );
    if (redis) checks.redis = await withTimeout(redis.ping()).then(() => "up" as const, () => "down" as const);
    return { ok: Object.values(checks).every((state) => state === "up"), checks };
  }

  async function handle(req: IncomingMessage, res: ServerResponse, info: RequestInfo): Promise<void> {
    const { pathname } = new URL(req.url ?? "/", "http://gateway.invalid");
    if (applyCors(req, res, allowedOrigins) === "answered") return;
    if (pathname === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok" }));
      return;
    }
    if (pathname === "/readyz") {
      const { ok, checks } = await readiness();
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify({ status: ok ? "ready" : "unavailable", checks }));
      return;
    }
    if (pathname === "/metrics") {
      const body = await metrics.registry.metrics();
      res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body);
      return;
    }
    if (pathname === "/") {
      res.writeHead(302, { location: "/graphql" }).end();
      return;
    }
    const surface = routeLabel(pathname) === "/v1" ? "rest" : "graphql";

    // Refused on its declared length, before a byte of it is read; the connection is closed rather than drained.
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > config.MAX_BODY_BYTES) {
      res.setHeader("connection", "close");
      res.once("finish", () => req.socket?.destroySoon());
      refuse(req, res, surface, "invalid_request", bodyTooLargeMessage(config.MAX_BODY_BYTES), { maxBytes: config.MAX_BODY_BYTES });
      return;
    }

    const decision = await rateLimiter.consume(rateLimitSubject(req.headers.authorization, req.socket.remoteAddress));
    if (!decision.allowed) {
      const { retryAfterSeconds } = decision;
      refuse(req, res, surface, "rate_limited", rateLimitedMessage(retryAfterSeconds), { retryAfterSeconds }, { "retry-after": String(retryAfterSeconds) });
      return;
    }

    // The REST /v1 surface for the official SDK (src/rest): same services, same rules.
    if (rest(req, res)) return;
    if (req.method === "POST") {
      // Read here, within the limit, and handed to yoga whole: cheaper per request than yoga's
      // own streamed limit (a TransformStream and a pipeline each), and chunked bodies stop at the limit.
      try {
        (req as IncomingMessage & { body?: Buffer }).body = await readBody(req, config.MAX_BODY_BYTES);
      } catch (error) {
        if (!(error instanceof BodyTooLarge)) throw error;
        res.setHeader("connection", "close");
        res.once("finish", () => req.socket?.destroySoon());
        refuse(req, res, surface, "invalid_request", bodyTooLargeMessage(config.MAX_BODY_BYTES), { maxBytes: config.MAX_BODY_BYTES });
        return;
      }
    }
    await yoga.handle(req, res);
  }

  const server = createServer(
    // Slow clients (slowloris): the headers, and the whole request, must arrive within REQUEST_TIMEOUT_MS.
    { requestTimeout: config.REQUEST_TIMEOUT_MS, headersTimeout: config.REQUEST_TIMEOUT_MS, connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS },
    (req: IncomingMessage, res: ServerResponse) => {
      const started = process.hrtime.bigint();
      const info: RequestInfo = { id: requestIdOf(req) };
      requests.set(req, info);
      res.setHeader("x-request-id", info.id);
      res.once("close", () => {
        const route = routeLabel(new URL(req.url ?? "/", "http://gateway.invalid").pathname);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const method = req.method ?? "GET";
        const status = res.headersSent ? res.statusCode : 0;
        metrics.httpRequests.inc({ route, method, status: String(status) });
        const streamed = String(res.getHeader("content-type") ?? "").startsWith("text/event-stream");
        if (!streamed) metrics.httpDuration.observe({ route, method }, seconds);
        if (route === "/healthz" || route === "/readyz" || route === "/metrics") return;
        logger.info(
          {
            requestId: info.id,
            method,
            path: req.url?.split("?")[0],
            status,
            durationMs: Math.round(seconds * 1000),
            operationName: info.operationName,
            apiKeyId: info.apiKeyId,
            accountId: info.accountId,
          },
          "request",
        );
      });
      // A body cut off past the limit is not drained: close the connection once answered.
      res.once("finish", () => {
        if (!req.complete) req.socket?.destroySoon();
      });
      handle(req, res, info).catch((error: unknown) => {
        logger.error({ err: error, requestId: info.id }, "request failed");
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ code: "internal_error", message: "Internal error." }));
        else res.destroy();
      });
    },
  );

  const webSockets = new WebSocketServer({ server, path: "/graphql", maxPayload: config.MAX_BODY_BYTES });
  const refusedSocket = (retryAfterSeconds: number) => `Rate limited: retry after ${retryAfterSeconds} s`;
  useServer(
    {
      onConnect: async (ctx) => {
        const authorization = (ctx.connectionParams as { authorization?: unknown } | undefined)?.authorization;
        const decision = await rateLimiter.consume(rateLimitSubject(typeof authorization === "string" ? authorization : null, ctx.extra.request.socket.remoteAddress));
        if (!decision.allowed) {
          metrics.rejections.inc({ code: "rate_limited" });
          // 4429: graphql-ws's own close code for too many requests.
          ctx.extra.socket.close(4429, refusedSocket(decision.retryAfterSeconds));
          return false;
        }
        metrics.webSocketConnections.inc();
        return true;
      },
      onDisconnect: () => {
        metrics.webSocketConnections.dec();
      },
      execute: (args) => (args.rootValue as { execute: (a: typeof args) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: typeof args) => unknown }).subscribe(args) as never,
      onSubscribe: async (ctx, _id, params) => {
        const refused = (error: GraphQLError) => {
          metrics.rejections.inc({ code: String(error.extensions.code ?? "internal_error") });
          return [error];
        };
        const authorization = (ctx.connectionParams as { authorization?: unknown } | undefined)?.authorization;
        const decision = await rateLimiter.consume(rateLimitSubject(typeof authorization === "string" ? authorization : null, ctx.extra.request.socket.remoteAddress));
        if (!decision.allowed) {
          const { retryAfterSeconds } = decision;
          return refused(new GraphQLError(rateLimitedMessage(retryAfterSeconds), { extensions: { code: "rate_limited", details: { retryAfterSeconds } } }));
        }
        const { schema: enveloped, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
        });
        let document;
        try {
          document = parse(params.query);
        } catch (error) {
          return refused(toClientError(error, logger));
        }
        const errors = validate(enveloped, document);
        if (errors.length > 0) {
          const mapped = errors.map((error: unknown) => toClientError(error, logger));
          mapped.forEach((error: GraphQLError) => metrics.rejections.inc({ code: String(error.extensions.code) }));
          return mapped;
        }
        let contextValue;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          return refused(toClientError(error, logger));
        }
        const actor = (contextValue as { actor?: Actor | null }).actor;
        logger.info(
          { transport: "graphql-ws", operationName: operationNameOf(document, params.operationName), apiKeyId: actor?.apiKeyId, accountId: actor?.accountId },
          "subscribe",
        );
        return {
          schema: enveloped,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue,
          rootValue: { execute, subscribe },
        };
      },
    },
    webSockets,
  );

  return {
    server,
    services,
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
      services.close();
      for (const socket of webSockets.clients) socket.terminate();
      await new Promise<void>((resolve) => webSockets.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis?.disconnect();
    },
  };
}
