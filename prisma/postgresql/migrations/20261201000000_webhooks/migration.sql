-- CreateTable
CREATE TABLE "WebhookEndpoint" (
    "id" TEXT NOT NULL,
    "teamId" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "description" TEXT,
    "events" JSONB NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "secretCiphertext" TEXT NOT NULL,
    "previousSecretCiphertext" TEXT,
    "previousSecretExpiresAt" TIMESTAMP(3),
    "failingSince" TIMESTAMP(3),
    "disabledAt" TIMESTAMP(3),
    "disabledReason" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "WebhookEndpoint_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookEvent" (
    "id" TEXT NOT NULL,
    "teamId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,
    "fannedOutAt" TIMESTAMP(3),

    CONSTRAINT "WebhookEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookDelivery" (
    "id" TEXT NOT NULL,
    "eventId" TEXT NOT NULL,
    "endpointId" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMP(3) NOT NULL,
    "retryUntil" TIMESTAMP(3) NOT NULL,
    "leaseUntil" TIMESTAMP(3),
    "leaseOwner" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "WebhookDelivery_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookAttempt" (
    "id" TEXT NOT NULL,
    "deliveryId" TEXT NOT NULL,
    "endpointId" TEXT NOT NULL,
    "eventId" TEXT NOT NULL,
    "eventType" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "outcome" TEXT NOT NULL,
    "httpStatus" INTEGER,
    "error" TEXT,
    "durationMs" INTEGER NOT NULL,
    "nextRetryAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "WebhookAttempt_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "WebhookEndpoint_teamId_id_idx" ON "WebhookEndpoint"("teamId", "id");

-- CreateIndex
CREATE INDEX "WebhookEvent_createdAt_idx" ON "WebhookEvent"("createdAt");

-- CreateIndex
CREATE INDEX "WebhookDelivery_endpointId_idx" ON "WebhookDelivery"("endpointId");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookDelivery_eventId_endpointId_key" ON "WebhookDelivery"("eventId", "endpointId");

-- CreateIndex
CREATE INDEX "WebhookAttempt_endpointId_createdAt_id_idx" ON "WebhookAttempt"("endpointId", "createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookAttempt_deliveryId_attempt_key" ON "WebhookAttempt"("deliveryId", "attempt");

-- AddForeignKey
ALTER TABLE "WebhookEndpoint" ADD CONSTRAINT "WebhookEndpoint_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_eventId_fkey" FOREIGN KEY ("eventId") REFERENCES "WebhookEvent"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_endpointId_fkey" FOREIGN KEY ("endpointId") REFERENCES "WebhookEndpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookAttempt" ADD CONSTRAINT "WebhookAttempt_deliveryId_fkey" FOREIGN KEY ("deliveryId") REFERENCES "WebhookDelivery"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- What the dispatcher looks for (src/db/webhookStore.ts), kept small however long the history grows:
-- events not yet fanned out to their endpoints, and deliveries still to attempt.
CREATE INDEX "WebhookEvent_unfanned_idx" ON "WebhookEvent"("createdAt") WHERE "fannedOutAt" IS NULL;
CREATE INDEX "WebhookDelivery_pending_idx" ON "WebhookDelivery"("nextAttemptAt") WHERE "status" = 'pending';

-- Invariants the database enforces itself (not expressible in the Prisma schema).
ALTER TABLE "WebhookEndpoint" ADD CONSTRAINT "WebhookEndpoint_disabledReason_valid" CHECK ("disabledReason" IS NULL OR "disabledReason" IN ('failing', 'manual'));
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_status_valid" CHECK ("status" IN ('pending', 'succeeded', 'failed'));
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_attempts_never_negative" CHECK ("attempts" >= 0);
ALTER TABLE "WebhookAttempt" ADD CONSTRAINT "WebhookAttempt_outcome_valid" CHECK ("outcome" IN ('succeeded', 'failed'));

-- The outbox write as one SQL call, for code that runs inside the database: the charge function
-- (prisma/postgresql/functions.sql) raises spend.alert in its own transaction with
--   PERFORM gateway_enqueue_webhook_event(p_team_id, 'spend.alert', <the alert as jsonb>, p_now)
-- One row inserted, nothing read: fan-out to endpoints happens later, outside the charge (src/db/webhookStore.ts).
-- The body is { type, timestamp, data }, as webhookBody in src/domain/webhooks.ts writes it. A single SQL statement
-- without an inner semicolon, because the migration runner splits scripts at semicolons.
CREATE OR REPLACE FUNCTION gateway_enqueue_webhook_event(p_team_id TEXT, p_type TEXT, p_data JSONB, p_now TIMESTAMPTZ)
RETURNS TEXT LANGUAGE sql AS $$
INSERT INTO "WebhookEvent" ("id", "teamId", "type", "payload", "createdAt")
VALUES ('evt_' || replace(gen_random_uuid()::text, '-', ''), p_team_id, p_type,
        '{"type":' || to_json(p_type)::text || ',"timestamp":' || to_json(to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text || ',"data":' || p_data::text || '}',
        p_now AT TIME ZONE 'UTC')
RETURNING "id"
$$;
