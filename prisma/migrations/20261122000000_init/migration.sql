-- CreateTable
CREATE TABLE "Team" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "balance" BIGINT NOT NULL DEFAULT 0,
    "currency" TEXT NOT NULL DEFAULT 'USD',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Team_balance_never_negative" CHECK ("balance" >= 0)
);

-- CreateTable
CREATE TABLE "Account" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "teamId" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "externalId" TEXT,
    "status" TEXT NOT NULL DEFAULT 'active',
    "totalSpent" BIGINT NOT NULL DEFAULT 0,
    "creditLimit" BIGINT,
    "chargeCount" INTEGER NOT NULL DEFAULT 0,
    "metadata" JSONB,
    "deactivatedAt" DATETIME,
    "deletionScheduledAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Account_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Account_kind_valid" CHECK ("kind" IN ('main', 'sub')),
    CONSTRAINT "Account_status_valid" CHECK ("status" IN ('active', 'inactive')),
    CONSTRAINT "Account_totalSpent_never_negative" CHECK ("totalSpent" >= 0),
    CONSTRAINT "Account_creditLimit_never_negative" CHECK ("creditLimit" IS NULL OR "creditLimit" >= 0)
);

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "accountId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "environment" TEXT NOT NULL,
    "keyPrefix" TEXT NOT NULL,
    "keyHash" TEXT NOT NULL,
    "permissions" JSONB NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" DATETIME,
    "revokedAt" DATETIME,
    CONSTRAINT "ApiKey_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Message" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "teamId" TEXT NOT NULL,
    "accountId" TEXT NOT NULL,
    "apiKeyId" TEXT,
    "to" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'queued',
    "cost" BIGINT NOT NULL,
    "segments" INTEGER NOT NULL DEFAULT 1,
    "isTestMode" BOOLEAN NOT NULL DEFAULT false,
    "idempotencyKey" TEXT,
    "metadata" JSONB,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    "sentAt" DATETIME,
    "deliveredAt" DATETIME,
    CONSTRAINT "Message_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "LedgerEntry" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "teamId" TEXT NOT NULL,
    "accountId" TEXT,
    "messageId" TEXT,
    "kind" TEXT NOT NULL,
    "amount" BIGINT NOT NULL,
    "balanceAfter" BIGINT NOT NULL,
    "totalSpentAfter" BIGINT,
    "sequence" INTEGER,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "LedgerEntry_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "LedgerEntry_amount_positive" CHECK ("amount" > 0)
);

-- CreateIndex
CREATE INDEX "Account_teamId_kind_id_idx" ON "Account"("teamId", "kind", "id");

-- CreateIndex
CREATE INDEX "Account_teamId_externalId_idx" ON "Account"("teamId", "externalId");

-- CreateIndex
CREATE INDEX "Account_deletionScheduledAt_idx" ON "Account"("deletionScheduledAt");

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_keyHash_key" ON "ApiKey"("keyHash");

-- CreateIndex
CREATE INDEX "ApiKey_accountId_id_idx" ON "ApiKey"("accountId", "id");

-- CreateIndex
CREATE INDEX "Message_accountId_id_idx" ON "Message"("accountId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "Message_accountId_idempotencyKey_key" ON "Message"("accountId", "idempotencyKey");

-- CreateIndex
CREATE INDEX "LedgerEntry_teamId_kind_idx" ON "LedgerEntry"("teamId", "kind");

-- CreateIndex
CREATE INDEX "LedgerEntry_accountId_idx" ON "LedgerEntry"("accountId");


-- One main account per team, enforced by the database (not expressible in the Prisma schema).
CREATE UNIQUE INDEX "Account_one_main_per_team" ON "Account"("teamId") WHERE "kind" = 'main';
