import type { IncomingMessage } from "node:http";
import { createYoga, useReadinessCheck, type Plugin, type YogaServerInstance } from "graphql-yoga";
import type { Db } from "../db/client.ts";
import { DomainError } from "../domain/errors.ts";
import { sendJson, type Surface } from "../edge/http.ts";
import type { Edge } from "../edge/index.ts";
import type { EdgeRequest } from "../edge/requestLog.ts";
import type { Services } from "../services/index.ts";
import { contextFactory, type GraphQLContext } from "./context.ts";
import { graphQLErrorBody, toClientError, toValidationError } from "./errors.ts";
import { GRAPHIQL_OPTIONS, graphiqlPage, graphiqlPageHeaders } from "./graphiql.ts";
import { compiledQueries } from "./plugins/compiledQueries.ts";
import { codedContentNegotiationErrors } from "./plugins/contentNegotiation.ts";
import { executionTimeout } from "./plugins/executionTimeout.ts";
import { observe } from "./plugins/observe.ts";
import { disableIntrospection, queryLimitsPlugin } from "./plugins/queryLimits.ts";
import { useSharedSubscriptionResults } from "./plugins/sharedSubscriptionResults.ts";
import { schema } from "./schema/index.ts";
import { documentStore, trustedDocumentsPlugin } from "./trustedDocuments.ts";

export type GraphQLServer = YogaServerInstance<Record<string, unknown>, GraphQLContext>;

/** Unknown fields, bad literals, missing arguments: invalid_request (HTTP 400), naming the field. */
const validationErrors: Plugin = {
  onValidate: () => ({ valid, result, setResult }) => {
    if (!valid) setResult(result.map(toValidationError));
  },
};

const GRAPHIQL_OFF = new DomainError(
  "not_found",
  "GraphiQL is off in production (NODE_ENV=production). Send GraphQL requests with POST and Content-Type: application/json; the schema is in schema.graphql.",
);

/** A browser asking for the page at /graphql (not a GraphQL GET, which carries a query). */
function isBrowserPageRequest(req: IncomingMessage, url: URL): boolean {
  return req.method === "GET" && !url.searchParams.has("query") && String(req.headers.accept ?? "").includes("text/html");
}

/**
 * /readyz, by yoga's readiness plugin. Its own test of each request's URL (a URL pattern) runs only for requests
 * whose path the edge already read as /readyz: every GraphQL request skips it.
 */
function readinessProbe(edge: Edge): Plugin {
  const probe = useReadinessCheck({
    endpoint: "/readyz",
    check: async ({ fetchAPI }) => {
      const { ok, checks } = await edge.readiness();
      return new fetchAPI.Response(JSON.stringify({ status: ok ? "ready" : "unavailable", checks }), {
        status: ok ? 200 : 503,
        headers: { "content-type": "application/json", "cache-control": "no-store" },
      });
    },
  });
  return {
    ...probe,
    onRequest: (payload) => {
      const { edgeRequest } = payload.serverContext as { edgeRequest?: EdgeRequest };
      if (edgeRequest?.pathname === "/readyz") return probe.onRequest?.(payload);
    },
  };
}

/** graphql-yoga with the gateway's plugins: limits, timeouts, errors, probes, GraphiQL outside production. */
export function createGraphQLServer(edge: Edge, services: Services, prisma: Db): GraphQLServer {
  const { production, config, logger } = edge;
  return createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: "/graphql",
    healthCheckEndpoint: "/healthz",
    landingPage: false,
    logging: false,
    // The HTTP surface reads POST bodies itself, within MAX_BODY_BYTES (the edge's limit).
    maxRequestBodySize: false,
    // CORS is the edge's (src/edge/cors.ts), for every route.
    cors: false,
    graphiql: production ? false : GRAPHIQL_OPTIONS,
    // The page with every asset inlined (no CDN), rendered once.
    renderGraphiQL: () => graphiqlPage().html,
    extraParamNames: ["documentId"],
    maskedErrors: { maskError: (error) => toClientError(error, logger) },
    plugins: [
      validationErrors,
      queryLimitsPlugin({ production }),
      ...(production ? [disableIntrospection] : []),
      // Before the time limit, which wraps the executor it picks.
      compiledQueries(),
      executionTimeout(edge.deadlines),
      observe(edge.metrics),
      trustedDocumentsPlugin(documentStore(config.TRUSTED_DOCUMENTS?.documents), { production }),
      graphiqlPageHeaders,
      useSharedSubscriptionResults,
      codedContentNegotiationErrors,
      readinessProbe(edge),
    ],
    context: contextFactory(edge, services, prisma) as never,
  });
}

/** GraphQL over HTTP and SSE at /graphql, and the probes (/healthz, /readyz) yoga answers. */
export function graphQLSurface(edge: Edge, yoga: GraphQLServer): Surface {
  return {
    serves: (pathname) => pathname === "/graphql" || pathname === "/healthz" || pathname === "/readyz",
    async handle(req, res, request) {
      if (edge.production && isBrowserPageRequest(req, request.url)) throw GRAPHIQL_OFF;
      // Read here, within the limit, and handed to yoga whole: cheaper per request than yoga's
      // own streamed limit (a TransformStream and a pipeline each), and chunked bodies stop at the limit.
      if (req.method === "POST") (req as IncomingMessage & { body?: Buffer }).body = await edge.readBody(req, res);
      await yoga.handle(req, res, { edgeRequest: request });
    },
    renderError(res, error) {
      sendJson(res, error.status, graphQLErrorBody(error), error.headers);
    },
  };
}
