import pg from "pg";
import { assert } from "../domain/errors.ts";
import {
  committedCharge,
  type AccountBalanceRecord,
  type ChargeAttempt,
  type ChargeResult,
  type ChargeSnapshot,
  type CommittedCharge,
  type HotPathStore,
  type KeyRecord,
  type RejectionCode,
} from "./charges.ts";
import { StatusReportBatcher, type StatusReport } from "./statusReports.ts";

/** Connections this instance keeps for the charge path. */
const POOL_MAX = 20;
/** Includes waiting for a free connection under load. */
const CONNECT_TIMEOUT_MS = 15_000;
/** A charge transaction holds two row locks; it must never wait long for them. */
const STATEMENT_TIMEOUT_MS = 10_000;

const UNIQUE_VIOLATION = "23505";

const SQL = {
  findByIdempotencyKey: `SELECT "id" FROM "Message" WHERE "accountId" = $1 AND "idempotencyKey" = $2`,
  // The charge rule in one round trip: prisma/postgresql/migrations/*_charge_function.
  chargeMessage: `SELECT "outcome", "message_id", "total_spent"::text, "credit_limit"::text, "charge_count", "account_kind", "balance_after"::text
     FROM "gateway_charge_message"($1, $2, $3, $4, $5, $6, $7, $8::bigint, $9, $10, $11, $12::jsonb, $13::timestamptz, $14)`,
  snapshot: `SELECT a."totalSpent"::text, a."creditLimit"::text, t."balance"::text
               FROM "Account" a JOIN "Team" t ON t."id" = a."teamId" WHERE a."id" = $1`,
  // A batch of delivery reports, each message at most once: status only ever moves forward.
  advanceStatuses: `UPDATE "Message" AS m SET "status" = r.status, "updatedAt" = r.at AT TIME ZONE 'UTC',
          "sentAt" = CASE WHEN r.status = 'sent' THEN r.at AT TIME ZONE 'UTC' ELSE m."sentAt" END,
          "deliveredAt" = CASE WHEN r.status = 'delivered' THEN r.at AT TIME ZONE 'UTC' ELSE m."deliveredAt" END
     FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS r(id, status, at)
    WHERE m."id" = r.id AND NOT m."isTestMode"
      AND (m."status" = 'queued' OR (m."status" = 'sent' AND r.status IN ('delivered', 'failed')))`,
  // Timestamps are stored as UTC without a zone: give them one, so the driver does not read them as local time.
  findKeyByHash: `SELECT k."id", k."environment", k."revokedAt" AT TIME ZONE 'UTC' AS "revokedAt", k."lastUsedAt" AT TIME ZONE 'UTC' AS "lastUsedAt",
          a."id" AS "accountId", a."teamId", a."kind", a."status", t."name" AS "teamName", t."balance"::text, t."currency", t."createdAt" AT TIME ZONE 'UTC' AS "teamCreatedAt"
     FROM "ApiKey" k JOIN "Account" a ON a."id" = k."accountId" JOIN "Team" t ON t."id" = a."teamId"
    WHERE k."keyHash" = $1`,
  readAccountBalance: `SELECT t."balance"::text, t."currency", a."totalSpent"::text, a."creditLimit"::text
     FROM "Account" a JOIN "Team" t ON t."id" = a."teamId" WHERE a."id" = $1`,
  touchApiKey: `UPDATE "ApiKey" SET "lastUsedAt" = $2::timestamptz AT TIME ZONE 'UTC'
    WHERE "id" = $1 AND ("lastUsedAt" IS NULL OR "lastUsedAt" < ($3::timestamptz AT TIME ZONE 'UTC'))`,
};

/** Raised by gateway_charge_message when the team balance does not cover the cost (its debit of the account is undone). */
const INSUFFICIENT_BALANCE = "GW402";

interface ChargeRow {
  outcome: "stored" | "duplicate" | "credit_limit_exceeded" | "account_inactive";
  message_id: string | null;
  total_spent: string | null;
  credit_limit: string | null;
  charge_count: number | null;
  account_kind: "main" | "sub" | null;
  balance_after: string | null;
}

const bigintOrNull = (value: string | null) => (value === null ? null : BigInt(value));

/**
 * The charge rule on PostgreSQL: one call of the gateway_charge_message
 * function in autocommit (conditional updates of the account row, then the team
 * row: always in that order, so concurrent charges cannot deadlock). One round
 * trip per charge, and the team row is locked only for the rest of that call
 * and its commit. The database's row locks make it race-free across any number
 * of gateway processes.
 */
