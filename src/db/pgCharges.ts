import pg from "pg";
import { assert } from "../domain/errors.ts";
import type {
  AccountBalanceRecord,
  ChargeAttempt,
  ChargeResult,
  ChargeSnapshot,
  CommittedCharge,
  HotPathStore,
  KeyRecord,
  RejectionCode,
} from "./charges.ts";

/** Connections this instance keeps for the charge path. */
const POOL_MAX = 20;
/** Includes waiting for a free connection under load. */
const CONNECT_TIMEOUT_MS = 15_000;
/** A charge transaction holds two row locks; it must never wait long for them. */
const STATEMENT_TIMEOUT_MS = 10_000;

const UNIQUE_VIOLATION = "23505";

const SQL = {
  findByIdempotencyKey: `SELECT "id" FROM "Message" WHERE "accountId" = $1 AND "idempotencyKey" = $2`,
  // Under READ COMMITTED this re-checks its WHERE clause after waiting for a concurrent writer of the
  // row, so two charges can never both pass the limit check against the same old totalSpent.
  chargeAccount: `UPDATE "Account"
       SET "totalSpent" = "totalSpent" + $1::bigint, "chargeCount" = "chargeCount" + 1, "updatedAt" = $4::timestamptz AT TIME ZONE 'UTC'
     WHERE "id" = $2 AND "teamId" = $3 AND "status" = 'active'
       AND ("creditLimit" IS NULL OR "totalSpent" + $1::bigint <= "creditLimit")
 RETURNING "totalSpent"::text, "creditLimit"::text, "chargeCount", "kind"`,
  // The team row is every charge's hot spot: debit it last and write the ledger entry in the same
  // statement, so its lock is held for one round trip plus the COMMIT. No row means no funds.
  debitTeamAndRecord: `WITH debited AS (
      UPDATE "Team" SET "balance" = "balance" - $1::bigint, "updatedAt" = $3::timestamptz AT TIME ZONE 'UTC'
       WHERE "id" = $2 AND "balance" >= $1::bigint
   RETURNING "balance")
   INSERT INTO "LedgerEntry" ("id", "teamId", "accountId", "messageId", "kind", "amount", "balanceAfter", "totalSpentAfter", "sequence", "createdAt")
   SELECT $4, $2, $5, $6, 'charge', $1::bigint, debited."balance", $7::bigint, $8, $3::timestamptz AT TIME ZONE 'UTC' FROM debited
   RETURNING "balanceAfter"::text`,
  insertMessage: `INSERT INTO "Message" ("id", "teamId", "accountId", "apiKeyId", "to", "channel", "text", "status", "cost", "segments",
                          "isTestMode", "idempotencyKey", "metadata", "createdAt", "updatedAt")
   VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8::bigint, $9, $10, $11, $12::jsonb,
           $13::timestamptz AT TIME ZONE 'UTC', $13::timestamptz AT TIME ZONE 'UTC')`,
  accountStatus: `SELECT "status" FROM "Account" WHERE "id" = $1`,
  snapshot: `SELECT a."totalSpent"::text, a."creditLimit"::text, t."balance"::text
               FROM "Account" a JOIN "Team" t ON t."id" = a."teamId" WHERE a."id" = $1`,
  advanceStatus: `UPDATE "Message" SET "status" = $2, "updatedAt" = $3::timestamptz AT TIME ZONE 'UTC',
          "sentAt" = CASE WHEN $2 = 'sent' THEN $3::timestamptz AT TIME ZONE 'UTC' ELSE "sentAt" END,
          "deliveredAt" = CASE WHEN $2 = 'delivered' THEN $3::timestamptz AT TIME ZONE 'UTC' ELSE "deliveredAt" END
    WHERE "id" = $1 AND NOT "isTestMode"
      AND ("status" = 'queued' OR ("status" = 'sent' AND $2 IN ('delivered', 'failed')))`,
  // Timestamps are stored as UTC without a zone: give them one, so the driver does not read them as local time.
  findKeyByHash: `SELECT k."id", k."environment", k."revokedAt" AT TIME ZONE 'UTC' AS "revokedAt", k."lastUsedAt" AT TIME ZONE 'UTC' AS "lastUsedAt",
          a."id" AS "accountId", a."teamId", a."kind", a."status", t."name" AS "teamName", t."balance"::text, t."currency"
     FROM "ApiKey" k JOIN "Account" a ON a."id" = k."accountId" JOIN "Team" t ON t."id" = a."teamId"
    WHERE k."keyHash" = $1`,
  readAccountBalance: `SELECT t."balance"::text, t."currency", a."totalSpent"::text, a."creditLimit"::text
     FROM "Account" a JOIN "Team" t ON t."id" = a."teamId" WHERE a."id" = $1`,
  touchApiKey: `UPDATE "ApiKey" SET "lastUsedAt" = $2::timestamptz AT TIME ZONE 'UTC'
    WHERE "id" = $1 AND ("lastUsedAt" IS NULL OR "lastUsedAt" < ($3::timestamptz AT TIME ZONE 'UTC'))`,
};

