import DataLoader from "dataloader";
import pg from "pg";
import { assert } from "../domain/errors.ts";
import type { AlertKind } from "../domain/alerts.ts";
import {
  accountRefusal,
  committedCharge,
  snapshotOf,
  type AccountBalanceRecord,
  type AccountState,
  type ChargeAttempt,
  type ChargeResult,
  type CommittedCharge,
  type HotPathStore,
  type KeyRecord,
  type RaisedAlert,
  type RejectionCode,
} from "./charges.ts";
import { GroupCommit } from "./groupCommit.ts";
import { StatusReportBatcher, type StatusReport } from "./statusReports.ts";
import { withMessageWebhookEvents } from "./webhookOutbox.ts";
import { PG_LISTING, pgListingOf, pgListingParams, type SubAccountListing, type SubAccountListingQuery } from "./subAccountListing.ts";

/** Connections this instance keeps for the charge path. */
const POOL_MAX = 10;
/** Includes waiting for a free connection under load. */
const CONNECT_TIMEOUT_MS = 15_000;
/** A charge transaction holds two row locks; it must never wait long for them. */
const STATEMENT_TIMEOUT_MS = 10_000;

const UNIQUE_VIOLATION = "23505";
/** The most accounts one read of account states carries. */
const ACCOUNT_READ_MAX = 256;

const SQL = {
  findByIdempotencyKey: `SELECT "id" FROM "Message" WHERE "accountId" = $1 AND "idempotencyKey" = $2`,
  // The charge rule for a batch of one team's charges, in one round trip: gateway_charge_batch in prisma/postgresql/functions.sql.
  chargeBatch: `SELECT "o_ord" AS "ord", "o_outcome" AS "outcome", "o_message_id" AS "message_id", "o_total_spent"::text AS "total_spent",
          "o_credit_limit"::text AS "credit_limit", "o_charge_count" AS "charge_count", "o_account_kind" AS "account_kind",
          "o_balance_after"::text AS "balance_after", "o_period_spent"::text AS "period_spent", "o_budget_amount"::text AS "budget_amount",
          "o_alerts" AS "alerts"
     FROM "gateway_charge_batch"($1, $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::integer[],
                                 $10::boolean[], $11::text[], $12::jsonb[], $13::timestamptz[], $14::text[], $15::timestamptz[],
                                 $16::timestamptz[], $17::timestamptz[], $18::text[])`,
  // A batch of delivery reports, each message at most once: status only ever moves forward. The same statement writes the
  // message.delivered / message.failed webhook events of the messages it moved (src/db/webhookOutbox.ts).
  advanceStatuses: withMessageWebhookEvents(`UPDATE "Message" AS m SET "status" = r.status, "updatedAt" = r.at AT TIME ZONE 'UTC',
          "sentAt" = CASE WHEN r.status = 'sent' THEN r.at AT TIME ZONE 'UTC' ELSE m."sentAt" END,
          "deliveredAt" = CASE WHEN r.status = 'delivered' THEN r.at AT TIME ZONE 'UTC' ELSE m."deliveredAt" END
     FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS r(id, status, at)
    WHERE m."id" = r.id AND NOT m."isTestMode"
      AND (m."status" = 'queued' OR (m."status" = 'sent' AND r.status IN ('delivered', 'failed')))`),
  // Timestamps are stored as UTC without a zone: give them one, so the driver does not read them as local time.
  findKeyByHash: `SELECT k."id", k."environment", k."revokedAt" AT TIME ZONE 'UTC' AS "revokedAt", k."expiresAt" AT TIME ZONE 'UTC' AS "expiresAt",
          k."permissions", k."lastUsedAt" AT TIME ZONE 'UTC' AS "lastUsedAt",
          a."id" AS "accountId", a."teamId", a."kind", a."status"
     FROM "ApiKey" k JOIN "Account" a ON a."id" = k."accountId"
    WHERE k."keyHash" = $1`,
  accountStates: `SELECT a."id", t."balance"::text, t."currency", a."totalSpent"::text, a."creditLimit"::text, a."status",
          a."budgetAmount"::text, a."budgetPeriod", a."periodStart" AT TIME ZONE 'UTC' AS "periodStart", a."periodSpent"::text
     FROM "Account" a JOIN "Team" t ON t."id" = a."teamId" WHERE a."id" = ANY($1::text[])`,
  listSubAccounts: PG_LISTING,
  touchApiKey: `UPDATE "ApiKey" SET "lastUsedAt" = $2::timestamptz AT TIME ZONE 'UTC'
    WHERE "id" = $1 AND ("lastUsedAt" IS NULL OR "lastUsedAt" < ($3::timestamptz AT TIME ZONE 'UTC'))`,
};

