import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { DomainError } from "../domain/errors.ts";
import { closeIfBodyUnread } from "./body.ts";
import { applyCors, corsOrigins } from "./cors.ts";
import type { EdgeError } from "./errors.ts";
import type { Edge } from "./index.ts";
import { beginRequest, type EdgeRequest } from "./requestLog.ts";

/**
 * One protocol served over HTTP (GraphQL, REST): the edge has decided who may
 * be served before `handle` runs; `renderError` answers an error in the
 * surface's own shape.
 */
export interface Surface {
  serves(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, request: EdgeRequest): Promise<void>;
  renderError(res: ServerResponse, error: EdgeError): void;
}

/** How often the HTTP server looks for requests past REQUEST_TIMEOUT_MS. */
const CONNECTION_CHECK_INTERVAL_MS = 1000;
/** Probes and metrics are answered before the rate limit: a load balancer must always reach them. */
const UNLIMITED_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res
    .writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": String(Buffer.byteLength(payload)),
      "cache-control": "no-store",
      ...headers,
    })
    .end(payload);
}

/** The edge's own answers: the metrics, the root's redirect, and unknown paths. */
function edgeSurface(edge: Edge): Surface {
  return {
    serves: () => true,
    async handle(req, res, request) {
      const { pathname } = request;
      if (pathname === "/metrics") {
        const body = await edge.metrics.registry.metrics();
        res.writeHead(200, { "content-type": edge.metrics.registry.contentType }).end(body);
      } else if (pathname === "/") {
        res.writeHead(302, { location: "/graphql" }).end();
      } else {
        throw new DomainError("not_found", `Nothing is served at ${pathname}. GraphQL is at /graphql, the REST API under /v1 (listed at /v1/openapi.json).`);
      }
    },
    renderError(res, error) {
      sendJson(res, error.status, { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) }, error.headers);
    },
  };
}

/**
 * The HTTP server of every surface. Each request goes through the same steps,
 * in this order: request id and log line, CORS, body limit (declared length),
 * rate limit, then the surface that serves its path. An error at any step is
 * answered in that surface's shape.
 */
export function createHttpServer(edge: Edge, surfaces: Surface[]): Server {
  const allowedOrigins = corsOrigins(edge.config.CORS_ORIGINS, edge.production);
  const fallback = edgeSurface(edge);

  async function serve(req: IncomingMessage, res: ServerResponse, request: EdgeRequest, surface: Surface): Promise<void> {
    if (applyCors(req, res, allowedOrigins) === "answered") return;
    if (!UNLIMITED_PATHS.has(request.pathname)) {
      edge.refuseDeclaredTooLarge(req, res);
      await edge.admit(req.headers.authorization, req.socket.remoteAddress);
    }
    await surface.handle(req, res, request);
  }

  function refuse(req: IncomingMessage, res: ServerResponse, request: EdgeRequest, surface: Surface, error: unknown): void {
    const answer = edge.toError(error, { requestId: request.id, method: req.method, path: request.pathname });
    if (res.headersSent) return void res.destroy();
    closeIfBodyUnread(req, res);
    surface.renderError(res, answer);
  }

  return createServer(
    // Slow clients (slowloris): the headers, and the whole request, must arrive within REQUEST_TIMEOUT_MS.
    {
      requestTimeout: edge.config.REQUEST_TIMEOUT_MS,
      headersTimeout: edge.config.REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS,
    },
    (req, res) => {
      const request = beginRequest(req, res, edge.logger, edge.metrics);
      // A body cut off past the limit is not drained: close the connection once answered.
      res.once("finish", () => {
        if (!req.complete) req.socket?.destroySoon();
      });
      const surface = surfaces.find((candidate) => candidate.serves(request.pathname)) ?? fallback;
      serve(req, res, request, surface).catch((error: unknown) => refuse(req, res, request, surface, error));
    },
  );
}
