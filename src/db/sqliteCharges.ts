import Database from "better-sqlite3";
import { assert } from "../domain/errors.ts";
import {
  ChargeRejected,
  committedCharge,
  DuplicateIdempotencyKey,
  type ChargeAttempt,
  type ChargeResult,
  type ChargeSnapshot,
  type AccountBalanceRecord,
  type CommittedCharge,
  type HotPathStore,
  type KeyRecord,
} from "./charges.ts";
import { StatusReportBatcher, type StatusReport } from "./statusReports.ts";

/** Attempts to take SQLite's write lock before giving up, and the longest pause between them. */
const LOCK_ATTEMPTS_MAX = 2000;
const LOCK_BACKOFF_MAX_MS = 5;

/** Prisma's SQLite adapter stores DateTime as ISO-8601 text with an explicit offset. */
function sqliteTimestamp(date: Date): string {
  return date.toISOString().replace("Z", "+00:00");
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED";
}

/** A DATETIME column as Prisma's adapter writes it (ISO-8601 text; epoch milliseconds if so configured). */
function sqliteDateOrNull(value: string | number | bigint | null): Date | null {
  if (value === null) return null;
  return new Date(typeof value === "bigint" ? Number(value) : value);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The charge rule on SQLite through better-sqlite3 directly: one synchronous
 * `BEGIN IMMEDIATE` transaction of conditional updates, so no other writer can
 * interleave and no read-then-write gap exists. The connection never waits for
 * the lock synchronously (busy timeout 0), which would block the event loop
 * that Prisma's own connection needs to finish its transaction; it retries
 * asynchronously instead.
 */
export class SqliteChargeStore implements HotPathStore {
  readonly #db: Database.Database;
  readonly #statements;
  readonly #transaction;
  readonly #advanceStatuses: (reports: StatusReport[]) => void;
  /** The reports of one event-loop turn share one transaction. */
  readonly #statusReports = new StatusReportBatcher((reports) => this.#write(() => this.#advanceStatuses(reports)));

  constructor(file: string, onQuery?: (sql: string) => void) {
    this.#db = new Database(file, { timeout: 0, verbose: onQuery ? (sql) => onQuery(String(sql)) : undefined });
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = NORMAL");
    this.#db.pragma("foreign_keys = ON");
    const db = this.#db;
    this.#statements = {
      findByIdempotencyKey: db.prepare(`SELECT "id" FROM "Message" WHERE "accountId" = ? AND "idempotencyKey" = ?`),
      chargeAccount: db
        .prepare(
          `UPDATE "Account"
              SET "totalSpent" = "totalSpent" + @cost, "chargeCount" = "chargeCount" + 1, "updatedAt" = @now
            WHERE "id" = @accountId AND "teamId" = @teamId AND "status" = 'active'
              AND ("creditLimit" IS NULL OR "totalSpent" + @cost <= "creditLimit")
        RETURNING "totalSpent", "creditLimit", "chargeCount", "kind"`,
        )
        .safeIntegers(true),
      debitTeam: db
        .prepare(
          `UPDATE "Team" SET "balance" = "balance" - @cost, "updatedAt" = @now
            WHERE "id" = @teamId AND "balance" >= @cost
        RETURNING "balance"`,
        )
        .safeIntegers(true),
      insertMessage: db.prepare(
        `INSERT INTO "Message" ("id", "teamId", "accountId", "apiKeyId", "to", "channel", "text", "status", "cost", "segments",
                                "isTestMode", "idempotencyKey", "metadata", "createdAt", "updatedAt")
         VALUES (@id, @teamId, @accountId, @apiKeyId, @to, @channel, @text, 'queued', @cost, @segments,
                 @isTestMode, @idempotencyKey, @metadata, @now, @now)`,
      ),
      insertLedgerEntry: db.prepare(
        `INSERT INTO "LedgerEntry" ("id", "teamId", "accountId", "messageId", "kind", "amount", "balanceAfter", "totalSpentAfter", "sequence", "createdAt")
         VALUES (@id, @teamId, @accountId, @messageId, 'charge', @cost, @balanceAfter, @totalSpentAfter, @sequence, @now)`,
      ),
      advanceStatus: db.prepare(
        `UPDATE "Message" SET "status" = @status, "updatedAt" = @now,
                "sentAt" = CASE WHEN @status = 'sent' THEN @now ELSE "sentAt" END,
                "deliveredAt" = CASE WHEN @status = 'delivered' THEN @now ELSE "deliveredAt" END
          WHERE "id" = @id AND "isTestMode" = 0
            AND ("status" = 'queued' OR ("status" = 'sent' AND @status IN ('delivered', 'failed')))`,
      ),
      touchApiKey: db.prepare(`UPDATE "ApiKey" SET "lastUsedAt" = @now WHERE "id" = @id AND ("lastUsedAt" IS NULL OR "lastUsedAt" < @before)`),
      findKeyByHash: db
        .prepare(
          `SELECT k."id", k."environment", k."revokedAt", k."lastUsedAt",
                  a."id" AS "accountId", a."teamId", a."kind", a."status",
                  t."name" AS "teamName", t."balance", t."currency", t."createdAt" AS "teamCreatedAt"
             FROM "ApiKey" k JOIN "Account" a ON a."id" = k."accountId" JOIN "Team" t ON t."id" = a."teamId"
            WHERE k."keyHash" = ?`,
        )
        .safeIntegers(true),
      readAccountBalance: db
        .prepare(
          `SELECT t."balance", t."currency", a."totalSpent", a."creditLimit"
             FROM "Account" a JOIN "Team" t ON t."id" = a."teamId" WHERE a."id" = ?`,
        )
        .safeIntegers(true),
      snapshot: db
        .prepare(
          `SELECT a."totalSpent", a."creditLimit", a."status", t."balance"
             FROM "Account" a JOIN "Team" t ON t."id" = a."teamId" WHERE a."id" = ?`,
        )
        .safeIntegers(true),
    };
    this.#transaction = db.transaction((attempt: ChargeAttempt) => this.#chargeInTransaction(attempt));
    this.#advanceStatuses = db.transaction((reports: StatusReport[]) => {
      for (const report of reports) this.#statements.advanceStatus.run({ id: report.messageId, status: report.status, now: sqliteTimestamp(report.at) });
    });
  }

  #chargeInTransaction(attempt: ChargeAttempt): CommittedCharge | null {
    const s = this.#statements;
    const { message } = attempt;
    if (message.idempotencyKey !== null) {
      const existing = s.findByIdempotencyKey.get(attempt.accountId, message.idempotencyKey) as { id: string } | undefined;
      if (existing) throw new DuplicateIdempotencyKey(existing.id);
    }
    const now = sqliteTimestamp(attempt.now);
    const messageRow = {
      ...message,
      teamId: attempt.teamId,
      accountId: attempt.accountId,
      apiKeyId: attempt.apiKeyId,
      cost: attempt.cost,
      isTestMode: attempt.isTestMode ? 1 : 0,
      now,
    };
    if (attempt.isTestMode) {
      s.insertMessage.run(messageRow);
      return null;
    }
    const params = { cost: attempt.cost, accountId: attempt.accountId, teamId: attempt.teamId, now };
    const account = s.chargeAccount.get(params) as
      | { totalSpent: bigint; creditLimit: bigint | null; chargeCount: bigint; kind: "main" | "sub" }
      | undefined;
    if (!account) throw new ChargeRejected(this.#whyAccountRefused(attempt));
    const team = s.debitTeam.get(params) as { balance: bigint } | undefined;
    if (!team) throw new ChargeRejected("insufficient_balance");

    s.insertMessage.run(messageRow);
    const sequence = Number(account.chargeCount);
    s.insertLedgerEntry.run({
      id: attempt.ledgerEntryId,
      teamId: attempt.teamId,
      accountId: attempt.accountId,
      messageId: message.id,
      cost: attempt.cost,
      balanceAfter: team.balance,
      totalSpentAfter: account.totalSpent,
      sequence,
      now,
    });
    return committedCharge(attempt, {
      accountKind: account.kind,
      totalSpent: account.totalSpent,
      creditLimit: account.creditLimit,
      balance: team.balance,
      sequence,
    });
  }

  #whyAccountRefused(attempt: ChargeAttempt): "account_inactive" | "credit_limit_exceeded" {
    const row = this.#statements.snapshot.get(attempt.accountId) as { status: string } | undefined;
    return !row || row.status !== "active" ? "account_inactive" : "credit_limit_exceeded";
  }

  #snapshot(accountId: string): ChargeSnapshot {
    const row = this.#statements.snapshot.get(accountId) as
      | { totalSpent: bigint; creditLimit: bigint | null; balance: bigint }
      | undefined;
    return row ? { totalSpent: row.totalSpent, creditLimit: row.creditLimit, balance: row.balance } : { totalSpent: 0n, creditLimit: null, balance: 0n };
  }

  /** Runs one autocommit statement, retrying asynchronously while another connection holds the write lock. */
  async #write(run: () => void): Promise<void> {
    for (let tries = 1; ; tries += 1) {
      try {
        run();
        return;
      } catch (error) {
        if (!isBusy(error) || tries >= LOCK_ATTEMPTS_MAX) throw error;
        await sleep(Math.min(LOCK_BACKOFF_MAX_MS, tries));
      }
    }
  }

  advanceMessageStatus(messageId: string, status: "sent" | "delivered" | "failed", at: Date): Promise<void> {
    return this.#statusReports.add({ messageId, status, at });
  }

  touchApiKey(apiKeyId: string, at: Date, resolutionMs: number): Promise<void> {
    const before = sqliteTimestamp(new Date(at.getTime() - resolutionMs));
    return this.#write(() => this.#statements.touchApiKey.run({ id: apiKeyId, now: sqliteTimestamp(at), before }));
  }

  async findKeyByHash(keyHash: string): Promise<KeyRecord | null> {
    const row = this.#statements.findKeyByHash.get(keyHash) as
      | { id: string; environment: string; revokedAt: string | null; lastUsedAt: string | null; accountId: string; teamId: string; kind: string; status: string; teamName: string; balance: bigint; currency: string; teamCreatedAt: string }
      | undefined;
    if (!row) return null;
    return {
      id: row.id,
      environment: row.environment,
      revokedAt: sqliteDateOrNull(row.revokedAt),
      lastUsedAt: sqliteDateOrNull(row.lastUsedAt),
      account: { id: row.accountId, teamId: row.teamId, kind: row.kind, status: row.status },
      team: { id: row.teamId, name: row.teamName, balance: row.balance, currency: row.currency, createdAt: sqliteDateOrNull(row.teamCreatedAt)! },
    };
  }

  async readAccountBalance(accountId: string): Promise<AccountBalanceRecord | null> {
    return (this.#statements.readAccountBalance.get(accountId) as AccountBalanceRecord | undefined) ?? null;
  }

  async charge(attempt: ChargeAttempt, onCommitted: (charge: CommittedCharge) => void): Promise<ChargeResult> {
    assert(attempt.cost > 0n, "a charge is positive");
    for (let tries = 1; ; tries += 1) {
      try {
        const charge = this.#transaction.immediate(attempt);
        if (charge) onCommitted(charge);
        return { kind: "stored", messageId: attempt.message.id, charge };
      } catch (error) {
        if (error instanceof DuplicateIdempotencyKey) return { kind: "duplicate", messageId: error.messageId };
        if (error instanceof ChargeRejected) return { kind: "rejected", code: error.code, snapshot: this.#snapshot(attempt.accountId) };
        if (!isBusy(error) || tries >= LOCK_ATTEMPTS_MAX) throw error;
        await sleep(Math.min(LOCK_BACKOFF_MAX_MS, tries));
      }
    }
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
