-- Spend over time (daily totals per account and channel), budgets that renew, and spend alerts.
-- Written by hand with ADD COLUMN: redefining Team or Account would drop the CHECK constraints and the
-- one-main-account index that earlier migrations added.

-- AlterTable
ALTER TABLE "Team" ADD COLUMN "lowBalanceThreshold" BIGINT;
ALTER TABLE "Team" ADD COLUMN "alertCount" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "Account" ADD COLUMN "budgetAmount" BIGINT;
ALTER TABLE "Account" ADD COLUMN "budgetPeriod" TEXT;
ALTER TABLE "Account" ADD COLUMN "periodStart" DATETIME;
ALTER TABLE "Account" ADD COLUMN "periodSpent" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "Account" ADD COLUMN "alertThresholds" JSONB;

-- AlterTable
ALTER TABLE "LedgerEntry" ADD COLUMN "budgetAmount" BIGINT;
ALTER TABLE "LedgerEntry" ADD COLUMN "periodSpentAfter" BIGINT;

-- CreateTable
CREATE TABLE "SpendDaily" (
    "teamId" TEXT NOT NULL,
    "accountId" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "day" TEXT NOT NULL,
    "messages" INTEGER NOT NULL,
    "segments" INTEGER NOT NULL,
    "amount" BIGINT NOT NULL,

    PRIMARY KEY ("accountId", "channel", "day"),
    CONSTRAINT "SpendDaily_amount_positive" CHECK ("amount" > 0 AND "messages" > 0 AND "segments" > 0)
);

-- CreateTable
CREATE TABLE "SpendAlert" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "teamId" TEXT NOT NULL,
    "sequence" INTEGER NOT NULL,
    "kind" TEXT NOT NULL,
    "accountId" TEXT,
    "thresholdPercent" INTEGER,
    "threshold" BIGINT NOT NULL,
    "value" BIGINT NOT NULL,
    "messageId" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL,
    CONSTRAINT "SpendAlert_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "SpendAlert_kind_valid" CHECK ("kind" IN ('credit_limit', 'budget', 'low_balance'))
);

-- CreateIndex
CREATE INDEX "SpendDaily_teamId_day_idx" ON "SpendDaily"("teamId", "day");

-- CreateIndex
CREATE INDEX "SpendAlert_teamId_accountId_sequence_idx" ON "SpendAlert"("teamId", "accountId", "sequence");

-- CreateIndex
CREATE UNIQUE INDEX "SpendAlert_teamId_sequence_key" ON "SpendAlert"("teamId", "sequence");