export class PgChargeStore implements HotPathStore {
  readonly #pool: pg.Pool;
  readonly #onQuery: (sql: string) => void;
  /** The reports of one event-loop turn share one statement. */
  readonly #statusReports = new StatusReportBatcher((reports) => this.#writeStatusReports(reports));

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

  async #snapshot(accountId: string): Promise<ChargeSnapshot> {
    const row = await this.#read<{ totalSpent: string; creditLimit: string | null; balance: string }>("snapshot", [accountId]);
    return row
      ? { totalSpent: BigInt(row.totalSpent), creditLimit: bigintOrNull(row.creditLimit), balance: BigInt(row.balance) }
      : { totalSpent: 0n, creditLimit: null, balance: 0n };
  }

  async #rejected(code: RejectionCode, attempt: ChargeAttempt): Promise<ChargeResult> {
    return { kind: "rejected", code, snapshot: await this.#snapshot(attempt.accountId) };
  }

  /** One call of the charge function; a lost race for the idempotency key resolves to the winner's message. */
  async #callChargeFunction(attempt: ChargeAttempt): Promise<ChargeRow | "insufficient_balance"> {
    const { message } = attempt;
    try {
      const row = await this.#read<ChargeRow>("chargeMessage", [
        message.id, attempt.teamId, attempt.accountId, attempt.apiKeyId, message.to, message.channel, message.text,
        attempt.cost.toString(), message.segments, attempt.isTestMode, message.idempotencyKey, message.metadata,
        attempt.now.toISOString(), attempt.ledgerEntryId,
      ]);
      assert(row !== undefined, "the charge function returns one row");
      return row;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === INSUFFICIENT_BALANCE) return "insufficient_balance";
      if (code === UNIQUE_VIOLATION && message.idempotencyKey !== null) {
        const winner = await this.#read<{ id: string }>("findByIdempotencyKey", [attempt.accountId, message.idempotencyKey]);
        if (winner) return { outcome: "duplicate", message_id: winner.id, total_spent: null, credit_limit: null, charge_count: null, account_kind: null, balance_after: null };
      }
      throw error;
    }
  }

  async charge(attempt: ChargeAttempt, onCommitted: (charge: CommittedCharge) => void): Promise<ChargeResult> {
    assert(attempt.cost > 0n, "a charge is positive");
    const row = await this.#callChargeFunction(attempt);
    if (row === "insufficient_balance") return this.#rejected(row, attempt);
    if (row.outcome === "credit_limit_exceeded" || row.outcome === "account_inactive") return this.#rejected(row.outcome, attempt);
    if (row.outcome === "duplicate") return { kind: "duplicate", messageId: row.message_id! };
    assert(row.outcome === "stored" && row.message_id === attempt.message.id, "the charge function stored this message");
    if (attempt.isTestMode) return { kind: "stored", messageId: attempt.message.id, charge: null };
    const charge = chargeFromRow(attempt, row);
    onCommitted(charge);
    return { kind: "stored", messageId: attempt.message.id, charge };
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
      id: string; environment: string; revokedAt: Date | null; lastUsedAt: Date | null;
      accountId: string; teamId: string; kind: string; status: string; teamName: string; balance: string; currency: string; teamCreatedAt: Date;
    }>("findKeyByHash", [keyHash]);
    if (!row) return null;
    return {
      id: row.id,
      environment: row.environment,
      revokedAt: row.revokedAt,
      lastUsedAt: row.lastUsedAt,
      account: { id: row.accountId, teamId: row.teamId, kind: row.kind, status: row.status },
      team: { id: row.teamId, name: row.teamName, balance: BigInt(row.balance), currency: row.currency, createdAt: row.teamCreatedAt },
    };
  }

  async readAccountBalance(accountId: string): Promise<AccountBalanceRecord | null> {
    const row = await this.#read<{ balance: string; currency: string; totalSpent: string; creditLimit: string | null }>("readAccountBalance", [accountId]);
    if (!row) return null;
    return { balance: BigInt(row.balance), currency: row.currency, totalSpent: BigInt(row.totalSpent), creditLimit: bigintOrNull(row.creditLimit) };
  }
}

/** The committed charge, from the charge function's row. */
function chargeFromRow(attempt: ChargeAttempt, row: ChargeRow): CommittedCharge {
  assert(row.total_spent !== null && row.balance_after !== null && row.charge_count !== null && row.account_kind !== null, "a charge returns its totals");
  return committedCharge(attempt, {
    accountKind: row.account_kind,
    totalSpent: BigInt(row.total_spent),
    creditLimit: bigintOrNull(row.credit_limit),
    balance: BigInt(row.balance_after),
    sequence: row.charge_count,
  });
}