class Rollback extends Error {
  constructor(readonly result: ChargeResult | RejectionCode) {
    super("rollback");
  }
}

const bigintOrNull = (value: string | null) => (value === null ? null : BigInt(value));

/**
 * The charge rule on PostgreSQL: one short READ COMMITTED transaction of
 * conditional updates (the account row, then the team row: always in that
 * order, so concurrent charges cannot deadlock; the team row last, so its lock
 * is held briefly). The database's row locks make
 * it race-free across any number of gateway processes.
 */
export class PgChargeStore implements HotPathStore {
  readonly #pool: pg.Pool;
  readonly #onConnectionError: (error: unknown) => void;
  readonly #onQuery: (sql: string) => void;

  constructor(connectionString: string, onError: (error: unknown) => void, onQuery: (sql: string) => void = () => {}) {
    this.#onConnectionError = onError;
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

  /** Reads on the connection already held: asking the pool for a second one could deadlock it under load. */
  async #snapshot(client: pg.PoolClient, accountId: string): Promise<ChargeSnapshot> {
    const { rows } = await this.#query(client, SQL.snapshot, [accountId]);
    const row = rows[0] as { totalSpent: string; creditLimit: string | null; balance: string } | undefined;
    return row
      ? { totalSpent: BigInt(row.totalSpent), creditLimit: bigintOrNull(row.creditLimit), balance: BigInt(row.balance) }
      : { totalSpent: 0n, creditLimit: null, balance: 0n };
  }

