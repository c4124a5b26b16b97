import Database from "better-sqlite3";
import pg from "pg";
import { sqliteFile } from "../src/db/client.ts";
import type { InvariantCheck } from "./invariants.ts";
import type { DatabaseKind } from "./lib/settings.ts";
import type { SeededTeam } from "./seed.ts";

/**
 * A year of history for the spend-report measurement: `entries` charges spread
 * evenly over the `days` UTC days before today, round-robin over the team's
 * sub-accounts and four channels, written as the charge path writes them (a
 * message, a ledger entry with the account's gapless sequence, and the
 * per-account and per-team, per-channel, per-day totals), with the accounts' totalSpent and
 * chargeCount and the team's balance moved to match. Written in SQL, not
 * through the API: a million charges at the gateway's own rate would take
 * longer than the rest of the bench. `checkHistory` then proves it consistent.
 */
export interface HistorySpec {
  database: DatabaseKind;
  databaseUrl: string;
  team: SeededTeam;
  entries: number;
  days: number;
}

const CHANNELS = ["sms", "whatsapp", "email", "telegram"] as const;
const DAY_SECONDS = 86_400;

/** The numbered charges with everything derived from their number; `series` yields i = 0..entries-1. */
function historyRows(series: string, accountsTable: string, spec: HistorySpec, now: Date): string {
  const accounts = spec.team.subAccounts.length;
  const start = Math.floor(now.getTime() / 1000 / DAY_SECONDS - spec.days) * DAY_SECONDS;
  const spread = (spec.days * DAY_SECONDS) / spec.entries;
  const channel = `CASE (i / ${accounts}) % 4 ${CHANNELS.map((name, index) => `WHEN ${index} THEN '${name}'`).join(" ")} END`;
  return `SELECT i, a."id" AS "accountId", a."apiKeyId", ${channel} AS "channel",
                 1 + i % 3 AS "segments", (1 + i % 3) * (1 + i % 5) AS "cost", i / ${accounts} + 1 AS "sequence",
                 ${start} + CAST(i * ${spread} AS INTEGER) AS "epoch"
            FROM ${series} JOIN ${accountsTable} a ON a."idx" = i % ${accounts}`;
}

function accountsValues(team: SeededTeam): string {
  return team.subAccounts.map((account, index) => `(${index}, '${account.id}', '${account.apiKeyId}')`).join(", ");
}

/** The statements shared by both databases, given how each spells a timestamp and a day from "epoch". */
function writeStatements(teamId: string, timestamp: string, day: string): string[] {
  return [
    `INSERT INTO "Message" ("id", "teamId", "accountId", "apiKeyId", "to", "channel", "text", "status", "cost", "segments", "isTestMode", "createdAt", "updatedAt", "sentAt", "deliveredAt")
     SELECT 'hist-m-' || i, '${teamId}', "accountId", "apiKeyId", '+14155550100', "channel", 'history', 'delivered', "cost", "segments", false, ${timestamp}, ${timestamp}, ${timestamp}, ${timestamp}
       FROM history`,
    `INSERT INTO "LedgerEntry" ("id", "teamId", "accountId", "messageId", "kind", "amount", "balanceAfter", "totalSpentAfter", "sequence", "createdAt")
     SELECT 'hist-l-' || i, '${teamId}', "accountId", 'hist-m-' || i, 'charge', "cost",
            (SELECT "balance" FROM "Team" WHERE "id" = '${teamId}') - SUM("cost") OVER (ORDER BY i),
            SUM("cost") OVER (PARTITION BY "accountId" ORDER BY i), "sequence", ${timestamp}
       FROM history`,
    `INSERT INTO "SpendDaily" ("teamId", "accountId", "channel", "day", "messages", "segments", "amount")
     SELECT '${teamId}', "accountId", "channel", ${day}, COUNT(*), SUM("segments"), SUM("cost") FROM history GROUP BY "accountId", "channel", ${day}`,
    `INSERT INTO "TeamSpendDaily" ("teamId", "day", "channel", "messages", "segments", "amount")
     SELECT '${teamId}', ${day}, "channel", COUNT(*), SUM("segments"), SUM("cost") FROM history GROUP BY ${day}, "channel"`,
    `UPDATE "Account" SET "totalSpent" = "totalSpent" + (SELECT COALESCE(SUM("cost"), 0) FROM history h WHERE h."accountId" = "Account"."id"),
                          "chargeCount" = "chargeCount" + (SELECT COUNT(*) FROM history h WHERE h."accountId" = "Account"."id")
      WHERE "teamId" = '${teamId}'`,
    `UPDATE "Team" SET "balance" = "balance" - (SELECT SUM("cost") FROM history) WHERE "id" = '${teamId}'`,
  ];
}

