/**
 * The sub-account listing in one statement through the driver (the GraphQL
 * `subAccounts` connection): the team, the number of sub-accounts matching the
 * filters, and one page of them, each with its API keys aggregated as JSON by
 * the database (SQLite json_group_array, PostgreSQL json_agg). Only the columns
 * the API shows are read: never a key's hash. Run by the hot-path stores
 * (src/db/sqliteCharges.ts, src/db/pgCharges.ts) on their own connections; the
 * paging rule itself (size, cursor, one row more than the page) is
 * src/domain/paging.ts, applied by src/services/accounts.ts.
 */

/** One page of a team's sub-accounts, as src/services/accounts.ts asks for it. */
export interface SubAccountListingQuery {
  teamId: string;
  status: string | null;
  externalId: string | null;
  /** The id of the last sub-account already seen (the cursor's sort key), or null for the first page. */
  after: string | null;
  /** Rows to read, ordered by id. */
  take: number;
  /** Whether to aggregate each sub-account's keys (left out when nobody asked for them). */
  withKeys: boolean;
}

/** A key's columns as the API shows them: no hash, no account id (src/services/views.ts renders them). */
export interface ApiKeyColumns {
  id: string;
  name: string;
  environment: string;
  keyPrefix: string;
  /** As stored: a JSON list of scopes (src/domain/scopes.ts). */
  permissions: unknown;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  expiresAt: Date | null;
}

/** A listed key: always a sub-account's. */
export interface ListedApiKey extends ApiKeyColumns {
  account: { kind: "sub" };
}

/** A sub-account as the API shows it, with its keys (empty when they were not asked for). */
export interface ListedSubAccount {
  id: string;
  teamId: string;
  kind: "sub";
  name: string;
  externalId: string | null;
  status: string;
  totalSpent: bigint;
  creditLimit: bigint | null;
  chargeCount: number;
  budgetAmount: bigint | null;
  budgetPeriod: string | null;
  periodStart: Date | null;
  periodSpent: bigint;
  alertThresholds: unknown;
  metadata: unknown;
  deletionScheduledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  apiKeys: ListedApiKey[];
}

/** The team the listing was read for, in the same statement: its balance answers every row's balance view. */
export interface ListedTeam {
  id: string;
  name: string;
  balance: bigint;
  currency: string;
  lowBalanceThreshold: bigint | null;
  createdAt: Date;
}

export interface SubAccountListing {
  /** Null only when the team no longer exists (then nothing is listed). */
  team: ListedTeam | null;
  /** Sub-accounts matching the filters, over every page. */
  totalCount: number;
  rows: ListedSubAccount[];
}

/** The filters of the page and of its total, on the account alias `a`; `p` names a parameter. */
const filters = (p: (name: keyof SubAccountListingQuery) => string) =>
  `a."teamId" = ${p("teamId")} AND a."kind" = 'sub'
     AND (${p("status")} IS NULL OR a."status" = ${p("status")})
     AND (${p("externalId")} IS NULL OR a."externalId" = ${p("externalId")})`;

const ACCOUNT_COLUMNS = [
  "id", "name", "externalId", "status", "totalSpent", "creditLimit", "chargeCount", "budgetAmount", "budgetPeriod",
  "periodStart", "periodSpent", "alertThresholds", "metadata", "deletionScheduledAt", "createdAt", "updatedAt",
] as const;
type AccountColumn = (typeof ACCOUNT_COLUMNS)[number];
/** PG_LISTING's page holds each sub-account as an array of ACCOUNT_COLUMNS, then its keys. */
const ACCOUNT_INDEX = Object.fromEntries(ACCOUNT_COLUMNS.map((column, index) => [column, index])) as Record<AccountColumn, number>;
const KEYS_INDEX = ACCOUNT_COLUMNS.length;

/** A key as an array of these, in this order, on both databases: JSON without a name per value. */
const KEY_COLUMNS = ["id", "name", "environment", "keyPrefix", "permissions", "createdAt", "lastUsedAt", "revokedAt", "expiresAt"] as const;

const sqliteParam = (name: string) => `@${name}`;

/**
 * SQLite: one row per sub-account of the page (ordered by id), or one row with
 * null account columns when the page is empty, each carrying the team and the
 * total (none when the team is gone). Values are read with better-sqlite3's
 * safe integers (bigint); a row costs nothing to hand over in-process.
 */