interface ChargeRow {
  ord: number;
  outcome: "stored" | "duplicate" | "refused" | "insufficient_balance";
  message_id: string | null;
  total_spent: string | null;
  credit_limit: string | null;
  charge_count: number | null;
  account_kind: "main" | "sub" | null;
  balance_after: string | null;
  period_spent: string | null;
  budget_amount: string | null;
  alerts: { id: string; sequence: number; kind: AlertKind; threshold_percent: number | null; threshold: number; value: number }[] | null;
}

const DUPLICATE_OF = (messageId: string): ChargeRow => ({
  ord: 1,
  outcome: "duplicate",
  message_id: messageId,
  total_spent: null,
  credit_limit: null,
  charge_count: null,
  account_kind: null,
  balance_after: null,
  period_spent: null,
  budget_amount: null,
  alerts: null,
});

const bigintOrNull = (value: string | null) => (value === null ? null : BigInt(value));

interface AccountStateRow {
  id: string; balance: string; currency: string; totalSpent: string; creditLimit: string | null; status: string;
  budgetAmount: string | null; budgetPeriod: string | null; periodStart: Date | null; periodSpent: string;
}

function accountStateOf({ id: _id, ...row }: AccountStateRow): AccountState {
  return {
    ...row,
    balance: BigInt(row.balance),
    totalSpent: BigInt(row.totalSpent),
    creditLimit: bigintOrNull(row.creditLimit),
    budgetAmount: bigintOrNull(row.budgetAmount),
    periodSpent: BigInt(row.periodSpent),
  };
}

/** A charge waiting for its batch, with what runs right after its commit. */
interface PendingCharge {
  attempt: ChargeAttempt;
  onCommitted: (charge: CommittedCharge) => void;
}

/**
 * The charge rule on PostgreSQL, with group commit (src/db/groupCommit.ts):
 * the charges of one team that arrive while its batch commits go together in
 * the next call of gateway_charge_batch, one round trip and one transaction in
 * autocommit, which locks the team row first and decides each charge in order.
 * Teams batch independently, on their own pooled connections. The database's
 * row locks make it race-free across any number of gateway processes.
 */
