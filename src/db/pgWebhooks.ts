import pg from "pg";
import {
  LOST_ATTEMPT_ERROR,
  type AttemptRecord,
  type ClaimRequest,
  type ClaimedDelivery,
  type RecordResult,
  type WebhookBacklog,
  type WebhookStore,
} from "./webhookStore.ts";

/** Connections of the dispatcher: few, and apart from the charge path's pool. */
const POOL_MAX = 4;
const CONNECT_TIMEOUT_MS = 15_000;
const STATEMENT_TIMEOUT_MS = 10_000;
const FOREIGN_KEY_VIOLATION = "23503";

/** Timestamps are stored as UTC without a zone: written as such, and read back with `AT TIME ZONE 'UTC'`. */
export function pgTimestamp(date: Date): string {
  return date.toISOString().replace("T", " ").replace("Z", "");
}

const SQL = {
  // One statement: the batch is locked (SKIP LOCKED: another instance takes the next events), fanned out and marked.
  fanOut: `WITH batch AS (
      SELECT "id", "teamId", "type", "createdAt" FROM "WebhookEvent"
       WHERE "fannedOutAt" IS NULL ORDER BY "createdAt" LIMIT $3 FOR UPDATE SKIP LOCKED
    ), marked AS (
      UPDATE "WebhookEvent" ev SET "fannedOutAt" = $1::timestamp FROM batch WHERE ev."id" = batch."id" RETURNING ev."id"
    ), inserted AS (
      INSERT INTO "WebhookDelivery" ("id", "eventId", "endpointId", "status", "attempts", "nextAttemptAt", "retryUntil", "createdAt")
      SELECT 'whd_' || replace(gen_random_uuid()::text, '-', ''), b."id", e."id", 'pending', 0, $1::timestamp, $2::timestamp, $1::timestamp
        FROM batch b JOIN "WebhookEndpoint" e ON e."teamId" = b."teamId" AND e."enabled" AND e."createdAt" <= b."createdAt" AND e."events" ? b."type"
      ON CONFLICT ("eventId", "endpointId") DO NOTHING
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM marked)::int AS "events", (SELECT count(*) FROM inserted)::int AS "deliveries"`,
  // Due deliveries of enabled endpoints, locked as they are picked: two instances never lease the same one.
  claim: `WITH due AS (
      SELECT d."id", d."leaseUntil" AS "priorLease"
        FROM "WebhookDelivery" d JOIN "WebhookEndpoint" e ON e."id" = d."endpointId"
       WHERE d."status" = 'pending' AND d."nextAttemptAt" <= $1::timestamp
         AND (d."leaseUntil" IS NULL OR d."leaseUntil" <= $1::timestamp) AND e."enabled"
       ORDER BY d."nextAttemptAt"
       LIMIT $4
       FOR UPDATE OF d SKIP LOCKED
    ), claimed AS (
      UPDATE "WebhookDelivery" d SET "attempts" = d."attempts" + 1, "leaseUntil" = $2::timestamp, "leaseOwner" = $3
        FROM due WHERE d."id" = due."id"
      RETURNING d."id", d."eventId", d."endpointId", d."attempts", d."retryUntil", due."priorLease"
    ), lost AS (
      INSERT INTO "WebhookAttempt" ("id", "deliveryId", "endpointId", "eventId", "eventType", "attempt", "outcome", "httpStatus", "error", "durationMs", "nextRetryAt", "createdAt")
      SELECT 'wha_' || replace(gen_random_uuid()::text, '-', ''), c."id", c."endpointId", c."eventId", ev."type", c."attempts" - 1,
             'failed', NULL, $5::text, 0, $1::timestamp, c."priorLease"
        FROM claimed c JOIN "WebhookEvent" ev ON ev."id" = c."eventId"
       WHERE c."priorLease" IS NOT NULL
      ON CONFLICT ("deliveryId", "attempt") DO NOTHING
    )
    SELECT c."id" AS "deliveryId", c."eventId", c."endpointId", c."attempts" AS "attempt", c."retryUntil" AT TIME ZONE 'UTC' AS "retryUntil",
           ev."type" AS "eventType", ev."payload", e."teamId", e."url", e."secretCiphertext", e."previousSecretCiphertext",
           e."previousSecretExpiresAt" AT TIME ZONE 'UTC' AS "previousSecretExpiresAt"
      FROM claimed c JOIN "WebhookEvent" ev ON ev."id" = c."eventId" JOIN "WebhookEndpoint" e ON e."id" = c."endpointId"`,
  // The result, fenced by the lease; the attempt's row in any case (unless the delivery is gone); the endpoint's streak.
  record: `WITH settled AS (
      UPDATE "WebhookDelivery" SET "status" = $4::text, "nextAttemptAt" = COALESCE($5::timestamp, "nextAttemptAt"), "leaseUntil" = NULL, "leaseOwner" = NULL
       WHERE "id" = $1 AND "leaseOwner" = $2 AND "attempts" = $3::int
      RETURNING "id"
    ), attempt AS (
      INSERT INTO "WebhookAttempt" ("id", "deliveryId", "endpointId", "eventId", "eventType", "attempt", "outcome", "httpStatus", "error", "durationMs", "nextRetryAt", "createdAt")
      SELECT $6::text, $1::text, $7::text, $8::text, $9::text, $3::int, $10::text, $11::int, $12::text, $13::int, $14::timestamp, $15::timestamp
       WHERE EXISTS (SELECT 1 FROM "WebhookDelivery" WHERE "id" = $1)
      ON CONFLICT ("deliveryId", "attempt") DO NOTHING
    ), streak AS (
      UPDATE "WebhookEndpoint" SET "failingSince" = CASE WHEN $16::boolean THEN NULL ELSE COALESCE("failingSince", $15::timestamp) END
       WHERE "id" = $7 AND $17::boolean
      RETURNING "teamId", "enabled", "failingSince" AT TIME ZONE 'UTC' AS "failingSince"
    )
    SELECT (SELECT count(*) FROM settled)::int AS "settled", s."teamId", s."enabled", s."failingSince"
      FROM (SELECT 1) AS one LEFT JOIN streak s ON true`,
  backlog: `SELECT
      (SELECT count(*) FROM "WebhookDelivery" d JOIN "WebhookEndpoint" e ON e."id" = d."endpointId" WHERE d."status" = 'pending' AND e."enabled")::int AS "pending",
      LEAST(
        (SELECT min(ev."createdAt") FROM "WebhookDelivery" d JOIN "WebhookEndpoint" e ON e."id" = d."endpointId" JOIN "WebhookEvent" ev ON ev."id" = d."eventId"
          WHERE d."status" = 'pending' AND e."enabled"),
        (SELECT min("createdAt") FROM "WebhookEvent" WHERE "fannedOutAt" IS NULL)
      ) AT TIME ZONE 'UTC' AS "oldest"`,
};

