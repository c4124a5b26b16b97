import type { IncomingMessage, ServerResponse } from "node:http";
import { forbidden } from "../domain/errors.ts";

const ALLOWED_METHODS = "GET, POST, PATCH, DELETE, OPTIONS";
const ALLOWED_HEADERS = "authorization, content-type, accept, x-request-id";
const EXPOSED_HEADERS = "x-request-id, retry-after";
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/** `["*"]` allows any origin; an empty list none (no CORS headers at all). */
export function corsOrigins(configured: string[] | undefined, production: boolean): string[] {
  return configured ?? (production ? [] : ["*"]);
}

export type CorsOutcome = "continue" | "answered";

/**
 * CORS for every route, /graphql and /v1 alike. Keys travel in the
 * Authorization header, never in cookies, so credentials are not allowed.
 * A preflight from an allowed origin is answered 204; from any other it is
 * `forbidden`, answered by the edge in the shape of the surface asked.
 */
export function applyCors(req: IncomingMessage, res: ServerResponse, origins: string[]): CorsOutcome {
  const origin = req.headers.origin;
  const allowAny = origins.includes("*");
  const allowed = origin !== undefined && (allowAny || origins.includes(origin));
  if (allowed) {
    res.setHeader("access-control-allow-origin", allowAny ? "*" : origin);
    res.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
  }
  if (!allowAny) res.setHeader("vary", "Origin");
  const isPreflight = req.method === "OPTIONS" && origin !== undefined && req.headers["access-control-request-method"] !== undefined;
  if (!isPreflight) return "continue";
  if (!allowed) throw forbidden(`Cross-origin requests from ${origin} are not allowed. The operator can allow it with CORS_ORIGINS.`);
  res
    .writeHead(204, {
      "access-control-allow-methods": ALLOWED_METHODS,
      // The SDK adds headers of its own (x-stainless-*): any requested header is fine without credentials.
      "access-control-allow-headers": req.headers["access-control-request-headers"] ?? ALLOWED_HEADERS,
      "access-control-max-age": String(PREFLIGHT_MAX_AGE_SECONDS),
      "content-length": "0",
    })
    .end();
  return "answered";
}
