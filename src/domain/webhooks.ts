import { randomUUID } from "node:crypto";

/**
 * Webhooks as pure rules (README.md, "Webhooks"): the event types, the body
 * every delivery sends, and the retry schedule. The services and the database
 * code that write and deliver events share these.
 */

export const WEBHOOK_EVENT_TYPES = [
  "spend.alert",
  "sub_account.created",
  "sub_account.updated",
  "sub_account.suspended",
  "sub_account.reactivated",
  "sub_account.deactivated",
  "sub_account.purged",
  "api_key.created",
  "api_key.revoked",
  "team.topped_up",
  "message.delivered",
  "message.failed",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** One event per message: delivered only to endpoints that list them. */
export const OPT_IN_EVENT_TYPES: readonly WebhookEventType[] = ["message.delivered", "message.failed"];

/** What an endpoint created without `events` receives: every type but the opt-in ones. */
export const DEFAULT_EVENT_TYPES: readonly WebhookEventType[] = WEBHOOK_EVENT_TYPES.filter((type) => !OPT_IN_EVENT_TYPES.includes(type));

/** Retries of a delivery go on for this long after its first attempt; the last one falls at its end. */
export const WEBHOOK_RETRY_WINDOW_MS = 24 * 3_600_000;
/** The longest pause between two attempts, however many failed before. */
export const WEBHOOK_MAX_RETRY_DELAY_MS = 3_600_000;
/** An endpoint whose every attempt failed for this long is disabled. */
export const WEBHOOK_DISABLE_AFTER_MS = 3 * 24 * 3_600_000;
/** After a rotation, the previous secret also signs for this long. */
export const WEBHOOK_ROTATION_OVERLAP_MS = 24 * 3_600_000;

/** Events (with their deliveries and attempts) are kept this long once settled, then pruned. */
export const WEBHOOK_RETENTION_MS = 30 * 24 * 3_600_000;

/** An event's id: the `webhook-id` header of every attempt to deliver it. */
export function newWebhookEventId(): string {
  return `evt_${randomUUID().replaceAll("-", "")}`;
}

/** The body of every delivery of an event (Standard Webhooks): `{ type, timestamp, data }` as JSON text. */
export function webhookBody(type: WebhookEventType, at: Date, data: unknown): string {
  return JSON.stringify({ type, timestamp: at.toISOString(), data });
}

/** When the next attempt of a delivery happens, given the number of the attempt that just failed. */
export interface RetrySchedule {
  delayMs(failedAttempt: number): number;
  /** How long retries go on after the first attempt (WEBHOOK_RETRY_WINDOW_MS). */
  windowMs: number;
}

/**
 * Exponential backoff with jitter: `baseMs` after the first failure, doubling
 * after each (at most WEBHOOK_MAX_RETRY_DELAY_MS), each delay drawn within
 * +-20% so that the retries of many deliveries spread out.
 */
export function exponentialBackoff(
  baseMs: number,
  options: { maxDelayMs?: number; windowMs?: number; random?: () => number } = {},
): RetrySchedule {
  const maxDelayMs = options.maxDelayMs ?? WEBHOOK_MAX_RETRY_DELAY_MS;
  const random = options.random ?? Math.random;
  return {
    windowMs: options.windowMs ?? WEBHOOK_RETRY_WINDOW_MS,
    delayMs(failedAttempt) {
      const doubled = baseMs * 2 ** Math.min(Math.max(failedAttempt - 1, 0), 40);
      return Math.round(Math.min(doubled, maxDelayMs) * (0.8 + 0.4 * random()));
    },
  };
}

/**
 * After a failed attempt at `now`: the time of the next one, or null when the
 * delivery has failed for good (the attempt was at or after `retryUntil`). The
 * last retry is moved to `retryUntil` itself, so retries cover the whole window.
 */
export function nextRetryAt(schedule: RetrySchedule, failedAttempt: number, now: Date, retryUntil: Date): Date | null {
  if (now.getTime() >= retryUntil.getTime()) return null;
  return new Date(Math.min(now.getTime() + schedule.delayMs(failedAttempt), retryUntil.getTime()));
}