type ClaimRow = Omit<ClaimedDelivery, "leaseUntil">;

/**
 * The webhook store on PostgreSQL (src/db/webhookStore.ts): each step is one
 * statement, so it is atomic in autocommit and costs one round trip.
 */
export class PgWebhookStore implements WebhookStore {
  readonly #pool: pg.Pool;

  constructor(connectionString: string, onError: (error: unknown) => void) {
    this.#pool = new pg.Pool({ connectionString, max: POOL_MAX, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, statement_timeout: STATEMENT_TIMEOUT_MS });
    this.#pool.on("error", onError);
  }

  async #query<Row>(name: keyof typeof SQL, values: unknown[]): Promise<Row[]> {
    const { rows } = await this.#pool.query({ name: `webhooks_${name}`, text: SQL[name], values });
    return rows as Row[];
  }

  async fanOut(now: Date, retryUntil: Date, limit: number): Promise<number> {
    const [row] = await this.#query<{ events: number }>("fanOut", [pgTimestamp(now), pgTimestamp(retryUntil), limit]);
    return row?.events ?? 0;
  }

  async claim(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    const rows = await this.#query<ClaimRow>("claim", [pgTimestamp(request.now), pgTimestamp(request.leaseUntil), request.owner, request.limit, LOST_ATTEMPT_ERROR]);
    return rows.map((row) => ({ ...row, leaseUntil: request.leaseUntil }));
  }

  async record(attempt: AttemptRecord): Promise<RecordResult> {
    const { delivery } = attempt;
    const next = attempt.nextAttemptAt ? pgTimestamp(attempt.nextAttemptAt) : null;
    try {
      const [row] = await this.#query<{ settled: number; teamId: string | null; enabled: boolean | null; failingSince: Date | null }>("record", [
        delivery.deliveryId, attempt.owner, delivery.attempt, attempt.state, next,
        attempt.id, delivery.endpointId, delivery.eventId, delivery.eventType, attempt.outcome, attempt.httpStatus, attempt.error, attempt.durationMs,
        attempt.state === "pending" ? next : null, pgTimestamp(attempt.startedAt), attempt.outcome === "succeeded", attempt.countsForEndpoint,
      ]);
      const endpoint = row?.teamId ? { teamId: row.teamId, enabled: row.enabled === true, failingSince: row.failingSince } : null;
      return { current: (row?.settled ?? 0) > 0, endpoint };
    } catch (error) {
      // The endpoint (and with it the delivery) was deleted while the attempt was in flight.
      if ((error as { code?: string }).code === FOREIGN_KEY_VIOLATION) return { current: false, endpoint: null };
      throw error;
    }
  }

  async backlog(): Promise<WebhookBacklog> {
    const [row] = await this.#query<{ pending: number; oldest: Date | null }>("backlog", []);
    return { pendingDeliveries: row?.pending ?? 0, oldestPendingAt: row?.oldest ?? null };
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