function seedSqlite(spec: HistorySpec, now: Date): void {
  const db = new Database(sqliteFile(spec.databaseUrl));
  try {
    db.pragma("busy_timeout = 30000");
    db.exec(`CREATE TEMP TABLE history_accounts ("idx" INTEGER PRIMARY KEY, "id" TEXT, "apiKeyId" TEXT)`);
    db.exec(`INSERT INTO history_accounts VALUES ${accountsValues(spec.team)}`);
    const series = `(WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${spec.entries - 1}) SELECT i FROM n)`;
    db.exec(`CREATE TEMP TABLE history AS ${historyRows(series, "history_accounts", spec, now)}`);
    const timestamp = `strftime('%Y-%m-%dT%H:%M:%f+00:00', "epoch", 'unixepoch')`;
    const statements = writeStatements(spec.team.teamId, timestamp, `strftime('%Y-%m-%d', "epoch", 'unixepoch')`);
    db.transaction(() => {
      for (const statement of statements) db.exec(statement);
    })();
    // The million rows sit in the write-ahead log until a checkpoint copies them into the database file: copied now,
    // not by the gateway's own checkpoints during what is measured next (as PostgreSQL's CHECKPOINT below).
    db.pragma("wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
}

async function seedPostgres(spec: HistorySpec, now: Date): Promise<void> {
  const client = new pg.Client({ connectionString: spec.databaseUrl });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query(`CREATE TEMP TABLE history_accounts ("idx" INTEGER PRIMARY KEY, "id" TEXT, "apiKeyId" TEXT) ON COMMIT DROP`);
    await client.query(`INSERT INTO history_accounts VALUES ${accountsValues(spec.team)}`);
    const series = `generate_series(0, ${spec.entries - 1}) AS s(i)`;
    await client.query(`CREATE TEMP TABLE history ON COMMIT DROP AS ${historyRows(series, "history_accounts", spec, now)}`);
    const timestamp = `(to_timestamp("epoch") AT TIME ZONE 'UTC')`;
    for (const statement of writeStatements(spec.team.teamId, timestamp, `to_char(${timestamp}, 'YYYY-MM-DD')`)) await client.query(statement);
    await client.query("COMMIT");
    await client.query(`ANALYZE "SpendDaily"; ANALYZE "LedgerEntry"; ANALYZE "Message"`);
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    await client.end();
    throw error;
  }
  try {
    // The million rows left PostgreSQL a checkpoint's worth of dirty pages, which it would otherwise write out over the
    // next minutes (checkpoint_completion_target), competing with the commits of whatever is measured next: the
    // fan-out's p99 on the pair went from about 70 ms to 1.5 s right after this seed. CHECKPOINT needs a superuser
    // or the pg_checkpoint role; without either, the history stands and the figures after it say so.
    await client.query("CHECKPOINT");
  } catch (error) {
    process.stderr.write(`bench: CHECKPOINT after the history refused (${(error as Error).message}); the measurements right after it share the disk with its write-out\n`);
  } finally {
    await client.end();
  }
}

export async function seedHistory(spec: HistorySpec, now = new Date()): Promise<void> {
  if (spec.team.subAccounts.length === 0 || spec.entries < 1) throw new Error("a history needs sub-accounts and at least one charge");
  if (spec.database === "sqlite") {
    seedSqlite(spec, now);
    // The seconds spent blocked above let the gateway close this process's idle keep-alive sockets unseen:
    // a turn of the event loop lets fetch notice before it reuses one.
    await new Promise((resolve) => setTimeout(resolve, 100));
  } else await seedPostgres(spec, now);
}

const CHECK_SQL = (teamId: string) => `
  SELECT (SELECT COUNT(*) FROM "LedgerEntry" WHERE "teamId" = '${teamId}' AND "kind" = 'charge') AS "charges",
         (SELECT COALESCE(SUM("amount"), 0) FROM "LedgerEntry" WHERE "teamId" = '${teamId}' AND "kind" = 'charge') AS "charged",
         (SELECT COALESCE(SUM("amount"), 0) FROM "LedgerEntry" WHERE "teamId" = '${teamId}' AND "kind" = 'top_up') AS "toppedUp",
         (SELECT "balance" FROM "Team" WHERE "id" = '${teamId}') AS "balance",
         (SELECT COUNT(*) FROM "Message" WHERE "teamId" = '${teamId}' AND NOT "isTestMode") AS "messages",
         (SELECT COALESCE(SUM("amount"), 0) FROM "SpendDaily" WHERE "teamId" = '${teamId}') AS "daily",
         (SELECT COALESCE(SUM("messages"), 0) FROM "SpendDaily" WHERE "teamId" = '${teamId}') AS "dailyMessages",
         (SELECT COALESCE(SUM("amount"), 0) FROM "TeamSpendDaily" WHERE "teamId" = '${teamId}') AS "teamDaily",
         (SELECT COALESCE(SUM("totalSpent"), 0) FROM "Account" WHERE "teamId" = '${teamId}') AS "spent",
         (SELECT COALESCE(SUM("chargeCount"), 0) FROM "Account" WHERE "teamId" = '${teamId}') AS "chargeCounts"`;

/**
 * The charge invariants of README.md's "Messages and charging" and "Budgets and alerts" in aggregate
 * (the tests' checker reads every ledger row, which at a million is the bench's slowest step): the
 * balance is the top-ups minus the charges; the messages, the daily totals and the accounts' totals
 * all agree with the ledger.
 */
export async function checkHistory(database: DatabaseKind, databaseUrl: string, teamId: string): Promise<InvariantCheck> {
  let row: Record<string, unknown>;
  if (database === "sqlite") {
    const db = new Database(sqliteFile(databaseUrl), { readonly: true });
    try {
      row = db.prepare(CHECK_SQL(teamId)).get() as Record<string, unknown>;
    } finally {
      db.close();
    }
  } else {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      row = (await client.query(CHECK_SQL(teamId))).rows[0] as Record<string, unknown>;
    } finally {
      await client.end();
    }
  }
  const value = (name: string) => BigInt(row[name] as string | number | bigint);
  const broken = [
    value("balance") < 0n && `balance ${value("balance")} < 0`,
    value("balance") !== value("toppedUp") - value("charged") && `balance ${value("balance")} != top-ups ${value("toppedUp")} - charges ${value("charged")}`,
    value("messages") !== value("charges") && `${value("messages")} live messages but ${value("charges")} charges`,
    value("daily") !== value("charged") && `daily totals ${value("daily")} != the ledger's charges ${value("charged")}`,
    value("dailyMessages") !== value("charges") && `daily totals count ${value("dailyMessages")} messages, the ledger ${value("charges")}`,
    value("teamDaily") !== value("charged") && `the team's daily totals ${value("teamDaily")} != the ledger's charges ${value("charged")}`,
    value("spent") !== value("charged") && `accounts' totalSpent ${value("spent")} != the ledger's charges ${value("charged")}`,
    value("chargeCounts") !== value("charges") && `accounts' chargeCount ${value("chargeCounts")} != ${value("charges")} charges`,
  ].filter((item): item is string => typeof item === "string");
  return { teamId, violations: broken.length, message: broken[0] ?? null, charges: Number(value("charges")), balance: Number(value("balance")) };
}
