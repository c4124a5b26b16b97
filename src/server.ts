import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createYoga, type Plugin, type YogaServerInstance } from "graphql-yoga";
import { GraphQLError } from "graphql";
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
import { toClientError, toValidationError } from "./graphql/errors.ts";
import { schema } from "./graphql/schema/index.ts";
import type { Logger } from "./logger.ts";
import { createRestHandler } from "./rest/index.ts";
import { useSharedSubscriptionResults } from "./graphql/sharedSubscriptionResults.ts";
import { parseBearer, type Authenticated } from "./services/auth.ts";
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
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

function authError(error: DomainError): GraphQLError {
  return new GraphQLError(error.message, { extensions: { code: error.code, http: { status: error.status } } });
}

/** Unknown fields, bad literals, missing arguments: invalid_request (HTTP 400), naming the field. */
const validationErrors: Plugin = {
  onValidate: () => ({ valid, result, setResult }) => {
    if (!valid) setResult(result.map(toValidationError));
  },
};

export function createGateway(options: GatewayOptions): Gateway {
  const { config, db, logger } = options;
  const services = createServices({
    db,
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

  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    logging: false,
    maxRequestBodySize: config.MAX_BODY_BYTES,
    graphiql: { title: "Sub-accounts gateway", defaultQuery: GRAPHIQL_EXAMPLE, headers: JSON.stringify({ Authorization: "Bearer zv_live_..." }, null, 2) },
    maskedErrors: { maskError: (error) => toClientError(error, logger) },
    plugins: [validationErrors, useSharedSubscriptionResults],
    // HTTP and SSE send the key in the Authorization header; graphql-ws in connectionParams.authorization.
    context: async (initial) => {
      const caller = await resolveCaller(
        initial.request?.headers.get("authorization") ??
          ((initial as { connectionParams?: { authorization?: unknown } }).connectionParams?.authorization as string | undefined) ??
          null,
      );
      const loaders = createLoaders(db.prisma);
      // The team was read with the key: fields asking for it this request need no statement of their own.
      if (caller) loaders.teamById.prime(caller.team.id, caller.team);
      return { actor: caller?.actor ?? null, services, prisma: db.prisma, loaders };
    },
  });

  const rest = createRestHandler({ services, maxBodyBytes: config.MAX_BODY_BYTES, logger });

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "/";
    // The REST /v1 surface for the official SDK (src/rest): same services, same rules.
    if (rest(req, res)) return;
    if (url === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok" }));
      return;
    }
    if (url === "/") {
      res.writeHead(302, { location: "/graphql" }).end();
      return;
    }
    void yoga.handle(req, res);
  });

  const webSockets = new WebSocketServer({ server, path: "/graphql", maxPayload: config.MAX_BODY_BYTES });
  useServer(
    {
      execute: (args) => (args.rootValue as { execute: (a: typeof args) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: typeof args) => unknown }).subscribe(args) as never,
      onSubscribe: async (ctx, _id, params) => {
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
          return [toClientError(error, logger)];
        }
        const errors = validate(enveloped, document);
        if (errors.length > 0) return errors.map((error: unknown) => toClientError(error, logger));
        let contextValue;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          return [toClientError(error, logger)];
        }
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
    },
  };
}
