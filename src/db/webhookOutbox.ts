import type Database from "better-sqlite3";
import { newWebhookEventId, webhookBody, type WebhookEventType } from "../domain/webhooks.ts";
import { sqliteTimestamp } from "./sqliteWebhooks.ts";

/**
 * The webhook outbox written by SQL that runs outside Prisma, in its own
 * transactions (README.md, "Webhooks"): the charge path and the delivery
 * reports. Each write adds one row to "WebhookEvent" inside the caller's
 * transaction, so the event commits or rolls back with the change that caused
 * it; fanning it out to endpoints and delivering it happen later, elsewhere
 * (src/db/webhookStore.ts), never inside the caller's transaction.
 *
 * On PostgreSQL, code running inside the database writes the outbox with the
 * SQL function of migration 20261201000000_webhooks:
 *   PERFORM gateway_enqueue_webhook_event(p_team_id, 'spend.alert', <data as jsonb>, p_now);
 */

export interface OutboxEvent {
  teamId: string;
  type: WebhookEventType;
  /** The REST view of the object (never key material): the body's `data`. */
  data: unknown;
  at: Date;
}

/** `timestamp` columns as ISO 8601 in UTC with milliseconds, as Date.toISOString() writes them. */
const sqliteIso = (column: string) => `strftime('%Y-%m-%dT%H:%M:%fZ', ${column})`;
const pgIso = (column: string) => `to_char(${column}, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** A message as its REST view (src/rest/views.ts, messageView), built in SQL from the row `m`. */
function messageJson(build: "json_object" | "json_build_object", iso: (column: string) => string, isTestMode: string, metadata: string): string {
  return `${build}('id', m."id", 'to', m."to", 'channel', m."channel", 'text', m."text", 'status', m."status",
      'direction', 'outbound', 'messageType', 'text', 'cost', m."cost", 'segments', m."segments", 'isTestMode', ${isTestMode},
      'idempotencyKey', m."idempotencyKey", 'metadata', ${metadata}, 'accountId', m."accountId", 'apiKeyId', m."apiKeyId",
      'createdAt', ${iso('m."createdAt"')}, 'updatedAt', ${iso('m."updatedAt"')}, 'sentAt', ${iso('m."sentAt"')}, 'deliveredAt', ${iso('m."deliveredAt"')})`;
}

const SQLITE_INSERT_EVENT = `INSERT INTO "WebhookEvent" ("id", "teamId", "type", "payload", "createdAt") VALUES (@id, @teamId, @type, @payload, @createdAt)`;

/** message.delivered or message.failed, only when an enabled endpoint of the message's team subscribes to it. */
const SQLITE_MESSAGE_EVENT = `INSERT INTO "WebhookEvent" ("id", "teamId", "type", "payload", "createdAt")
  SELECT @id, m."teamId", @type,
         json_object('type', @type, 'timestamp', @timestamp, 'data',
           ${messageJson("json_object", sqliteIso, `json(CASE WHEN m."isTestMode" THEN 'true' ELSE 'false' END)`, `json(m."metadata")`)}),
         @createdAt
    FROM "Message" m
   WHERE m."id" = @messageId AND m."status" = @status
     AND EXISTS (SELECT 1 FROM "WebhookEndpoint" e, json_each(e."events") j
                  WHERE e."teamId" = m."teamId" AND e."enabled" = 1 AND j."value" = @type)`;

/**
 * The outbox on a better-sqlite3 connection that runs its own transactions:
 * statements prepared once on it, each run synchronously inside the caller's
 * transaction.
 */
export function sqliteWebhookOutbox(db: Database.Database) {
  const insertEvent = db.prepare(SQLITE_INSERT_EVENT);
  const insertMessageEvent = db.prepare(SQLITE_MESSAGE_EVENT);
  return {
    /**
     * Writes one event; returns its id. One insert and nothing read: the only
     * webhook cost a charge transaction pays (e.g. for spend.alert).
     */
    enqueue(event: OutboxEvent): string {
      const id = newWebhookEventId();
      insertEvent.run({ id, teamId: event.teamId, type: event.type, payload: webhookBody(event.type, event.at, event.data), createdAt: sqliteTimestamp(event.at) });
      return id;
    },
    /** After a delivery report moved a message to `status`: its message.delivered / message.failed event, for endpoints that ask. */
    messageStatusChanged(messageId: string, status: string, at: Date): void {
      if (status !== "delivered" && status !== "failed") return;
      const type = `message.${status}`;
      insertMessageEvent.run({ id: newWebhookEventId(), type, timestamp: at.toISOString(), createdAt: sqliteTimestamp(at), messageId, status });
    },
  };
}

export type SqliteWebhookOutbox = ReturnType<typeof sqliteWebhookOutbox>;

/**
 * The PostgreSQL statement of a batch of delivery reports, with the
 * message.delivered / message.failed events of the messages it moved, for
 * teams with an enabled endpoint that subscribes to them: one statement, so the
 * events commit with the statuses. `advanceStatuses` is an UPDATE of "Message"
 * AS m without RETURNING.
 */
export function withMessageWebhookEvents(advanceStatuses: string): string {
  return `WITH "advanced" AS (${advanceStatuses}
    RETURNING m.*)
  INSERT INTO "WebhookEvent" ("id", "teamId", "type", "payload", "createdAt")
  SELECT 'evt_' || replace(gen_random_uuid()::text, '-', ''), m."teamId", 'message.' || m."status",
         json_build_object('type', 'message.' || m."status", 'timestamp', ${pgIso('m."updatedAt"')}, 'data',
           ${messageJson("json_build_object", pgIso, 'm."isTestMode"', 'm."metadata"')})::text,
         m."updatedAt"
    FROM "advanced" m
   WHERE m."status" IN ('delivered', 'failed')
     AND EXISTS (SELECT 1 FROM "WebhookEndpoint" e WHERE e."teamId" = m."teamId" AND e."enabled" AND e."events" ? ('message.' || m."status"))`;
}
