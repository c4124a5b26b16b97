import Database from "better-sqlite3";
import {
  ChargeRejected,
  accountRefusal,
  alertJson,
  alertsRaisedBy,
  committedCharge,
  snapshotOf,
  DuplicateIdempotencyKey,
  type AccountState,
  type ChargeAttempt,
  type ChargeResult,
  type CommittedCharge,
  type RaisedAlert,
  type ValuesAfter,
} from "./charges.ts";
import { prepareStatements, type Statements } from "./sqliteStatements.ts";
import { sqliteTimestamp } from "./sqliteWebhooks.ts";
import { sqliteWebhookOutbox, type SqliteWebhookOutbox } from "./webhookOutbox.ts";
import { dateOrNull } from "./subAccountListing.ts";
import type { StatusReport } from "./statusReports.ts";

/** Opens a connection of the gateway's SQLite database as every hot-path connection is opened. */
export function openSqliteConnection(file: string, onQuery?: (sql: string) => void): Database.Database {
  const db = new Database(file, { timeout: 0, verbose: onQuery ? (sql) => onQuery(String(sql)) : undefined });
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  return db;
}

/** The account's balance view as the charge rule sees it, or undefined for no such account. */
export function readAccountState(statements: Statements, accountId: string): AccountState | undefined {
  const row = statements.accountState.get(accountId) as (Omit<AccountState, "periodStart"> & { periodStart: string | null }) | undefined;
  return row ? { ...row, periodStart: dateOrNull(row.periodStart) } : undefined;
}

/**
 * Every write of the SQLite hot path on one connection, synchronously: the
 * charge rule (a batch in one `BEGIN IMMEDIATE` transaction, each charge in a
 * savepoint of its own, so a refused charge undoes only itself, decided in
 * order against what the one before it left), the delivery reports and the
 * keys' lastUsedAt. No other writer can interleave and no read-then-write gap
 * exists. It never waits for the write lock: a busy database throws
 * SQLITE_BUSY, and the caller retries (src/db/sqliteWriterThread.ts).
 */
export class SqliteChargeWriter {
  readonly #db: Database.Database;
  readonly #statements: Statements;
  readonly #outbox: SqliteWebhookOutbox;
  readonly #chargeOne;
  readonly #chargeBatch;
  readonly #advanceStatuses;