export class PgChargeStore implements HotPathStore {
  readonly #pool: pg.Pool;
  readonly #onQuery: (sql: string) => void;
  /** The reports of one event-loop turn share one statement. */
  readonly #statusReports = new StatusReportBatcher((reports) => this.#writeStatusReports(reports));
  /** A batch starts at once; what arrives while it is on the network waits for the next. */
  readonly #batches = new GroupCommit<PendingCharge, ChargeRow>((batch) => this.#commitBatch(batch), queueMicrotask, ({ attempt, onCommitted }, row) => {
    if (row.outcome === "stored" && !attempt.isTestMode) onCommitted(chargeFromRow(attempt, row));
  });

  constructor(connectionString: string, onError: (error: unknown) => void, onQuery: (sql: string) => void = () => {}) {
    this.#onQuery = onQuery;
    this.#pool = new pg.Pool({
      connectionString,
      max: POOL_MAX,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
    });
    // An idle client losing its server (a restart) must not crash the process.
    this.#pool.on("error", onError);
  }

  /**
   * The account reads of one event-loop turn (balance queries, refusals) share one statement: under load a balance
   * query costs a share of a round trip, not one. Each read still starts after its request arrived, so it sees every
   * charge committed before that.
   */
  readonly #accountStates = new DataLoader<string, AccountState | undefined>((ids) => this.#readAccountStates(ids), {
    batchScheduleFn: (run) => setImmediate(run),
    maxBatchSize: ACCOUNT_READ_MAX,
    cache: false,
  });

  async #readAccountStates(ids: readonly string[]): Promise<(AccountState | undefined)[]> {
    assert(ids.length > 0 && ids.length <= ACCOUNT_READ_MAX, "an account read is bounded");
    this.#onQuery(SQL.accountStates);
    const { rows } = await this.#pool.query<AccountStateRow>({ name: "accountStates", text: SQL.accountStates, values: [ids] });
    const byId = new Map(rows.map((row) => [row.id, accountStateOf(row)]));
    return ids.map((id) => byId.get(id));
  }

  #accountState(accountId: string): Promise<AccountState | undefined> {
    return this.#accountStates.load(accountId);
  }

  /** A refusal explained from the account as it is now: `code` when known (the balance), else decided from it. */
  async #rejected(code: RejectionCode | null, attempt: ChargeAttempt): Promise<ChargeResult> {
    const state = await this.#accountState(attempt.accountId);
    const snapshot = state ? snapshotOf(state, attempt.periods) : { totalSpent: 0n, creditLimit: null, balance: 0n, budget: null };
    return { kind: "rejected", code: code ?? accountRefusal(state, attempt), snapshot };
  }

  /**
   * One call of the batch function: every charge's outcome, committed together. Right after the commit, before
   * the team's next batch can start, each stored charge's `onCommitted` runs, in order (the GroupCommit's
   * afterCommit above): events leave in commit order.
   */
  async #commitBatch(batch: PendingCharge[]): Promise<ChargeRow[]> {
    assert(batch.length > 0 && batch.every(({ attempt }) => attempt.teamId === batch[0]!.attempt.teamId), "a batch is one team's");
    this.#onQuery(SQL.chargeBatch);
    const { rows } = await this.#pool.query<ChargeRow>({ name: "chargeBatch", text: SQL.chargeBatch, values: batchArrays(batch.map(({ attempt }) => attempt)) });
    assert(rows.length === batch.length && rows.every((row, index) => row.ord === index + 1), "the batch function answers every charge, in order");
    return rows;
  }

  /** The charge's row from its batch; a lost race for the idempotency key (committed alone) resolves to the winner's message. */
  async #chargeRow(pending: PendingCharge): Promise<ChargeRow> {
    try {
      return await this.#batches.submit(pending.attempt.teamId, pending);
    } catch (error) {
      const { message, accountId } = pending.attempt;
      if ((error as { code?: string }).code === UNIQUE_VIOLATION && message.idempotencyKey !== null) {
        const winner = await this.#read<{ id: string }>("findByIdempotencyKey", [accountId, message.idempotencyKey]);
        if (winner) return DUPLICATE_OF(winner.id);
      }
      throw error;
    }
  }

  get chargeBatches() {
    return this.#batches.stats;
  }

  async charge(attempt: ChargeAttempt, onCommitted: (charge: CommittedCharge) => void): Promise<ChargeResult> {
    assert(attempt.cost > 0n, "a charge is positive");
    const row = await this.#chargeRow({ attempt, onCommitted });
    if (row.outcome === "insufficient_balance") return this.#rejected(row.outcome, attempt);
    if (row.outcome === "refused") return this.#rejected(null, attempt);
    if (row.outcome === "duplicate") return { kind: "duplicate", messageId: row.message_id! };
    assert(row.outcome === "stored" && row.message_id === attempt.message.id, "the charge function stored this message");
    if (attempt.isTestMode) return { kind: "stored", messageId: attempt.message.id, charge: null };
    return { kind: "stored", messageId: attempt.message.id, charge: chargeFromRow(attempt, row) };
  }

  advanceMessageStatus(messageId: string, status: "sent" | "delivered" | "failed", at: Date): Promise<void> {
    return this.#statusReports.add({ messageId, status, at });
  }

  async #writeStatusReports(reports: StatusReport[]): Promise<void> {
    await this.#read("advanceStatuses", [reports.map((r) => r.messageId), reports.map((r) => r.status), reports.map((r) => r.at.toISOString())]);
  }

  async touchApiKey(apiKeyId: string, at: Date, resolutionMs: number): Promise<void> {
    await this.#query(SQL.touchApiKey, [apiKeyId, at.toISOString(), new Date(at.getTime() - resolutionMs).toISOString()]);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  #query(text: string, values: unknown[]) {
    this.#onQuery(text);
    return this.#pool.query(text, values);
  }

  /** A read on any pooled connection, as a named prepared statement: parsed and planned once per connection. */
  async #read<Row>(name: keyof typeof SQL, values: unknown[]): Promise<Row | undefined> {
    this.#onQuery(SQL[name]);
    const { rows } = await this.#pool.query({ name, text: SQL[name], values });
    return rows[0] as Row | undefined;
  }

  async findKeyByHash(keyHash: string): Promise<KeyRecord | null> {
    const row = await this.#read<{
      id: string; environment: string; revokedAt: Date | null; expiresAt: Date | null; permissions: unknown; lastUsedAt: Date | null;
      accountId: string; teamId: string; kind: string; status: string;
    }>("findKeyByHash", [keyHash]);
    if (!row) return null;
    return {
      id: row.id,
      environment: row.environment,
      revokedAt: row.revokedAt,
      expiresAt: row.expiresAt,
      permissions: row.permissions,
      lastUsedAt: row.lastUsedAt,
      account: { id: row.accountId, teamId: row.teamId, kind: row.kind, status: row.status },
    };
  }

  async readAccountBalance(accountId: string): Promise<AccountBalanceRecord | null> {
    return (await this.#accountState(accountId)) ?? null;
  }

  async listSubAccounts(query: SubAccountListingQuery): Promise<SubAccountListing> {
    this.#onQuery(SQL.listSubAccounts);
    const { rows } = await this.#pool.query({ name: "listSubAccounts", text: SQL.listSubAccounts, values: pgListingParams(query) });
    return pgListingOf(rows);
  }
}

