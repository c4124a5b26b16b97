import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/sqlite/client.ts";
import { PrismaClient as PostgresPrismaClient } from "../generated/postgresql/client.ts";
import type { HotPathStore } from "./charges.ts";
import { PgChargeStore } from "./pgCharges.ts";
import { SqliteChargeStore } from "./sqliteCharges.ts";
import { PgWebhookStore } from "./pgWebhooks.ts";
import { SqliteWebhookStore } from "./sqliteWebhooks.ts";
import type { WebhookStore } from "./webhookStore.ts";

/**
 * The Prisma client's type. Both generated clients have the same models (one
 * schema source), so the SQLite client's type describes either.
 */
export type Db = PrismaClient;
export type DbProvider = "sqlite" | "postgresql";

export interface Database {
  prisma: Db;
  provider: DbProvider;
  url: string;
  /** The charge rule's atomic path and the per-request reads, through the driver beside Prisma (see HotPathStore). */
  charges: HotPathStore;
  /** The webhook dispatcher's fan-out, claims and results, on a connection of their own (src/db/webhookStore.ts). */
  webhooks: WebhookStore;
  close(): Promise<void>;
}

/** How long a writer waits for SQLite's lock before giving up. */
const SQLITE_BUSY_TIMEOUT_MS = 10_000;

export function providerOf(url: string): DbProvider {
  if (url.startsWith("file:")) return "sqlite";
  if (/^postgres(ql)?:\/\//.test(url)) return "postgresql";
  throw new Error(`Unsupported DATABASE_URL scheme: ${url.split(":")[0]}`);
}

/** The file path of a `file:` URL, as the Prisma adapter reads it. */
export function sqliteFile(url: string): string {
  return url.slice("file:".length).split("?")[0]!;
}

export interface OpenOptions {
  /** Called with every SQL statement sent, by Prisma or by the hot-path store (used to count statements). */
  onQuery?: (sql: string) => void;
  /** Background connection errors (a database restart), which must not crash the process. */
  onConnectionError?: (error: unknown) => void;
}

function createPrisma(url: string, provider: DbProvider, options: OpenOptions): Db {
  const onConnectionError = options.onConnectionError ?? (() => {});
  const log = options.onQuery ? [{ emit: "event" as const, level: "query" as const }] : [];
  const prisma =
    provider === "sqlite"
      ? new PrismaClient({ adapter: new PrismaBetterSQLite3({ url, timeout: SQLITE_BUSY_TIMEOUT_MS }), log })
      : (new PostgresPrismaClient({ adapter: new PrismaPg({ connectionString: url }, { onPoolError: onConnectionError, onConnectionError }), log }) as unknown as Db);
  if (options.onQuery) {
    const onQuery = options.onQuery;
    prisma.$on("query" as never, (event: { query: string }) => onQuery(event.query));
  }
  return prisma;
}

export function openDatabase(url: string, options: OpenOptions = {}): Database {
  const provider = providerOf(url);
  const prisma = createPrisma(url, provider, options);
  const onConnectionError = options.onConnectionError ?? (() => {});
  const charges =
    provider === "sqlite"
      ? new SqliteChargeStore(sqliteFile(url), options.onQuery)
      : new PgChargeStore(url, onConnectionError, options.onQuery);
  const webhooks = provider === "sqlite" ? new SqliteWebhookStore(sqliteFile(url)) : new PgWebhookStore(url, onConnectionError);
  return {
    prisma,
    provider,
    url,
    charges,
    webhooks,
    async close() {
      await webhooks.close();
      await charges.close();
      await prisma.$disconnect();
    },
  };
}
