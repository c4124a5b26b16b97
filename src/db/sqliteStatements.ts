import type Database from "better-sqlite3";

/**
 * The start of the account's current budget period, picked from the charge's
 * period starts (@day, @week, @month) by the account's budget period.
 */
const CURRENT_PERIOD = `(CASE "budgetPeriod" WHEN 'day' THEN @day WHEN 'week' THEN @week ELSE @month END)`;
/** The account's stored period is the current one (a stored period that has ended counts as nothing spent). */
const SAME_PERIOD = `"periodStart" >= ${CURRENT_PERIOD}`;

/**
 * The charge rule's conditional update of the account: active, within its
 * credit limit and within its budget for the current period, rolling the
 * period over when it has ended. No row means refused (see the snapshot).
 */
const CHARGE_ACCOUNT = `UPDATE "Account"
    SET "totalSpent" = "totalSpent" + @cost,
        "chargeCount" = "chargeCount" + 1,
        "periodSpent" = CASE WHEN "budgetAmount" IS NULL THEN "periodSpent" WHEN ${SAME_PERIOD} THEN "periodSpent" + @cost ELSE @cost END,
        "periodStart" = CASE WHEN "budgetAmount" IS NULL THEN "periodStart" WHEN ${SAME_PERIOD} THEN "periodStart" ELSE ${CURRENT_PERIOD} END,
        "updatedAt" = @now
  WHERE "id" = @accountId AND "teamId" = @teamId AND "status" = 'active'
    AND ("creditLimit" IS NULL OR "totalSpent" + @cost <= "creditLimit")
    AND ("budgetAmount" IS NULL OR (CASE WHEN ${SAME_PERIOD} THEN "periodSpent" ELSE 0 END) + @cost <= "budgetAmount")
RETURNING "totalSpent", "creditLimit", "chargeCount", "kind", "periodSpent", "budgetAmount", "alertThresholds"`;

const DEBIT_TEAM = `UPDATE "Team" SET "balance" = "balance" - @cost, "updatedAt" = @now
  WHERE "id" = @teamId AND "balance" >= @cost
RETURNING "balance", "lowBalanceThreshold", "alertCount"`;

const INSERT_MESSAGE = `INSERT INTO "Message" ("id", "teamId", "accountId", "apiKeyId", "to", "channel", "text", "status", "cost", "segments",
                       "isTestMode", "idempotencyKey", "metadata", "createdAt", "updatedAt")
VALUES (@id, @teamId, @accountId, @apiKeyId, @to, @channel, @text, 'queued', @cost, @segments,
        @isTestMode, @idempotencyKey, @metadata, @now, @now)`;

const INSERT_LEDGER_ENTRY = `INSERT INTO "LedgerEntry" ("id", "teamId", "accountId", "messageId", "kind", "amount", "balanceAfter", "totalSpentAfter",
                           "creditLimit", "budgetAmount", "periodSpentAfter", "sequence", "createdAt")
VALUES (@id, @teamId, @accountId, @messageId, 'charge', @cost, @balanceAfter, @totalSpentAfter,
        @creditLimit, @budgetAmount, @periodSpentAfter, @sequence, @now)`;

const ADD_TO_DAILY_SPEND = `INSERT INTO "SpendDaily" ("teamId", "accountId", "channel", "day", "messages", "segments", "amount")
VALUES (@teamId, @accountId, @channel, @day, 1, @segments, @cost)
ON CONFLICT ("accountId", "channel", "day") DO UPDATE
   SET "messages" = "messages" + 1, "segments" = "segments" + excluded."segments", "amount" = "amount" + excluded."amount"`;

const ADD_TO_TEAM_DAILY_SPEND = `INSERT INTO "TeamSpendDaily" ("teamId", "day", "channel", "messages", "segments", "amount")
VALUES (@teamId, @day, @channel, 1, @segments, @cost)
ON CONFLICT ("teamId", "day", "channel") DO UPDATE
   SET "messages" = "messages" + 1, "segments" = "segments" + excluded."segments", "amount" = "amount" + excluded."amount"`;

const COUNT_ALERTS = `UPDATE "Team" SET "alertCount" = "alertCount" + @count WHERE "id" = @teamId`;

const INSERT_ALERT = `INSERT INTO "SpendAlert" ("id", "teamId", "sequence", "kind", "accountId", "thresholdPercent", "threshold", "value", "messageId", "createdAt")
VALUES (@id, @teamId, @sequence, @kind, @accountId, @thresholdPercent, @threshold, @value, @messageId, @now)`;

const ADVANCE_STATUS = `UPDATE "Message" SET "status" = @status, "updatedAt" = @now,
       "sentAt" = CASE WHEN @status = 'sent' THEN @now ELSE "sentAt" END,
       "deliveredAt" = CASE WHEN @status = 'delivered' THEN @now ELSE "deliveredAt" END
 WHERE "id" = @id AND "isTestMode" = 0
   AND ("status" = 'queued' OR ("status" = 'sent' AND @status IN ('delivered', 'failed')))`;

const FIND_KEY_BY_HASH = `SELECT k."id", k."environment", k."revokedAt", k."expiresAt", k."permissions", k."lastUsedAt",
       a."id" AS "accountId", a."teamId", a."kind", a."status"
  FROM "ApiKey" k JOIN "Account" a ON a."id" = k."accountId"
 WHERE k."keyHash" = ?`;

const ACCOUNT_STATE = `SELECT t."balance", t."currency", a."totalSpent", a."creditLimit", a."status",
       a."budgetAmount", a."budgetPeriod", a."periodStart", a."periodSpent"
  FROM "Account" a JOIN "Team" t ON t."id" = a."teamId" WHERE a."id" = ?`;

/** Every statement of the SQLite hot paths, prepared once per connection. */
export function prepareStatements(db: Database.Database) {
  const bigints = (sql: string) => db.prepare(sql).safeIntegers(true);
  return {
    findByIdempotencyKey: db.prepare(`SELECT "id" FROM "Message" WHERE "accountId" = ? AND "idempotencyKey" = ?`),
    chargeAccount: bigints(CHARGE_ACCOUNT),
    debitTeam: bigints(DEBIT_TEAM),
    insertMessage: db.prepare(INSERT_MESSAGE),
    insertLedgerEntry: db.prepare(INSERT_LEDGER_ENTRY),
    addToDailySpend: db.prepare(ADD_TO_DAILY_SPEND),
    addToTeamDailySpend: db.prepare(ADD_TO_TEAM_DAILY_SPEND),
    countAlerts: db.prepare(COUNT_ALERTS),
    insertAlert: db.prepare(INSERT_ALERT),
    advanceStatus: db.prepare(ADVANCE_STATUS),
    touchApiKey: db.prepare(`UPDATE "ApiKey" SET "lastUsedAt" = @now WHERE "id" = @id AND ("lastUsedAt" IS NULL OR "lastUsedAt" < @before)`),
    findKeyByHash: bigints(FIND_KEY_BY_HASH),
    accountState: bigints(ACCOUNT_STATE),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
