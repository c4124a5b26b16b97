import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { DomainError, invalidRequest } from "../domain/errors.ts";
import { parseInput } from "../domain/validation.ts";
import type { ErrorLogger } from "../graphql/errors.ts";
import { parseBearer } from "../services/auth.ts";
import type { Actor } from "../services/deps.ts";
import type { Services } from "../services/index.ts";
import { BodyTooLarge, closeIfBodyUnread, type ErrorBody, parseJsonBody, readBody, sendError, sendJson, toErrorBody, tooLargeError } from "./http.ts";
import { buildOpenApi } from "./openapi.ts";
import { routes, type RouteDef } from "./routes.ts";

export const REST_API_VERSION = "1.0.0";

const openApiRoute: RouteDef = {
  operationId: "getOpenApi",
  method: "GET",
  path: "/v1/openapi.json",
  summary: "This document: OpenAPI 3, derived from the route table.",
  tag: "Meta",
  auth: "none",
  status: 200,
  response: z.object({ openapi: z.string(), info: z.object({}).passthrough(), paths: z.object({}).passthrough() }).passthrough(),
  async handler() {
    return openApiDocument();
  },
};

/** Every REST route, the document's own included. */
export const allRoutes: readonly RouteDef[] = [...routes, openApiRoute];

let cachedDocument: object | undefined;
export function openApiDocument(): object {
  return (cachedDocument ??= buildOpenApi(allRoutes, REST_API_VERSION));
}

interface CompiledRoute {
  route: RouteDef;
  pattern: RegExp;
  names: string[];
}

function compile(route: RouteDef): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .split("/")
    .map((segment) => {
      if (!segment.startsWith(":")) return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      names.push(segment.slice(1));
      return "([^/]+)";
    })
    .join("/");
  return { route, pattern: new RegExp(`^${source}/?$`), names };
}

const compiled = allRoutes.map(compile);

const BODY_METHODS = new Set(["POST", "PATCH", "PUT"]);

function queryObject(search: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(search.keys())) {
    const values = search.getAll(key);
    out[key] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

export interface RestOptions {
  services: Services;
  maxBodyBytes: number;
  /** A route's handler that runs longer is answered with a retryable internal_error. */
  timeoutMs: number;
  logger: ErrorLogger;
  /** Told who made the request (for the request log). */
  onActor?: (req: IncomingMessage, actor: Actor) => void;
  /** Told the code of each error answered (for the metrics). */
  onError?: (code: ErrorBody["code"]) => void;
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new DomainError("internal_error", `The request took longer than ${timeoutMs} ms and was stopped. Retry; a send retried with the same idempotencyKey is never charged twice.`, {
            retryable: true,
          }),
        ),
      timeoutMs,
    );
  });
  return Promise.race([work, timedOut]).finally(() => clearTimeout(timer));
}

/** Serves `/v1/...`: matches a route, reads and checks the request, calls its handler, maps errors. */
export function createRestHandler(options: RestOptions) {
  const { services, maxBodyBytes, logger } = options;

  async function resolveActor(req: IncomingMessage): Promise<Actor | null> {
    const key = parseBearer(req.headers.authorization ?? null);
    const actor = key === null ? null : await services.authenticate(key);
    if (actor) options.onActor?.(req, actor);
    return actor;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = (req.method ?? "GET").toUpperCase();
    const matches = compiled.map((c) => ({ c, m: c.pattern.exec(url.pathname) })).filter((x) => x.m !== null);
    if (matches.length === 0) {
      throw new DomainError("not_found", `${method} ${url.pathname} is not a route of this API. The routes are listed at /v1/openapi.json.`);
    }
    const match = matches.find((x) => x.c.route.method === method);
    if (!match) {
      const allowed = matches.map((x) => x.c.route.method).join(", ");
      res.setHeader("allow", allowed);
      throw new DomainError("not_found", `${url.pathname} does not accept ${method}; use ${allowed}.`);
    }
    const { route, names } = match.c;

    const rawParams: Record<string, string> = {};
    for (const [index, name] of names.entries()) {
      try {
        rawParams[name] = decodeURIComponent(match.m![index + 1]!);
      } catch {
        throw invalidRequest(`The path parameter ${name} is not valid percent-encoding.`, { field: name });
      }
    }

    // The key first: nothing of an unauthenticated request's body is read.
    const actor = route.auth === "none" ? null : await resolveActor(req);

    const params = route.params ? parseInput(route.params, rawParams) : {};
    const query = route.query ? parseInput(route.query, queryObject(url.searchParams)) : {};

    let body: unknown;
    if (route.body && BODY_METHODS.has(method)) {
      let raw: Buffer;
      try {
        raw = await readBody(req, maxBodyBytes);
      } catch (error) {
        if (error instanceof BodyTooLarge) {
          // Stop reading: answer, then close the connection rather than drain the rest.
          res.setHeader("connection", "close");
          res.once("finish", () => req.socket?.destroySoon());
          throw tooLargeError(maxBodyBytes);
        }
        throw error;
      }
      body = parseJsonBody(raw);
      if (body === undefined && route.bodyRequired) {
        throw invalidRequest("This request needs a JSON body. Send a JSON object with Content-Type: application/json.");
      }
    }

    const result = await withTimeout(route.handler({ actor, params, query, body, services }), options.timeoutMs);
    sendJson(res, route.status, result);
  }

  /** True if the request was for the REST surface (and has been answered). */
  return function serve(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? "/", "http://gateway.invalid");
    if (url.pathname !== "/v1" && !url.pathname.startsWith("/v1/")) return false;
    handle(req, res, url).catch((error: unknown) => {
      const body = toErrorBody(error, logger, { method: req.method, path: url.pathname });
      options.onError?.(body.code);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      closeIfBodyUnread(req, res);
      sendError(res, body);
    });
    return true;
  };
}
