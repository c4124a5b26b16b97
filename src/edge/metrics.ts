import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** What the charge store reports of its group commit (src/db/groupCommit.ts). */
type GroupCommitStats = { batches: number; items: number; failedBatches: number };

/**
 * The gateway's Prometheus metrics, on a registry of its own (not prom-client's
 * global one): several gateways can share a process, as the tests do.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let openSubscriptions = () => 0;
  let chargeBatches: () => GroupCommitStats = () => ({ batches: 0, items: 0, failedBatches: 0 });
  const webhookBacklog = webhookBacklogGauges(registers);
  return {
    /** Where the open-subscriptions gauge reads its value: the services' own count of registered subscriptions. */
    countOpenSubscriptions(source: () => number) {
      openSubscriptions = source;
    },
    /** Where the charge-batch counters read: the charge store's group commit. */
    countChargeBatches(source: () => GroupCommitStats) {
      chargeBatches = source;
    },
    registry,
    ...requestMetrics(registers),
    ...chargeMetrics(registers, () => chargeBatches()),
    ...liveMetrics(registers, () => openSubscriptions()),
    ...webhookMetrics(registers),
    /** Where the webhook backlog gauges read from, once the services exist. */
    observeWebhookBacklog: webhookBacklog.observe,
  };
}

function requestMetrics(registers: Registry[]) {
  return {
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
    rejections: new Counter({
      name: "gateway_rejections_total",
      help: "Requests or operations refused or failed, by error code (README.md, Errors).",
      labelNames: ["code"] as const,
      registers,
    }),
    redisTimeouts: new Counter({
      name: "gateway_redis_timeouts_total",
      help: "Redis calls that took longer than REDIS_TIMEOUT_MS and were given up, by operation.",
      labelNames: ["operation"] as const,
      registers,
    }),
  };
}

/** A counter whose value is read from a running total when scraped (the charge store counts its own batches). */
function totalCounter(name: string, help: string, registers: Registry[], read: () => number) {
  return new Counter({
    name,
    help,
    registers,
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

function chargeMetrics(registers: Registry[], batches: () => GroupCommitStats) {
  return {
    chargeBatches: totalCounter("gateway_charge_batches_total", "Charge batches committed (group commit: one transaction each).", registers, () => batches().batches),
    chargeBatchItems: totalCounter("gateway_charge_batch_items_total", "Charges decided in committed batches (divided by the batches: the mean batch size).", registers, () => batches().items),
    chargeBatchFailures: totalCounter(
      "gateway_charge_failed_batches_total",
      "Charge batches that failed as a whole, their charges then committed one by one.",
      registers,
      () => batches().failedBatches,
    ),
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
  };
}

function liveMetrics(registers: Registry[], openSubscriptions: () => number) {
  return {
    spendEventsRecovered: new Counter({
      name: "gateway_spend_events_recovered_total",
      help: "Charges delivered to live subscribers from the ledger because their event was missing (lost on the bus, or a resume).",
      registers,
    }),
    openSubscriptions: new Gauge({
      name: "gateway_open_subscriptions",
      help: "Subscriptions streaming now (graphql-ws and SSE), counted once registered: the next charge reaches them.",
      registers,
      collect() {
        this.set(openSubscriptions());
      },
    }),
    webSocketConnections: new Gauge({
      name: "gateway_websocket_connections",
      help: "Open graphql-ws connections.",
      registers,
    }),
  };
}

function webhookMetrics(registers: Registry[]) {
  return {
    webhookAttempts: new Counter({
      name: "gateway_webhook_attempts_total",
      help: "Webhook delivery attempts made by this instance, by outcome: success, http_error, timeout, connection_error, refused_address, interrupted.",
      labelNames: ["outcome"] as const,
      registers,
    }),
    webhookDeliveries: new Counter({
      name: "gateway_webhook_deliveries_total",
      help: "Webhook deliveries settled by this instance, by outcome: succeeded, or failed (every retry failed for the retry window).",
      labelNames: ["outcome"] as const,
      registers,
    }),
  };
}

/** What the webhook backlog gauges show (src/services/webhooks: the store's backlog). */
export type WebhookBacklogSource = () => Promise<{ pendingDeliveries: number; oldestPendingAt: Date | null }>;

/** The backlog of webhook deliveries, read from the database when scraped (one query per scrape for both gauges). */
function webhookBacklogGauges(registers: Registry[]) {
  let source: WebhookBacklogSource | null = null;
  let reading: { at: number; value: ReturnType<WebhookBacklogSource> } | null = null;
  const read = () => {
    if (!source) return null;
    if (!reading || Date.now() - reading.at > 1000) reading = { at: Date.now(), value: source() };
    return reading.value;
  };
  new Gauge({
    name: "gateway_webhook_pending_deliveries",
    help: "Webhook deliveries not yet succeeded or failed, on enabled endpoints (every instance's, read from the database).",
    registers,
    async collect() {
      const backlog = await read();
      if (backlog) this.set(backlog.pendingDeliveries);
    },
  });
  new Gauge({
    name: "gateway_webhook_oldest_pending_event_age_seconds",
    help: "Age of the oldest webhook event still waiting to be fanned out or delivered (0 when none).",
    registers,
    async collect() {
      const backlog = await read();
      if (backlog) this.set(backlog.oldestPendingAt ? Math.max(0, (Date.now() - backlog.oldestPendingAt.getTime()) / 1000) : 0);
    },
  });
  return { observe: (backlogSource: WebhookBacklogSource) => void (source = backlogSource) };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Low-cardinality route label. */
export function routeLabel(pathname: string): string {
  if (pathname === "/graphql" || pathname.startsWith("/graphql/")) return "/graphql";
  if (pathname === "/v1" || pathname.startsWith("/v1/")) return "/v1";
  if (["/healthz", "/readyz", "/metrics", "/"].includes(pathname)) return pathname;
  return "other";
}
