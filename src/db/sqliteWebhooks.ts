import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import {
  LOST_ATTEMPT_ERROR,
  type AttemptRecord,
  type ClaimRequest,
  type ClaimedDelivery,
  type RecordResult,
  type WebhookBacklog,
  type WebhookStore,
} from "./webhookStore.ts";

/** Attempts to take SQLite's write lock before giving up, and the longest pause between them. */
const LOCK_ATTEMPTS_MAX = 2000;
const LOCK_BACKOFF_MAX_MS = 5;

/** DATETIME as Prisma's SQLite adapter writes it (ISO-8601 with an explicit offset): text that compares in time order. */
export function sqliteTimestamp(date: Date): string {
  return date.toISOString().replace("Z", "+00:00");
}

function dateOrNull(value: string | number | null): Date | null {
  return value === null ? null : new Date(value);
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED";
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The events of one fan-out: the oldest not yet fanned out. */
const UNFANNED_BATCH = `SELECT "id" FROM "WebhookEvent" WHERE "fannedOutAt" IS NULL ORDER BY "createdAt" LIMIT @limit`;

const SQL = {
  anyUnfanned: `SELECT 1 FROM "WebhookEvent" WHERE "fannedOutAt" IS NULL LIMIT 1`,
  fanOut: `INSERT INTO "WebhookDelivery" ("id", "eventId", "endpointId", "status", "attempts", "nextAttemptAt", "retryUntil", "createdAt")
    SELECT 'whd_' || lower(hex(randomblob(16))), ev."id", e."id", 'pending', 0, @now, @retryUntil, @now
      FROM "WebhookEvent" ev JOIN "WebhookEndpoint" e ON e."teamId" = ev."teamId" AND e."enabled" = 1 AND e."createdAt" <= ev."createdAt"
     WHERE ev."id" IN (${UNFANNED_BATCH})
       AND EXISTS (SELECT 1 FROM json_each(e."events") j WHERE j."value" = ev."type")
    ON CONFLICT ("eventId", "endpointId") DO NOTHING`,
  markFannedOut: `UPDATE "WebhookEvent" SET "fannedOutAt" = @now WHERE "id" IN (${UNFANNED_BATCH})`,
  due: `SELECT d."id" AS "deliveryId", d."eventId", d."endpointId", d."attempts", d."leaseUntil" AS "priorLease", d."retryUntil",
          ev."type" AS "eventType", ev."payload", e."teamId", e."url", e."secretCiphertext", e."previousSecretCiphertext", e."previousSecretExpiresAt"
     FROM "WebhookDelivery" d
     JOIN "WebhookEndpoint" e ON e."id" = d."endpointId"
     JOIN "WebhookEvent" ev ON ev."id" = d."eventId"
    WHERE d."status" = 'pending' AND d."nextAttemptAt" <= @now AND (d."leaseUntil" IS NULL OR d."leaseUntil" <= @now) AND e."enabled" = 1
    ORDER BY d."nextAttemptAt"
    LIMIT @limit`,
  lease: `UPDATE "WebhookDelivery" SET "attempts" = "attempts" + 1, "leaseUntil" = @leaseUntil, "leaseOwner" = @owner WHERE "id" = @id`,
  insertAttempt: `INSERT INTO "WebhookAttempt" ("id", "deliveryId", "endpointId", "eventId", "eventType", "attempt", "outcome", "httpStatus", "error", "durationMs", "nextRetryAt", "createdAt")
    SELECT @id, @deliveryId, @endpointId, @eventId, @eventType, @attempt, @outcome, @httpStatus, @error, @durationMs, @nextRetryAt, @createdAt
     WHERE EXISTS (SELECT 1 FROM "WebhookDelivery" WHERE "id" = @deliveryId)
    ON CONFLICT ("deliveryId", "attempt") DO NOTHING`,
  settle: `UPDATE "WebhookDelivery" SET "status" = @state, "nextAttemptAt" = COALESCE(@nextAttemptAt, "nextAttemptAt"), "leaseUntil" = NULL, "leaseOwner" = NULL
    WHERE "id" = @deliveryId AND "leaseOwner" = @owner AND "attempts" = @attempt`,
  endpointStreak: `UPDATE "WebhookEndpoint" SET "failingSince" = CASE WHEN @succeeded = 1 THEN NULL ELSE COALESCE("failingSince", @startedAt) END
    WHERE "id" = @endpointId RETURNING "teamId", "enabled", "failingSince"`,
  backlog: `SELECT
      (SELECT COUNT(*) FROM "WebhookDelivery" d JOIN "WebhookEndpoint" e ON e."id" = d."endpointId" WHERE d."status" = 'pending' AND e."enabled" = 1) AS "pending",
      (SELECT MIN(ev."createdAt") FROM "WebhookDelivery" d JOIN "WebhookEndpoint" e ON e."id" = d."endpointId" JOIN "WebhookEvent" ev ON ev."id" = d."eventId"
        WHERE d."status" = 'pending' AND e."enabled" = 1) AS "oldestDelivery",
      (SELECT MIN("createdAt") FROM "WebhookEvent" WHERE "fannedOutAt" IS NULL) AS "oldestUnfanned"`,
};

interface DueRow {
  deliveryId: string;
  eventId: string;
  endpointId: string;
  attempts: number;
  priorLease: string | null;
  retryUntil: string;
  eventType: string;
  payload: string;
  teamId: string;
  url: string;
  secretCiphertext: string;
  previousSecretCiphertext: string | null;
  previousSecretExpiresAt: string | null;
}

/**
 * The webhook store on SQLite (src/db/webhookStore.ts), through better-sqlite3
 * on a connection of its own. Every write is one synchronous `BEGIN IMMEDIATE`
 * transaction, so it never holds the lock across an await; the connection never
 * waits for the lock synchronously (busy timeout 0) and retries asynchronously
 * instead, as the charge store does (src/db/sqliteCharges.ts).
 */
export class SqliteWebhookStore implements WebhookStore {
  readonly #db: Database.Database;
  readonly #statements;

  constructor(file: string) {
    this.#db = new Database(file, { timeout: 0 });
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = NORMAL");
    this.#db.pragma("foreign_keys = ON");
    this.#statements = Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, this.#db.prepare(sql)])) as Record<keyof typeof SQL, Database.Statement>;
  }

  /** Runs `work` in one write transaction, retrying asynchronously while another connection holds the lock. */
  async #write<T>(work: () => T): Promise<T> {
    const transaction = this.#db.transaction(work);
    for (let tries = 1; ; tries += 1) {
      try {
        return transaction.immediate();
      } catch (error) {
        if (!isBusy(error) || tries >= LOCK_ATTEMPTS_MAX) throw error;
        await sleep(Math.min(LOCK_BACKOFF_MAX_MS, tries));
      }
    }
  }

  async fanOut(now: Date, retryUntil: Date, limit: number): Promise<number> {
    // A read first: an idle poll takes no write lock.
    if (!this.#statements.anyUnfanned.get()) return 0;
    const params = { now: sqliteTimestamp(now), retryUntil: sqliteTimestamp(retryUntil), limit };
    return this.#write(() => {
      this.#statements.fanOut.run(params);
      return this.#statements.markFannedOut.run(params).changes;
    });
  }

  async claim(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    const params = { now: sqliteTimestamp(request.now), limit: request.limit };
    if (!this.#statements.due.get(params)) return [];
    return this.#write(() => {
      const rows = this.#statements.due.all(params) as DueRow[];
      return rows.map((row) => this.#leaseInTransaction(row, request));
    });
  }

  #leaseInTransaction(row: DueRow, request: ClaimRequest): ClaimedDelivery {
    const s = this.#statements;
    s.lease.run({ id: row.deliveryId, leaseUntil: sqliteTimestamp(request.leaseUntil), owner: request.owner });
    if (row.priorLease !== null) {
      s.insertAttempt.run({
        id: `wha_${randomUUID().replaceAll("-", "")}`,
        deliveryId: row.deliveryId,
        endpointId: row.endpointId,
        eventId: row.eventId,
        eventType: row.eventType,
        attempt: row.attempts,
        outcome: "failed",
        httpStatus: null,
        error: LOST_ATTEMPT_ERROR,
        durationMs: 0,
        nextRetryAt: sqliteTimestamp(request.now),
        createdAt: row.priorLease,
      });
    }
    return {
      deliveryId: row.deliveryId,
      eventId: row.eventId,
      eventType: row.eventType,
      payload: row.payload,
      endpointId: row.endpointId,
      teamId: row.teamId,
      url: row.url,
      secretCiphertext: row.secretCiphertext,
      previousSecretCiphertext: row.previousSecretCiphertext,
      previousSecretExpiresAt: dateOrNull(row.previousSecretExpiresAt),
      attempt: row.attempts + 1,
      leaseUntil: request.leaseUntil,
      retryUntil: new Date(row.retryUntil),
    };
  }

  async record(attempt: AttemptRecord): Promise<RecordResult> {
    const { delivery } = attempt;
    const nextAttemptAt = attempt.nextAttemptAt ? sqliteTimestamp(attempt.nextAttemptAt) : null;
    return this.#write(() => {
      const s = this.#statements;
      const settled = s.settle.run({ deliveryId: delivery.deliveryId, owner: attempt.owner, attempt: delivery.attempt, state: attempt.state, nextAttemptAt });
      s.insertAttempt.run({
        id: attempt.id,
        deliveryId: delivery.deliveryId,
        endpointId: delivery.endpointId,
        eventId: delivery.eventId,
        eventType: delivery.eventType,
        attempt: delivery.attempt,
        outcome: attempt.outcome,
        httpStatus: attempt.httpStatus,
        error: attempt.error,
        durationMs: attempt.durationMs,
        nextRetryAt: attempt.state === "pending" ? nextAttemptAt : null,
        createdAt: sqliteTimestamp(attempt.startedAt),
      });
      if (!attempt.countsForEndpoint) return { current: settled.changes > 0, endpoint: null };
      const endpoint = s.endpointStreak.get({
        endpointId: delivery.endpointId,
        succeeded: attempt.outcome === "succeeded" ? 1 : 0,
        startedAt: sqliteTimestamp(attempt.startedAt),
      }) as { teamId: string; enabled: number; failingSince: string | null } | undefined;
      return {
        current: settled.changes > 0,
        endpoint: endpoint ? { teamId: endpoint.teamId, enabled: endpoint.enabled === 1, failingSince: dateOrNull(endpoint.failingSince) } : null,
      };
    });
  }

  async backlog(): Promise<WebhookBacklog> {
    const row = this.#statements.backlog.get() as { pending: number; oldestDelivery: string | null; oldestUnfanned: string | null };
    const oldest = [row.oldestDelivery, row.oldestUnfanned].flatMap((value) => (value === null ? [] : [new Date(value).getTime()]));
    return { pendingDeliveries: row.pending, oldestPendingAt: oldest.length > 0 ? new Date(Math.min(...oldest)) : null };
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