  constructor(file: string, onQuery?: (sql: string) => void) {
    this.#db = openSqliteConnection(file, onQuery);
    this.#statements = prepareStatements(this.#db);
    this.#outbox = sqliteWebhookOutbox(this.#db);
    this.#chargeOne = this.#db.transaction((attempt: ChargeAttempt) => this.#chargeInTransaction(attempt));
    this.#chargeBatch = this.#db.transaction((attempts: ChargeAttempt[]) => attempts.map((attempt) => this.#decide(attempt)));
    this.#advanceStatuses = this.#db.transaction((reports: StatusReport[]) => {
      for (const report of reports) {
        const { changes } = this.#statements.advanceStatus.run({ id: report.messageId, status: report.status, now: sqliteTimestamp(report.at) });
        // Its message.delivered / message.failed webhook event, in the same transaction (src/db/webhookOutbox.ts).
        if (changes > 0) this.#outbox.messageStatusChanged(report.messageId, report.status, report.at);
      }
    });
  }

  /** A batch in one transaction: each charge's result, refusals included, all committed together. */
  chargeBatch(attempts: ChargeAttempt[]): ChargeResult[] {
    return this.#chargeBatch.immediate(attempts);
  }

  /** The delivery reports of a batch, in one transaction. */
  advanceStatuses(reports: StatusReport[]): void {
    this.#advanceStatuses.immediate(reports);
  }

  /** The key's lastUsedAt set to `at`, written only when the stored one is older than `before` (or unset). */
  touchApiKey(apiKeyId: string, at: Date, before: Date): void {
    this.#statements.touchApiKey.run({ id: apiKeyId, now: sqliteTimestamp(at), before: sqliteTimestamp(before) });
  }

  close(): void {
    this.#db.close();
  }

  /** One charge of a batch, in its own savepoint: stored, a duplicate, or refused with the account as it stands now. */
  #decide(attempt: ChargeAttempt): ChargeResult {
    try {
      const charge = this.#chargeOne(attempt);
      return { kind: "stored", messageId: attempt.message.id, charge };
    } catch (error) {
      if (error instanceof DuplicateIdempotencyKey) return { kind: "duplicate", messageId: error.messageId };
      if (error instanceof ChargeRejected) return { kind: "rejected", code: error.code, snapshot: this.#snapshot(attempt) };
      throw error;
    }
  }

  /** The charge rule for one charge, in its savepoint of the batch's transaction: refusals throw, and nothing of it is written. */
  #chargeInTransaction(attempt: ChargeAttempt): CommittedCharge | null {
    const s = this.#statements;
    const { message } = attempt;
    if (message.idempotencyKey !== null) {
      const existing = s.findByIdempotencyKey.get(attempt.accountId, message.idempotencyKey) as { id: string } | undefined;
      if (existing) throw new DuplicateIdempotencyKey(existing.id);
    }
    const now = sqliteTimestamp(attempt.now);
    const messageRow = { ...message, teamId: attempt.teamId, accountId: attempt.accountId, apiKeyId: attempt.apiKeyId, cost: attempt.cost, isTestMode: attempt.isTestMode ? 1 : 0, now };
    if (attempt.isTestMode) {
      s.insertMessage.run(messageRow);
      return null;
    }
    const after = this.#chargeAccountAndTeam(attempt, now);
    s.insertMessage.run(messageRow);
    this.#record(attempt, after, now);
    const alerts = alertsRaisedBy(attempt, after, after.alertCountBefore);
    this.#recordAlerts(attempt, alerts, after.accountKind, now);
    return committedCharge(attempt, after, alerts);
  }

  /** The account's and the team's conditional updates; throws ChargeRejected when either refuses. */
  #chargeAccountAndTeam(attempt: ChargeAttempt, now: string) {
    const { periods } = attempt;
    const params = {
      cost: attempt.cost,
      accountId: attempt.accountId,
      teamId: attempt.teamId,
      now,
      day: sqliteTimestamp(periods.day),
      week: sqliteTimestamp(periods.week),
      month: sqliteTimestamp(periods.month),
    };
    const account = this.#statements.chargeAccount.get(params) as
      | { totalSpent: bigint; creditLimit: bigint | null; chargeCount: bigint; kind: "main" | "sub"; periodSpent: bigint; budgetAmount: bigint | null; alertThresholds: string | null }
      | undefined;
    if (!account) throw new ChargeRejected(accountRefusal(readAccountState(this.#statements, attempt.accountId), attempt));
    const team = this.#statements.debitTeam.get(params) as { balance: bigint; lowBalanceThreshold: bigint | null; alertCount: bigint } | undefined;
    if (!team) throw new ChargeRejected("insufficient_balance");
    return {
      accountKind: account.kind,
      totalSpent: account.totalSpent,
      creditLimit: account.creditLimit,
      balance: team.balance,
      sequence: Number(account.chargeCount),
      periodSpent: account.budgetAmount === null ? null : account.periodSpent,
      budgetAmount: account.budgetAmount,
      thresholds: account.alertThresholds === null ? null : (JSON.parse(account.alertThresholds) as number[]),
      lowBalanceThreshold: team.lowBalanceThreshold,
      alertCountBefore: Number(team.alertCount),
    } satisfies ValuesAfter & Record<string, unknown>;
  }

  /** The ledger entry and the day's spend totals, in the charge's transaction. */
  #record(attempt: ChargeAttempt, after: ValuesAfter, now: string): void {
    this.#statements.insertLedgerEntry.run({
      id: attempt.ledgerEntryId,
      teamId: attempt.teamId,
      accountId: attempt.accountId,
      messageId: attempt.message.id,
      cost: attempt.cost,
      balanceAfter: after.balance,
      totalSpentAfter: after.totalSpent,
      creditLimit: after.creditLimit,
      budgetAmount: after.budgetAmount,
      periodSpentAfter: after.periodSpent,
      sequence: after.sequence,
      now,
    });
    const spend = { teamId: attempt.teamId, channel: attempt.message.channel, day: attempt.day, segments: attempt.message.segments, cost: attempt.cost };
    this.#statements.addToDailySpend.run({ ...spend, accountId: attempt.accountId });
    this.#statements.addToTeamDailySpend.run(spend);
  }

  /**
   * The alerts, the team's alert count, and each alert's spend.alert webhook
   * event (the outbox's one insert), in the charge's transaction.
   */
  #recordAlerts(attempt: ChargeAttempt, alerts: RaisedAlert[], accountKind: "main" | "sub", now: string): void {
    if (alerts.length === 0) return;
    const charge = { accountId: attempt.accountId, accountKind, messageId: attempt.message.id, chargedAt: attempt.now };
    this.#statements.countAlerts.run({ teamId: attempt.teamId, count: alerts.length });
    for (const alert of alerts) {
      this.#statements.insertAlert.run({ ...alert, teamId: attempt.teamId, accountId: accountKind === "sub" ? attempt.accountId : null, messageId: attempt.message.id, now });
      this.#outbox.enqueue({ teamId: attempt.teamId, type: "spend.alert", data: alertJson(charge, alert), at: attempt.now });
    }
  }

  #snapshot(attempt: ChargeAttempt) {
    const state = readAccountState(this.#statements, attempt.accountId);
    return state ? snapshotOf(state, attempt.periods) : { totalSpent: 0n, creditLimit: null, balance: 0n, budget: null };
  }
}
