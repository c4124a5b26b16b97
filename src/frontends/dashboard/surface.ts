import type { ServerResponse } from "node:http";
import { DomainError } from "../../domain/errors.ts";
import { sendJson, type Surface } from "../../edge/http.ts";
import { gatewayDashboardDocuments } from "../../graphql/dashboardDocuments.ts";
import { dashboardScript, dashboardStylesheet, type Asset } from "./bundle.ts";
import { DASHBOARD_CSP, dashboardHtml } from "./page.ts";

/**
 * The live spend dashboard at /dashboard (README.md, "Live spend dashboard"):
 * a page, its script and its styles, all served from here with a
 * Content-Security-Policy that allows nothing else. The page then talks to
 * the public GraphQL API at /graphql like any client.
 */
const ALLOWED = "GET, HEAD";
const SECURITY_HEADERS = {
  "content-security-policy": DASHBOARD_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
};

const ASSETS: Record<string, () => Promise<Asset>> = {
  "/dashboard/dashboard.js": dashboardScript,
  "/dashboard/dashboard.css": dashboardStylesheet,
};

let page: Asset | undefined;

function pageAsset(): Asset {
  page ??= { body: Buffer.from(dashboardHtml(gatewayDashboardDocuments()), "utf8"), contentType: "text/html; charset=utf-8", etag: "" };
  return page;
}

function send(res: ServerResponse, method: string, asset: Asset, ifNoneMatch: string | undefined): void {
  const headers = { ...SECURITY_HEADERS, "content-type": asset.contentType, "cache-control": "no-cache", ...(asset.etag ? { etag: asset.etag } : {}) };
  if (asset.etag && ifNoneMatch === asset.etag) return void res.writeHead(304, headers).end();
  res.writeHead(200, { ...headers, "content-length": String(asset.body.length) });
  res.end(method === "HEAD" ? undefined : asset.body);
}

export function dashboardSurface(): Surface {
  return {
    serves: (pathname) => pathname === "/dashboard" || pathname.startsWith("/dashboard/"),
    async handle(req, res, request) {
      const { pathname } = request;
      const method = req.method ?? "GET";
      const load = pathname === "/dashboard" || pathname === "/dashboard/" ? async () => pageAsset() : ASSETS[pathname];
      if (!load) throw new DomainError("not_found", `Nothing is served at ${pathname}. The dashboard is at /dashboard.`);
      if (method !== "GET" && method !== "HEAD") {
        throw new DomainError("invalid_request", `${pathname} does not accept ${method}; use GET.`, { allowed: ["GET", "HEAD"] }, { status: 405, headers: { allow: ALLOWED } });
      }
      send(res, method, await load(), req.headers["if-none-match"]);
    },
    renderError(res, error) {
      sendJson(res, error.status, { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) }, error.headers);
    },
  };
}