/** The batch function's parameters: one array per field, the charges in order. */
function batchArrays(attempts: ChargeAttempt[]): unknown[] {
  const field = <T>(pick: (attempt: ChargeAttempt) => T) => attempts.map(pick);
  return [
    attempts[0]!.teamId,
    field((a) => a.message.id),
    field((a) => a.accountId),
    field((a) => a.apiKeyId),
    field((a) => a.message.to),
    field((a) => a.message.channel),
    field((a) => a.message.text),
    field((a) => a.cost.toString()),
    field((a) => a.message.segments),
    field((a) => a.isTestMode),
    field((a) => a.message.idempotencyKey),
    field((a) => a.message.metadata),
    field((a) => a.now.toISOString()),
    field((a) => a.ledgerEntryId),
    field((a) => a.periods.day.toISOString()),
    field((a) => a.periods.week.toISOString()),
    field((a) => a.periods.month.toISOString()),
    field((a) => a.day),
  ];
}

/** The committed charge, from the charge function's row. */
function chargeFromRow(attempt: ChargeAttempt, row: ChargeRow): CommittedCharge {
  assert(row.total_spent !== null && row.balance_after !== null && row.charge_count !== null && row.account_kind !== null, "a charge returns its totals");
  const alerts: RaisedAlert[] = (row.alerts ?? []).map((alert) => ({
    id: alert.id,
    sequence: alert.sequence,
    kind: alert.kind,
    thresholdPercent: alert.threshold_percent,
    threshold: BigInt(alert.threshold),
    value: BigInt(alert.value),
  }));
  const after = {
    accountKind: row.account_kind,
    totalSpent: BigInt(row.total_spent),
    creditLimit: bigintOrNull(row.credit_limit),
    balance: BigInt(row.balance_after),
    sequence: row.charge_count,
    periodSpent: bigintOrNull(row.period_spent),
    budgetAmount: bigintOrNull(row.budget_amount),
  };
  return committedCharge(attempt, after, alerts);
}
