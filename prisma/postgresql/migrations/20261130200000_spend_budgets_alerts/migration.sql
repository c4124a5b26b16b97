-- Spend over time (daily totals per account and channel), budgets that renew, and spend alerts.

-- AlterTable
ALTER TABLE "Team" ADD COLUMN     "alertCount" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "lowBalanceThreshold" BIGINT;

-- AlterTable
ALTER TABLE "Account" ADD COLUMN     "alertThresholds" JSONB,
ADD COLUMN     "budgetAmount" BIGINT,
ADD COLUMN     "budgetPeriod" TEXT,
ADD COLUMN     "periodSpent" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "periodStart" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "LedgerEntry" ADD COLUMN     "budgetAmount" BIGINT,
ADD COLUMN     "periodSpentAfter" BIGINT;

-- CreateTable
CREATE TABLE "SpendDaily" (
    "teamId" TEXT NOT NULL,
    "accountId" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "day" TEXT NOT NULL,
    "messages" INTEGER NOT NULL,
    "segments" INTEGER NOT NULL,
    "amount" BIGINT NOT NULL,

    CONSTRAINT "SpendDaily_pkey" PRIMARY KEY ("accountId","channel","day")
);

-- CreateTable
CREATE TABLE "SpendAlert" (
    "id" TEXT NOT NULL,
    "teamId" TEXT NOT NULL,
    "sequence" INTEGER NOT NULL,
    "kind" TEXT NOT NULL,
    "accountId" TEXT,
    "thresholdPercent" INTEGER,
    "threshold" BIGINT NOT NULL,
    "value" BIGINT NOT NULL,
    "messageId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "SpendAlert_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "SpendDaily_teamId_day_idx" ON "SpendDaily"("teamId", "day");

-- CreateIndex
CREATE INDEX "SpendAlert_teamId_accountId_sequence_idx" ON "SpendAlert"("teamId", "accountId", "sequence");

-- CreateIndex
CREATE UNIQUE INDEX "SpendAlert_teamId_sequence_key" ON "SpendAlert"("teamId", "sequence");

-- AddForeignKey
ALTER TABLE "SpendAlert" ADD CONSTRAINT "SpendAlert_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Invariants the database enforces itself (not expressible in the Prisma schema).
ALTER TABLE "SpendDaily" ADD CONSTRAINT "SpendDaily_amount_positive" CHECK ("amount" > 0 AND "messages" > 0 AND "segments" > 0);
ALTER TABLE "SpendAlert" ADD CONSTRAINT "SpendAlert_kind_valid" CHECK ("kind" IN ('credit_limit', 'budget', 'low_balance'));