export const SQLITE_LISTING = `WITH "page" AS (
  SELECT ${ACCOUNT_COLUMNS.map((column) => `a."${column}"`).join(", ")}
    FROM "Account" a
   WHERE ${filters(sqliteParam)} AND (@after IS NULL OR a."id" > @after)
   ORDER BY a."id" LIMIT @take
)
SELECT t."id" AS "team_id", t."name" AS "team_name", t."balance" AS "team_balance", t."currency" AS "team_currency",
       t."lowBalanceThreshold" AS "team_lowBalanceThreshold", t."createdAt" AS "team_createdAt",
       (SELECT count(*) FROM "Account" a WHERE ${filters(sqliteParam)}) AS "totalCount",
       p.*,
       CASE WHEN @withKeys = 1 AND p."id" IS NOT NULL THEN (
         SELECT json_group_array(json_array(${KEY_COLUMNS.map((column) => (column === "permissions" ? `json(k."permissions")` : `k."${column}"`)).join(", ")}) ORDER BY k."id")
           FROM "ApiKey" k WHERE k."accountId" = p."id") END AS "apiKeys"
  FROM "Team" t LEFT JOIN "page" p ON 1 = 1
 WHERE t."id" = @teamId
 ORDER BY p."id"`;

/** The parameters of SQLITE_LISTING. */
export function sqliteListingParams(query: SubAccountListingQuery) {
  return { ...query, withKeys: query.withKeys ? 1 : 0 };
}

const PG_PARAMS: Record<keyof SubAccountListingQuery, string> = {
  teamId: "$1", status: "$2::text", externalId: "$3::text", after: "$4::text", take: "$5::int", withKeys: "$6::boolean",
};
const pgParam = (name: keyof SubAccountListingQuery) => PG_PARAMS[name];
/**
 * Timestamps (stored as UTC without a zone) as epoch milliseconds: read as UTC by `extract`, never as local time,
 * and a number is cheaper to turn into a Date than the driver's parse of timestamp text.
 */
const epochMs = (column: string) => `(extract(epoch from ${column}) * 1000)::float8`;
const PG_DATES = new Set(["periodStart", "deletionScheduledAt", "createdAt", "updatedAt"]);
const PG_BIGINTS = new Set(["totalSpent", "creditLimit", "budgetAmount", "periodSpent"]);

/** A column of the page as a JSON value: bigints as text (no precision lost), timestamps as epoch milliseconds. */
const pgJsonColumn = (column: string) => (PG_DATES.has(column) ? epochMs(`p."${column}"`) : PG_BIGINTS.has(column) ? `p."${column}"::text` : `p."${column}"`);
const PG_KEY_DATES = new Set(["createdAt", "lastUsedAt", "revokedAt", "expiresAt"]);
const pgKeyColumn = (column: string) => (PG_KEY_DATES.has(column) ? epochMs(`k."${column}"`) : `k."${column}"`);

/**
 * PostgreSQL: one row (none when the team is gone) with the team, the total,
 * and the page as one JSON array of sub-accounts ordered by id, each an array
 * of ACCOUNT_COLUMNS and its keys: the driver parses one JSON text, without
 * column names, instead of a row of columns per sub-account.
 */
export const PG_LISTING = `WITH "page" AS (
  SELECT ${ACCOUNT_COLUMNS.map((column) => `a."${column}"`).join(", ")}
    FROM "Account" a
   WHERE ${filters(pgParam)} AND (${pgParam("after")} IS NULL OR a."id" > ${pgParam("after")})
   ORDER BY a."id" LIMIT ${pgParam("take")}
)
SELECT t."id" AS "team_id", t."name" AS "team_name", t."balance"::text AS "team_balance", t."currency" AS "team_currency",
       t."lowBalanceThreshold"::text AS "team_lowBalanceThreshold", ${epochMs(`t."createdAt"`)} AS "team_createdAt",
       (SELECT count(*)::int FROM "Account" a WHERE ${filters(pgParam)}) AS "totalCount",
       (SELECT coalesce(json_agg(json_build_array(${ACCOUNT_COLUMNS.map(pgJsonColumn).join(", ")},
          CASE WHEN ${pgParam("withKeys")} THEN (
            SELECT coalesce(json_agg(json_build_array(${KEY_COLUMNS.map(pgKeyColumn).join(", ")}) ORDER BY k."id"), '[]'::json)
              FROM "ApiKey" k WHERE k."accountId" = p."id") END) ORDER BY p."id"), '[]'::json)
          FROM "page" p) AS "page"
  FROM "Team" t
 WHERE t."id" = $1`;

