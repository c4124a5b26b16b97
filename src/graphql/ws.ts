import type { Server } from "node:http";
import { GraphQLError, getOperationAST, type ExecutionResult } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer, type WebSocket } from "ws";
import { unauthorized } from "../domain/errors.ts";
import type { EdgeError } from "../edge/errors.ts";
import type { Edge } from "../edge/index.ts";
import { toClientError } from "./errors.ts";
import { operationNameOf } from "./plugins/observe.ts";
import { withDirectFrames, type DirectFrames } from "./plugins/sharedSubscriptionResults.ts";
import type { GraphQLServer } from "./surface.ts";
import { documentStore, webSocketDocument } from "./trustedDocuments.ts";

/** graphql-ws's own close code for too many requests. */
const CLOSE_RATE_LIMITED = 4429;

const MISSING_KEY = unauthorized("A graphql-ws connection needs an API key: send connectionParams { authorization: \"Bearer <key>\" }.");

/** An error frame's error, with the same `extensions` as an HTTP response's error: `code` and `details`, no `http`. */
function frameError(error: EdgeError | GraphQLError): GraphQLError {
  const { code, details } =
    error instanceof GraphQLError ? (error.extensions as { code?: string; details?: unknown }) : { code: error.code, details: error.details };
  const at = error instanceof GraphQLError ? error : undefined;
  return new GraphQLError(error.message, { nodes: at?.nodes, source: at?.source, positions: at?.positions, path: at?.path, extensions: { code, ...(details ? { details } : {}) } });
}

/** Results sent over the socket carry the same error shape as HTTP responses (yoga strips `http` there; here we do). */
function withoutHttpExtensions(result: ExecutionResult): ExecutionResult {
  if (!result.errors?.length) return result;
  return { ...result, errors: result.errors.map((error) => frameError(error as GraphQLError)) };
}

/**
 * One subscription's `next` frames written straight to its socket (src/graphql/plugins/sharedSubscriptionResults.ts):
 * the same frame graphql-ws would write, the result serialised once for every subscriber. Only while the
 * socket is open with nothing buffered and graphql-ws still runs the subscription; otherwise graphql-ws
 * writes it, waiting for the socket as it does.
 */
export function directFrames(socket: Pick<WebSocket, "readyState" | "OPEN" | "bufferedAmount" | "send">, id: string, running: () => boolean): DirectFrames {
  const head = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
  return {
    trySend(payloadJson) {
      if (socket.readyState !== socket.OPEN || socket.bufferedAmount > 0 || !running()) return false;
      socket.send(`${head}${payloadJson}}`);
      return true;
    },
  };
}

/**
 * GraphQL over WebSocket (graphql-ws) at /graphql, on the HTTP server: the
 * edge's rate limit for each connection and each operation, the edge's
 * authentication from `connectionParams.authorization` (required: no key and a
 * wrong key both end the operation with an `unauthorized` error frame), the
 * document sent as text or by hash (src/graphql/trustedDocuments.ts), and
 * the same execution as HTTP (yoga's envelop: limits, plugins, context).
 */
export function attachGraphQLWebSocket(server: Server, yoga: GraphQLServer, edge: Edge): WebSocketServer {
  const webSockets = new WebSocketServer({ server, path: "/graphql", maxPayload: edge.config.MAX_BODY_BYTES });
  const authorizationOf = (params: unknown) => (params as { authorization?: unknown } | undefined)?.authorization;
  const refused = (error: unknown) => [frameError(edge.toError(error))];
  const documents = documentStore(edge.config.TRUSTED_DOCUMENTS?.documents);
  /** GraphQL's own refusals (syntax, validation, authentication in the context), counted as HTTP's are. */
  const invalid = (errors: unknown[]) =>
    errors.map((error) => {
      const mapped = toClientError(error, edge.logger);
      edge.metrics.rejections.inc({ code: String(mapped.extensions.code) });
      return frameError(mapped);
    });

  useServer(
    {
      onConnect: async (ctx) => {
        // graphql-ws keeps the upgrade request for the connection's life (ctx.extra), headers and all; only the
        // client's address is read later. A stand-in holding just that saves about 2.5 KiB per open connection.
        const remoteAddress = ctx.extra.request.socket.remoteAddress;
        (ctx.extra as { request: unknown }).request = { socket: { remoteAddress } };
        try {
          await edge.admit(authorizationOf(ctx.connectionParams), remoteAddress);
        } catch (error) {
          const { message } = edge.toError(error);
          ctx.extra.socket.close(CLOSE_RATE_LIMITED, message.slice(0, 120));
          return false;
        }
        edge.metrics.webSocketConnections.inc();
        return true;
      },
      onDisconnect: () => void edge.metrics.webSocketConnections.dec(),
      execute: (args) => (args.rootValue as { execute: (a: typeof args) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: typeof args) => unknown }).subscribe(args) as never,
      onNext: (_ctx, _id, _payload, _args, result) => withoutHttpExtensions(result as ExecutionResult),
      onSubscribe: async (ctx, id, params) => {
        const authorization = authorizationOf(ctx.connectionParams);
        try {
          await edge.admit(authorization, ctx.extra.request.socket.remoteAddress);
          if (authorization === undefined || authorization === null || authorization === "") throw MISSING_KEY;
        } catch (error) {
          return refused(error);
        }
        let query;
        try {
          query = webSocketDocument(documents, params);
        } catch (error) {
          return refused(error);
        }
        // The context keeps only what the context factory and plugins read: it lives as long as a subscription streams.
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({ connectionParams: ctx.connectionParams, params });
        let document;
        try {
          document = parse(query);
        } catch (error) {
          return invalid([error]);
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return invalid(errors);
        let contextValue;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          return invalid([error]);
        }
        const actor = (contextValue as { actor?: { apiKeyId: string; accountId: string } | null }).actor;
        const operationName = operationNameOf(document, params.operationName);
        edge.logger.info({ transport: "graphql-ws", operationName, operation: getOperationAST(document, params.operationName)?.operation, apiKeyId: actor?.apiKeyId, accountId: actor?.accountId }, "subscribe");
        const framesOf = directFrames(ctx.extra.socket, id, () => id in ctx.subscriptions);
        return { schema, operationName: params.operationName, document, variableValues: params.variables, contextValue: withDirectFrames(contextValue as object, framesOf), rootValue: { execute, subscribe } };
      },
    },
    webSockets,
  );
  return webSockets;
}