  async #chargeInTransaction(client: pg.PoolClient, attempt: ChargeAttempt): Promise<CommittedCharge | null> {
    const { message } = attempt;
    if (message.idempotencyKey !== null) {
      const existing = await this.#query(client, SQL.findByIdempotencyKey, [attempt.accountId, message.idempotencyKey]);
      if (existing.rows[0]) throw new Rollback({ kind: "duplicate", messageId: existing.rows[0].id });
    }
    const now = attempt.now.toISOString();
    const cost = attempt.cost.toString();
    const insertMessage = () =>
      this.#query(client, SQL.insertMessage, [
        message.id, attempt.teamId, attempt.accountId, attempt.apiKeyId, message.to, message.channel, message.text,
        cost, message.segments, attempt.isTestMode, message.idempotencyKey, message.metadata, now,
      ]);
    if (attempt.isTestMode) {
      await insertMessage();
      return null;
    }
    const account = (await this.#query(client, SQL.chargeAccount, [cost, attempt.accountId, attempt.teamId, now])).rows[0] as
      | { totalSpent: string; creditLimit: string | null; chargeCount: number; kind: "main" | "sub" }
      | undefined;
    if (!account) {
      const status = (await this.#query(client, SQL.accountStatus, [attempt.accountId])).rows[0]?.status;
      throw new Rollback(status === "active" ? "credit_limit_exceeded" : "account_inactive");
    }
    await insertMessage();
    const ledger = (
      await this.#query(client, SQL.debitTeamAndRecord, [
        cost, attempt.teamId, now, attempt.ledgerEntryId, attempt.accountId, message.id, account.totalSpent, account.chargeCount,
      ])
    ).rows[0] as { balanceAfter: string } | undefined;
    if (!ledger) throw new Rollback("insufficient_balance");

    const totalSpentAfter = BigInt(account.totalSpent);
    const creditLimit = bigintOrNull(account.creditLimit);
    const balanceAfter = BigInt(ledger.balanceAfter);
    assert(balanceAfter >= 0n, "team balance never negative");
    assert(creditLimit === null || totalSpentAfter <= creditLimit, "totalSpent within creditLimit");
    return {
      teamId: attempt.teamId,
      accountId: attempt.accountId,
      accountKind: account.kind,
      messageId: message.id,
      amount: attempt.cost,
      totalSpentAfter,
      creditLimit,
      balanceAfter,
      sequence: account.chargeCount,
      chargedAt: attempt.now,
    };
  }

  #query(on: pg.Pool | pg.PoolClient, text: string, values?: unknown[]) {
    this.#onQuery(text);
    return on.query(text, values);
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
      accountId: string; teamId: string; kind: string; status: string; teamName: string; balance: string; currency: string;
    }>("findKeyByHash", [keyHash]);
    if (!row) return null;
    return {
      id: row.id,
      environment: row.environment,
      revokedAt: row.revokedAt,
      lastUsedAt: row.lastUsedAt,
      account: { id: row.accountId, teamId: row.teamId, kind: row.kind, status: row.status },
      team: { id: row.teamId, name: row.teamName, balance: BigInt(row.balance), currency: row.currency },
    };
  }

  async readAccountBalance(accountId: string): Promise<AccountBalanceRecord | null> {
    const row = await this.#read<{ balance: string; currency: string; totalSpent: string; creditLimit: string | null }>("readAccountBalance", [accountId]);
    if (!row) return null;
    return { balance: BigInt(row.balance), currency: row.currency, totalSpent: BigInt(row.totalSpent), creditLimit: bigintOrNull(row.creditLimit) };
  }

  async charge(attempt: ChargeAttempt, onCommitted: (charge: CommittedCharge) => void): Promise<ChargeResult> {
    assert(attempt.cost > 0n, "a charge is positive");
    const client = await this.#pool.connect();
    // A checked-out client has no pool listener: its server going away between two queries would be an unhandled 'error'.
    client.on("error", this.#onConnectionError);
    let broken = false;
    try {
      await this.#query(client, "BEGIN");
      let charge: CommittedCharge | null;
      try {
        charge = await this.#chargeInTransaction(client, attempt);
      } catch (error) {
        await this.#query(client, "ROLLBACK").catch(() => (broken = true));
        if (error instanceof Rollback) {
          if (typeof error.result !== "string") return error.result;
          return { kind: "rejected", code: error.result, snapshot: await this.#snapshot(client, attempt.accountId) };
        }
        if ((error as { code?: string }).code === UNIQUE_VIOLATION && attempt.message.idempotencyKey !== null) {
          // Lost the race for this idempotency key: the winner's message is the answer.
          const { rows } = await this.#query(client, SQL.findByIdempotencyKey, [attempt.accountId, attempt.message.idempotencyKey]);
          if (rows[0]) return { kind: "duplicate", messageId: rows[0].id };
        }
        throw error;
      }
      await this.#query(client, "COMMIT");
      if (charge) onCommitted(charge);
      return { kind: "stored", messageId: attempt.message.id, charge };
    } catch (error) {
      broken = true;
      throw error;
    } finally {
      client.removeListener("error", this.#onConnectionError);
      client.release(broken);
    }
  }

  async advanceMessageStatus(messageId: string, status: "sent" | "delivered" | "failed", at: Date): Promise<void> {
    await this.#query(this.#pool, SQL.advanceStatus, [messageId, status, at.toISOString()]);
  }

  async touchApiKey(apiKeyId: string, at: Date, resolutionMs: number): Promise<void> {
    await this.#query(this.#pool, SQL.touchApiKey, [apiKeyId, at.toISOString(), new Date(at.getTime() - resolutionMs).toISOString()]);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