/** The parameters of PG_LISTING, in order. */
export function pgListingParams(query: SubAccountListingQuery): unknown[] {
  return [query.teamId, query.status, query.externalId, query.after, query.take, query.withKeys];
}

type Scalar = string | number | bigint | null;

/** A timestamp as either driver gives it: a Date (pg), ISO-8601 text (SQLite), or epoch milliseconds (PG_LISTING). */
export function dateOrNull(value: Scalar | Date | undefined): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  return new Date(typeof value === "bigint" ? Number(value) : value);
}

const bigintOrNull = (value: Scalar) => (value === null ? null : BigInt(value));
/** A JSON column of SQLite (text, or NULL). */
const sqliteJson = (value: unknown) => (typeof value === "string" ? (JSON.parse(value) as unknown) : null);
/** A JSON value of PG_LISTING's page, parsed with it. */
const parsedJson = (value: unknown) => value ?? null;

type KeyJson = [string, string, string, string, unknown, Scalar, Scalar, Scalar, Scalar];

function keyOf([id, name, environment, keyPrefix, permissions, createdAt, lastUsedAt, revokedAt, expiresAt]: KeyJson): ListedApiKey {
  return {
    id,
    name,
    environment,
    keyPrefix,
    permissions,
    createdAt: dateOrNull(createdAt)!,
    lastUsedAt: dateOrNull(lastUsedAt),
    revokedAt: dateOrNull(revokedAt),
    expiresAt: dateOrNull(expiresAt),
    account: { kind: "sub" },
  };
}

type Row = Record<string, unknown>;

/**
 * A sub-account from `value`, which reads a column of its row (SQLite) or of
 * its array (PostgreSQL), `keys` its keys (null: not read); `json` reads its
 * JSON columns.
 */
function subAccountOf(value: (column: AccountColumn) => unknown, keys: KeyJson[] | null, teamId: string, json: (value: unknown) => unknown): ListedSubAccount {
  const scalar = value as (column: AccountColumn) => Scalar;
  return {
    id: scalar("id") as string,
    teamId,
    kind: "sub",
    name: scalar("name") as string,
    externalId: scalar("externalId") as string | null,
    status: scalar("status") as string,
    totalSpent: BigInt(scalar("totalSpent")!),
    creditLimit: bigintOrNull(scalar("creditLimit")),
    chargeCount: Number(scalar("chargeCount")),
    budgetAmount: bigintOrNull(scalar("budgetAmount")),
    budgetPeriod: scalar("budgetPeriod") as string | null,
    periodStart: dateOrNull(scalar("periodStart")),
    periodSpent: BigInt(scalar("periodSpent")!),
    alertThresholds: json(value("alertThresholds")),
    metadata: json(value("metadata")),
    deletionScheduledAt: dateOrNull(scalar("deletionScheduledAt")),
    createdAt: dateOrNull(scalar("createdAt"))!,
    updatedAt: dateOrNull(scalar("updatedAt"))!,
    apiKeys: keys === null ? [] : keys.map(keyOf),
  };
}

function teamOf(row: Row): ListedTeam {
  const s = row as Record<string, Scalar>;
  return {
    id: s.team_id as string,
    name: s.team_name as string,
    balance: BigInt(s.team_balance!),
    currency: s.team_currency as string,
    lowBalanceThreshold: bigintOrNull(s.team_lowBalanceThreshold!),
    createdAt: dateOrNull(s.team_createdAt)!,
  };
}

/** The listing from the rows of SQLITE_LISTING. */
export function sqliteListingOf(rows: Row[]): SubAccountListing {
  const first = rows[0];
  if (!first) return { team: null, totalCount: 0, rows: [] };
  const team = teamOf(first);
  const accounts = rows
    .filter((row) => row.id != null)
    .map((row) => subAccountOf((column) => row[column], sqliteJson(row.apiKeys) as KeyJson[] | null, team.id, sqliteJson));
  return { team, totalCount: Number(first.totalCount), rows: accounts };
}

/** The listing from the row of PG_LISTING. */
export function pgListingOf(rows: Row[]): SubAccountListing {
  const first = rows[0];
  if (!first) return { team: null, totalCount: 0, rows: [] };
  const team = teamOf(first);
  const accounts = (first.page as unknown[][]).map((values) =>
    subAccountOf((column) => values[ACCOUNT_INDEX[column]], values[KEYS_INDEX] as KeyJson[] | null, team.id, parsedJson),
  );
  return { team, totalCount: Number(first.totalCount), rows: accounts };
}
