import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { hostname } from "node:os";
import { newId } from "../../domain/ids.ts";
import { WEBHOOK_DISABLE_AFTER_MS, nextRetryAt, type RetrySchedule } from "../../domain/webhooks.ts";
import type { ClaimedDelivery, DeliveryState, EndpointHealth, WebhookStore } from "../../db/webhookStore.ts";
import type { Clock } from "../clock.ts";
import { sendWebhook, type AttemptKind, type AttemptResult } from "./sender.ts";
import { signedHeaders } from "./signing.ts";
import type { AddressPolicy } from "./urlSafety.ts";

/**
 * The dispatcher every gateway instance runs in the background (README.md,
 * "Webhooks"; the steps are in src/db/webhookStore.ts). A pass fans out new
 * events, then claims as many due deliveries as it has free slots and starts
 * them without waiting. A pass runs every `pollMs`, when this instance has just
 * written an event (OutboxSignal), and when an attempt ends (its slot is free).
 * Requests and charges never wait for it: it shares nothing with them but the
 * database, and on PostgreSQL not even a connection.
 */

export interface DispatcherOptions {
  store: WebhookStore;
  clock: Clock;
  /** The secrets that sign an attempt made at `now`: the endpoint's, and the previous one during a rotation's overlap. */
  secretsFor(delivery: ClaimedDelivery, now: Date): string[];
  policy: AddressPolicy;
  timeoutMs: number;
  leaseMs: number;
  pollMs: number;
  schedule: RetrySchedule;
  /** Attempts in flight at once on this instance. */
  concurrency?: number;
  /** This instance's name on the leases it holds. */
  owner?: string;
  /** An endpoint whose every attempt failed for WEBHOOK_DISABLE_AFTER_MS. */
  onEndpointFailing(endpointId: string, teamId: string, now: Date): Promise<unknown>;
  /** After each recorded attempt: how it went, and where its delivery stands. */
  onAttempt?(kind: AttemptKind, state: DeliveryState): void;
  onError(error: unknown): void;
}

const DEFAULT_CONCURRENCY = 16;
const FAN_OUT_BATCH = 500;

/** The delivery's state after an attempt, and when the next one is due. */
function outcomeOf(result: AttemptResult, delivery: ClaimedDelivery, schedule: RetrySchedule, finishedAt: Date): { state: DeliveryState; nextAttemptAt: Date | null } {
  if (result.kind === "success") return { state: "succeeded", nextAttemptAt: null };
  // Cut short by this gateway, not by the receiver: another instance (or this one after a restart) retries at once.
  if (result.kind === "interrupted") return { state: "pending", nextAttemptAt: finishedAt };
  const next = nextRetryAt(schedule, delivery.attempt, finishedAt, delivery.retryUntil);
  return next ? { state: "pending", nextAttemptAt: next } : { state: "failed", nextAttemptAt: null };
}

/** One per gateway instance: `start` it, and `stop` it before the database closes. */
export class WebhookDispatcher {
  readonly owner: string;
  readonly #options: DispatcherOptions;
  readonly #concurrency: number;
  readonly #inFlight = new Set<Promise<void>>();
  #shutdown = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #passRunning: Promise<void> | null = null;
  #passAgain = false;
  #running = false;

  constructor(options: DispatcherOptions) {
    this.#options = options;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
    this.#concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#shutdown = new AbortController();
    // Every attempt in flight listens for the shutdown.
    setMaxListeners(this.#concurrency + 10, this.#shutdown.signal);
    this.#timer = setInterval(() => this.wake(), this.#options.pollMs);
    this.#timer.unref();
    this.wake();
  }

  /** Stops polling and cuts attempts in flight short (recorded as interrupted, retried at once by whoever claims them next). */
  async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#timer);
    this.#shutdown.abort();
    await this.idle();
  }

