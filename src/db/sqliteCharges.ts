import Database from "better-sqlite3";
import { assert } from "../domain/errors.ts";
import {
  type AccountBalanceRecord,
  type ChargeAttempt,
  type ChargeResult,
  type CommittedCharge,
  type HotPathStore,
  type KeyRecord,
} from "./charges.ts";
import { GroupCommit } from "./groupCommit.ts";
import { openSqliteConnection, readAccountState } from "./sqliteChargeWriter.ts";
import { prepareStatements, type Statements } from "./sqliteStatements.ts";
import { SqliteWriterClient } from "./sqliteWriterClient.ts";
import { StatusReportBatcher } from "./statusReports.ts";
import { SQLITE_LISTING, dateOrNull, sqliteListingOf, sqliteListingParams, type SubAccountListing, type SubAccountListingQuery } from "./subAccountListing.ts";

/** A charge waiting for its batch, with what runs right after its commit. */
interface PendingCharge {
  attempt: ChargeAttempt;
  onCommitted: (charge: CommittedCharge) => void;
}

/** Every batch shares the one writer: one lane. */
const ONE_LANE = "sqlite";

/**
 * The hot path on SQLite through better-sqlite3 directly. The writes (the
 * charge rule, delivery reports, the keys' lastUsedAt) run on a thread of their
 * own (src/db/sqliteWriterClient.ts, src/db/sqliteChargeWriter.ts), so that
 * SQLite's work overlaps with the HTTP and GraphQL work of the main thread; the
 * reads (a key, a balance, the listing) are made here, on a connection of this
 * thread, and see every write committed before them (WAL).
 *
 * Charges go through group commit (src/db/groupCommit.ts): the charges that
 * arrive while a batch commits go together in the next, one transaction, each
 * decided in order against what the one before it left, and each
 * acknowledged only after that commit.
 */
export class SqliteChargeStore implements HotPathStore {
  readonly #db: Database.Database;
  readonly #statements: Statements;
  readonly #writer: SqliteWriterClient;
  /** The sub-account listing (src/db/subAccountListing.ts), prepared on first use. */
  #listing: Database.Statement | undefined;
  /** Writes asked for and not yet answered (some still waiting for their batch), and who waits for them all. */
  #writesOnTheirWay = 0;
  #onAllWritten: (() => void) | null = null;
  /** The reports of one event-loop turn share one transaction. */
  readonly #statusReports: StatusReportBatcher;
  /** The charges of one event-loop turn share one transaction; each charge's onCommitted runs right after it. */
  readonly #batches = new GroupCommit<PendingCharge, ChargeResult>((batch) => this.#writer.chargeBatch(batch.map(({ attempt }) => attempt)), setImmediate, ({ onCommitted }, result) => {
    if (result.kind === "stored" && result.charge) onCommitted(result.charge);
  });

  constructor(file: string, onQuery?: (sql: string) => void) {
    this.#db = openSqliteConnection(file, onQuery);
    this.#statements = prepareStatements(this.#db);
    this.#writer = new SqliteWriterClient(file, onQuery);
    this.#statusReports = new StatusReportBatcher((reports) => this.#writer.advanceStatuses(reports));
  }

  advanceMessageStatus(messageId: string, status: "sent" | "delivered" | "failed", at: Date): Promise<void> {
    return this.#tracked(this.#statusReports.add({ messageId, status, at }));
  }

  touchApiKey(apiKeyId: string, at: Date, resolutionMs: number): Promise<void> {
    return this.#tracked(this.#writer.touchApiKey(apiKeyId, at, new Date(at.getTime() - resolutionMs)));
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
    return readAccountState(this.#statements, accountId) ?? null;
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
    return this.#tracked(this.#batches.submit(ONE_LANE, { attempt, onCommitted }));
  }

  #tracked<T>(write: Promise<T>): Promise<T> {
    this.#writesOnTheirWay += 1;
    return write.finally(() => {
      this.#writesOnTheirWay -= 1;
      if (this.#writesOnTheirWay === 0) this.#onAllWritten?.();
    });
  }

  /** Waits for every write asked for before (charges still gathering into a batch included), then closes. */
  async close(): Promise<void> {
    if (this.#writesOnTheirWay > 0) await new Promise<void>((resolve) => (this.#onAllWritten = resolve));
    await this.#writer.close();
    this.#db.close();
  }
}
