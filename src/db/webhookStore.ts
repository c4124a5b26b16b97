/**
 * The webhook dispatcher's statements (README.md, "Webhooks"), through the
 * driver beside Prisma like the charge path, on a connection (SQLite) or a
 * small pool (PostgreSQL) of their own, so deliveries never wait behind charges
 * nor charges behind deliveries:
 *
 * 1. fan-out: each event of the outbox not yet fanned out gets one delivery
 *    row per enabled endpoint of its team that subscribes to its type (and
 *    existed when it was written), and is marked fanned out, in one transaction;
 * 2. claim: due deliveries of enabled endpoints are leased to one instance
 *    until `leaseUntil`, their attempt number raised: PostgreSQL picks them with
 *    FOR UPDATE SKIP LOCKED, SQLite in its one writer's transaction, so two
 *    instances never claim the same attempt. A delivery whose lease ran out
 *    without a result (its instance died) is claimed again, and that lost
 *    attempt is recorded;
 * 3. record: the attempt's result, the delivery's next state, and the
 *    endpoint's failure streak, fenced by the lease: a result arriving after
 *    another instance took the delivery over changes nothing but its own row.
 */

export interface ClaimedDelivery {
  deliveryId: string;
  eventId: string;
  eventType: string;
  /** The exact body to send (JSON text). */
  payload: string;
  endpointId: string;
  teamId: string;
  url: string;
  secretCiphertext: string;
  previousSecretCiphertext: string | null;
  previousSecretExpiresAt: Date | null;
  /** This attempt's number (1 for the first). */
  attempt: number;
  leaseUntil: Date;
  retryUntil: Date;
}

export interface ClaimRequest {
  owner: string;
  now: Date;
  leaseUntil: Date;
  limit: number;
}

export type DeliveryState = "pending" | "succeeded" | "failed";

export interface AttemptRecord {
  id: string;
  delivery: ClaimedDelivery;
  owner: string;
  outcome: "succeeded" | "failed";
  httpStatus: number | null;
  error: string | null;
  durationMs: number;
  startedAt: Date;
  /** The delivery after this attempt: done, failed for good, or pending until `nextAttemptAt`. */
  state: DeliveryState;
  nextAttemptAt: Date | null;
  /** False for an attempt the gateway itself cut short (shutdown): it says nothing of the endpoint. */
  countsForEndpoint: boolean;
}

export interface EndpointHealth {
  teamId: string;
  enabled: boolean;
  /** Since when every attempt to it has failed; null after a success. */
  failingSince: Date | null;
}

export interface RecordResult {
  /** False when the lease had passed to another instance: only the attempt's own row was written. */
  current: boolean;
  /** The endpoint after this attempt; null if it was deleted meanwhile or the attempt does not count. */
  endpoint: EndpointHealth | null;
}

export interface WebhookBacklog {
  /** Deliveries still to succeed or fail, on enabled endpoints. */
  pendingDeliveries: number;
  /** When the oldest event still waiting (for fan-out or for a delivery) was written. */
  oldestPendingAt: Date | null;
}

/** What a lost attempt (its instance stopped before recording a result) says in the attempt list. */
export const LOST_ATTEMPT_ERROR = "No result recorded: the gateway instance sending this attempt stopped before it finished (its lease ran out).";

export interface WebhookStore {
  /** Fans out up to `limit` events; returns how many. */
  fanOut(now: Date, retryUntil: Date, limit: number): Promise<number>;
  claim(request: ClaimRequest): Promise<ClaimedDelivery[]>;
  record(attempt: AttemptRecord): Promise<RecordResult>;
  backlog(): Promise<WebhookBacklog>;
  close(): Promise<void>;
}