  /** Resolves once no pass runs and no attempt is in flight (tests wait for a quiet dispatcher with it). */
  async idle(): Promise<void> {
    while (this.#passRunning || this.#inFlight.size > 0) await Promise.allSettled([this.#passRunning, ...this.#inFlight]);
  }

  /** Runs a pass now, or right after the one running. */
  wake(): void {
    if (!this.#running) return;
    if (this.#passRunning) {
      this.#passAgain = true;
      return;
    }
    this.#passRunning = this.#pass()
      .catch(this.#options.onError)
      .finally(() => (this.#passRunning = null));
  }

  async #pass(): Promise<void> {
    const { store, clock, schedule, leaseMs } = this.#options;
    do {
      this.#passAgain = false;
      const now = clock.now();
      const retryUntil = new Date(now.getTime() + schedule.windowMs);
      while ((await store.fanOut(now, retryUntil, FAN_OUT_BATCH)) === FAN_OUT_BATCH && this.#running);
      const free = this.#concurrency - this.#inFlight.size;
      if (free <= 0 || !this.#running) continue;
      const claimed = await store.claim({ owner: this.owner, now, leaseUntil: new Date(now.getTime() + leaseMs), limit: free });
      for (const delivery of claimed) this.#track(delivery);
    } while (this.#passAgain && this.#running);
  }

  #track(delivery: ClaimedDelivery): void {
    const job = this.#attempt(delivery).catch(this.#options.onError);
    this.#inFlight.add(job);
    void job.finally(() => {
      this.#inFlight.delete(job);
      this.wake();
    });
  }

  /** The attempt's result, signed headers and all; never throws. */
  async #send(delivery: ClaimedDelivery, startedAt: Date): Promise<AttemptResult> {
    const options = this.#options;
    // Claimed too late to finish within the lease (this process stalled): leave it to the next claim.
    if (startedAt.getTime() + options.timeoutMs > delivery.leaseUntil.getTime()) {
      return { kind: "interrupted", httpStatus: null, error: "Not sent: claimed too late to finish within its lease; it is retried at once.", durationMs: 0 };
    }
    let headers: Record<string, string>;
    try {
      headers = signedHeaders(options.secretsFor(delivery, startedAt), delivery.eventId, startedAt, delivery.payload);
    } catch (error) {
      options.onError(error);
      return { kind: "connection_error", httpStatus: null, error: "Not sent: the endpoint's signing secret could not be decrypted (is SECRETS_KEY the key it was stored with?).", durationMs: 0 };
    }
    return sendWebhook({ url: delivery.url, headers, body: delivery.payload, timeoutMs: options.timeoutMs, policy: options.policy, shutdown: this.#shutdown.signal });
  }

  async #attempt(delivery: ClaimedDelivery): Promise<void> {
    const { clock, store } = this.#options;
    const startedAt = clock.now();
    const result = await this.#send(delivery, startedAt);
    const finishedAt = clock.now();
    const { state, nextAttemptAt } = outcomeOf(result, delivery, this.#options.schedule, finishedAt);
    const recorded = await store.record({
      id: `wha_${newId(startedAt.getTime())}`,
      delivery,
      owner: this.owner,
      outcome: result.kind === "success" ? "succeeded" : "failed",
      httpStatus: result.httpStatus,
      error: result.error,
      durationMs: result.durationMs,
      startedAt,
      state,
      nextAttemptAt,
      countsForEndpoint: result.kind !== "interrupted",
    });
    if (recorded.current) this.#options.onAttempt?.(result.kind, state);
    if (result.kind !== "success" && recorded.endpoint) await this.#disableIfFailing(delivery.endpointId, recorded.endpoint, finishedAt);
  }

  async #disableIfFailing(endpointId: string, endpoint: EndpointHealth, now: Date): Promise<void> {
    if (!endpoint.enabled || !endpoint.failingSince) return;
    if (now.getTime() - endpoint.failingSince.getTime() < WEBHOOK_DISABLE_AFTER_MS) return;
    await this.#options.onEndpointFailing(endpointId, endpoint.teamId, now);
  }
}
