import type { IncomingMessage, ServerResponse } from "node:http";
import FindMyWay, { type HTTPVersion } from "find-my-way";
import { z } from "zod";
import { DomainError, invalidRequest } from "../domain/errors.ts";
import { parseInput } from "../domain/validation.ts";
import { sendJson, type Surface } from "../edge/http.ts";
import type { Edge, EdgeRequest } from "../edge/index.ts";
import type { Services } from "../services/index.ts";
import { sendRestError } from "./errors.ts";
import { buildOpenApi } from "./openapi.ts";
import { routes, type RouteDef } from "./routes.ts";
import { spendRoutes } from "./spendRoutes.ts";
import { TextResponse } from "./text.ts";
import { webhookRoutes } from "./webhookRoutes.ts";

export const REST_API_VERSION = "1.0.0";

const openApiRoute: RouteDef = {
  operationId: "getOpenApi",
  method: "GET",
  path: "/v1/openapi.json",
  summary: "This document: OpenAPI 3, derived from the route table.",
  tag: "Meta",
  access: "public",
  status: 200,
  response: z.object({ openapi: z.string(), info: z.object({}).passthrough(), paths: z.object({}).passthrough() }).passthrough(),
  async handler() {
    return openApiDocument();
  },
};

/** Every REST route, the document's own included. */
export const allRoutes: readonly RouteDef[] = [...routes, ...spendRoutes, ...webhookRoutes, openApiRoute];

let cachedDocument: object | undefined;
export function openApiDocument(): object {
  return (cachedDocument ??= buildOpenApi(allRoutes, REST_API_VERSION));
}

const METHODS = ["GET", "POST", "PATCH", "DELETE"] as const;
const BODY_METHODS = new Set(["POST", "PATCH", "PUT"]);

function queryObject(search: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(search.keys())) {
    const values = search.getAll(key);
    out[key] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

/** Path parameters longer than this are not matched; the ids they hold are far shorter (and validated). */
const PATH_PARAMETER_MAX_CHARS = 1024;
/** How much of an unknown path an error message repeats. */
const SHOWN_PATH_MAX_CHARS = 200;

function isValidPercentEncoding(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}

/** The route table in find-my-way; a known path with another method is 405 with the methods it takes. */
function createRouter() {
  const router = FindMyWay<HTTPVersion.V1>({ ignoreTrailingSlash: true, maxParamLength: PATH_PARAMETER_MAX_CHARS });
  for (const route of allRoutes) router.on(route.method, route.path, () => {}, { route });
  return (method: string, path: string) => {
    if (!isValidPercentEncoding(path)) throw invalidRequest("The path is not valid percent-encoding.", { field: "path" });
    const found = router.find(method as (typeof METHODS)[number], path);
    if (found) return { route: (found.store as { route: RouteDef }).route, params: found.params as Record<string, string> };
    const allowed = METHODS.filter((other) => router.find(other, path) !== null);
    if (allowed.length === 0) {
      const shown = path.length > SHOWN_PATH_MAX_CHARS ? `${path.slice(0, SHOWN_PATH_MAX_CHARS)}...` : path;
      throw new DomainError("not_found", `${method} ${shown} is not a route of this API. The routes are listed at /v1/openapi.json.`);
    }
    throw new DomainError("invalid_request", `${path} does not accept ${method}; use ${allowed.join(", ")}.`, { allowed }, { status: 405, headers: { allow: allowed.join(", ") } });
  };
}

/** A JSON body, required to be sent as JSON: `undefined` when empty. */
function parseJsonBody(req: IncomingMessage, raw: Buffer): unknown {
  if (raw.length === 0 || raw.toString("utf8").trim() === "") return undefined;
  const contentType = String(req.headers["content-type"] ?? "");
  if (!/^application\/(.+\+)?json\s*(;|$)/i.test(contentType)) {
    throw invalidRequest(`Send the body as JSON with Content-Type: application/json (got ${contentType ? JSON.stringify(contentType.slice(0, 100)) : "none"}).`, { contentType: contentType || null });
  }
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch (error) {
    const detail = error instanceof SyntaxError ? error.message : "unreadable";
    throw invalidRequest(`The request body is not valid JSON (${detail}). Send a JSON object with Content-Type: application/json.`);
  }
}

/** The REST `/v1` surface for the official SDK: each route adapts HTTP to one service call. */
export function restSurface(edge: Edge, services: Services): Surface {
  const match = createRouter();

  async function readRequestBody(req: IncomingMessage, res: ServerResponse, route: RouteDef): Promise<unknown> {
    if (!route.body || !BODY_METHODS.has(route.method)) return undefined;
    const body = parseJsonBody(req, await edge.readBody(req, res));
    if (body === undefined && route.bodyRequired) {
      throw invalidRequest("This request needs a JSON body. Send a JSON object with Content-Type: application/json.");
    }
    return body;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, request: EdgeRequest): Promise<void> {
    const { route, params: rawParams } = match((req.method ?? "GET").toUpperCase(), request.pathname);
    // The key first: nothing of an unauthenticated request's body is read.
    const caller = route.access === "public" ? null : await edge.authenticate(req.headers.authorization, request);
    const params = route.params ? parseInput(route.params, rawParams) : {};
    const query = route.query ? parseInput(route.query, queryObject(request.url.searchParams)) : {};
    const body = await readRequestBody(req, res, route);
    const result = await edge.deadline(route.handler({ actor: caller?.actor ?? null, params, query, body, headers: req.headers, services }));
    if (route.status === 204) res.writeHead(204).end();
    else if (result instanceof TextResponse) res.writeHead(route.status, { "content-type": result.contentType, "cache-control": "no-store" }).end(result.body);
    else sendJson(res, route.status, result);
  }

  return {
    serves: (pathname) => pathname === "/v1" || pathname.startsWith("/v1/"),
    handle,
    renderError: sendRestError,
  };
}
