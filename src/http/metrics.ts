import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ChargeStore } from "../db/charges.ts";

/**
 * The gateway's Prometheus metrics, on a registry of its own (not prom-client's
 * global one): several gateways can share a process, as the tests do.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({
      name: "gateway_http_requests_total",
      help: "HTTP requests answered, by route, method and status.",
      labelNames: ["route", "method", "status"] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: "gateway_http_request_duration_seconds",
      help: "Time from a request's arrival to the end of its response (SSE streams excluded).",
      labelNames: ["route", "method"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    charges: new Counter({
      name: "gateway_charges_total",
      help: "Committed live charges.",
      registers,
    }),
    chargedCents: new Counter({
      name: "gateway_charged_cents_total",
      help: "Sum of committed live charges, in cents.",
      registers,
    }),
    rejections: new Counter({
      name: "gateway_rejections_total",
      help: "Requests or operations refused or failed, by error code (DESIGN.md section 3).",
      labelNames: ["code"] as const,
      registers,
    }),
    openSubscriptions: new Gauge({
      name: "gateway_open_subscriptions",
      help: "Subscriptions streaming now (graphql-ws and SSE).",
      registers,
    }),
    webSocketConnections: new Gauge({
      name: "gateway_websocket_connections",
      help: "Open graphql-ws connections.",
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Low-cardinality route label. */
export function routeLabel(pathname: string): string {
  if (pathname === "/graphql" || pathname.startsWith("/graphql/")) return "/graphql";
  if (pathname === "/v1" || pathname.startsWith("/v1/")) return "/v1";
  if (["/healthz", "/readyz", "/metrics", "/"].includes(pathname)) return pathname;
  return "other";
}

/** The charge store, counting every committed charge, without touching the charge path itself. */
export function countCharges<Store extends ChargeStore>(store: Store, metrics: Metrics): Store {
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (property !== "charge") {
        // The store keeps private fields: its methods must run on the store itself, not on this proxy.
        return typeof value === "function" ? value.bind(target) : value;
      }
      return (attempt: Parameters<ChargeStore["charge"]>[0], onCommitted: Parameters<ChargeStore["charge"]>[1]) =>
        target.charge(attempt, (charge) => {
          metrics.charges.inc();
          metrics.chargedCents.inc(Number(charge.amount));
          onCommitted(charge);
        });
    },
  });
}
