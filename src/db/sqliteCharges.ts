import Database from "better-sqlite3";
import { assert } from "../domain/errors.ts";
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
  type AccountBalanceRecord,
  type CommittedCharge,
  type HotPathStore,
  type KeyRecord,
  type RaisedAlert,
  type ValuesAfter,
} from "./charges.ts";
import { GroupCommit } from "./groupCommit.ts";
import { prepareStatements, type Statements } from "./sqliteStatements.ts";
import { sqliteWebhookOutbox, type SqliteWebhookOutbox } from "./webhookOutbox.ts";
import { StatusReportBatcher, type StatusReport } from "./statusReports.ts";
import { SQLITE_LISTING, dateOrNull, sqliteListingOf, sqliteListingParams, type SubAccountListing, type SubAccountListingQuery } from "./subAccountListing.ts";

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A charge waiting for its batch, with what runs right after its commit. */
interface PendingCharge {
  attempt: ChargeAttempt;
  onCommitted: (charge: CommittedCharge) => void;
}

/** Every batch shares the one writer: one lane. */
const ONE_LANE = "sqlite";

/**
 * The charge rule on SQLite through better-sqlite3 directly, with group
 * commit (src/db/groupCommit.ts): the charges of one event-loop turn go
 * together in one synchronous `BEGIN IMMEDIATE` transaction, each in a
 * savepoint of its own (a refused charge undoes only itself), decided in
 * order against what the one before it left. No other writer can interleave
 * and no read-then-write gap exists. The connection never waits for the lock
 * synchronously (busy timeout 0), which would block the event loop that
 * Prisma's own connection needs to finish its transaction; it retries
 * asynchronously instead.
 */
export class SqliteChargeStore implements HotPathStore {
  readonly #db: Database.Database;
  readonly #statements: Statements;
  /** One charge in a savepoint of the batch's transaction. */
  readonly #chargeOne;
  /** A batch in one BEGIN IMMEDIATE transaction: each charge's result, refusals included. */
  readonly #chargeBatch;
  readonly #advanceStatuses: (reports: StatusReport[]) => void;
  /** Webhook events written in the charge's (or the delivery report's) own transaction. */
  readonly #outbox: SqliteWebhookOutbox;
  /** The sub-account listing (src/db/subAccountListing.ts), prepared on first use. */
  #listing: Database.Statement | undefined;
  /** The reports of one event-loop turn share one transaction. */
  readonly #statusReports = new StatusReportBatcher((reports) => this.#write(() => this.#advanceStatuses(reports)));
  /** The charges of one event-loop turn share one transaction; each charge's onCommitted runs right after it. */
  readonly #batches = new GroupCommit<PendingCharge, ChargeResult>((batch) => this.#commitBatch(batch), setImmediate, ({ onCommitted }, result) => {
    if (result.kind === "stored" && result.charge) onCommitted(result.charge);
  });

  constructor(file: string, onQuery?: (sql: string) => void) {
    this.#db = new Database(file, { timeout: 0, verbose: onQuery ? (sql) => onQuery(String(sql)) : undefined });
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = NORMAL");
    this.#db.pragma("foreign_keys = ON");
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

  /** A batch in one transaction, retried asynchronously while another connection holds the write lock. */
  async #commitBatch(batch: PendingCharge[]): Promise<ChargeResult[]> {
    const attempts = batch.map(({ attempt }) => attempt);
    for (let tries = 1; ; tries += 1) {
      try {
        return this.#chargeBatch.immediate(attempts);
      } catch (error) {
        if (!isBusy(error) || tries >= LOCK_ATTEMPTS_MAX) throw error;
        await sleep(Math.min(LOCK_BACKOFF_MAX_MS, tries));
      }
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
    if (!account) throw new ChargeRejected(accountRefusal(this.#accountState(attempt.accountId), attempt));
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

  /** The ledger entry and the day's spend total, in the charge's transaction. */
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

  #accountState(accountId: string): AccountState | undefined {
    const row = this.#statements.accountState.get(accountId) as (Omit<AccountState, "periodStart"> & { periodStart: string | null }) | undefined;
    return row ? { ...row, periodStart: dateOrNull(row.periodStart) } : undefined;
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
      | { id: string; environment: string; revokedAt: string | null; expiresAt: string | null; permissions: string; lastUsedAt: string | null; accountId: string; teamId: string; kind: string; status: string }
      | undefined;
    if (!row) return null;
    return {
      id: row.id,
      environment: row.environment,
      revokedAt: dateOrNull(row.revokedAt),
      expiresAt: dateOrNull(row.expiresAt),
      permissions: JSON.parse(row.permissions) as unknown,
      lastUsedAt: dateOrNull(row.lastUsedAt),
      account: { id: row.accountId, teamId: row.teamId, kind: row.kind, status: row.status },
    };
  }

  async readAccountBalance(accountId: string): Promise<AccountBalanceRecord | null> {
    return this.#accountState(accountId) ?? null;
  }

  async listSubAccounts(query: SubAccountListingQuery): Promise<SubAccountListing> {
    this.#listing ??= this.#db.prepare(SQLITE_LISTING).safeIntegers(true);
    return sqliteListingOf(this.#listing.all(sqliteListingParams(query)) as Parameters<typeof sqliteListingOf>[0]);
  }

  get chargeBatches() {
    return this.#batches.stats;
  }

  charge(attempt: ChargeAttempt, onCommitted: (charge: CommittedCharge) => void): Promise<ChargeResult> {
    assert(attempt.cost > 0n, "a charge is positive");
    return this.#batches.submit(ONE_LANE, { attempt, onCommitted });
  }

  #snapshot(attempt: ChargeAttempt) {
    const state = this.#accountState(attempt.accountId);
    return state ? snapshotOf(state, attempt.periods) : { totalSpent: 0n, creditLimit: null, balance: 0n, budget: null };
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
