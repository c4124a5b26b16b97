import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { inject, vi } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { openDatabase, type Database } from "../../src/db/client.ts";
import { createLogger, type Logger } from "../../src/logger.ts";
import { createGateway, type Gateway } from "../../src/server.ts";
import { ManualClock } from "../../src/services/clock.ts";
import type { Resolver } from "../../src/services/webhooks/urlSafety.ts";
import { TEST_PROVIDER, createDatabaseFromTemplate } from "./databases.ts";

export interface GraphQLResponse<T = any> {
  status: number;
  data: T;
  errors?: { message: string; path?: string[]; extensions: { code: string; details?: any } }[];
}

export interface TestGateway {
  url: string;
  gateway: Gateway;
  db: Database;
  clock: ManualClock;
  databaseUrl: string;
  /** SQL statements Prisma sent since the last reset. */
  sql: { count: number; statements: string[]; reset(): void };
  gql<T = any>(query: string, variables?: Record<string, unknown>, key?: string): Promise<GraphQLResponse<T>>;
  /** A team with a funded balance and its main key. */
  createTeam(options?: { name?: string; balance?: number }): Promise<{ teamId: string; mainAccountId: string; mainKey: string }>;
  /**
   * Resolves once the gateway holds at least `count` open spend subscriptions.
   * graphql-ws acknowledges the connection, not the subscription: a charge sent
   * right after subscribing can come before the subscription is registered.
   */
  untilSubscriptions(count: number): Promise<void>;
  close(): Promise<void>;
}

/** A fresh database to itself, for a test or a test file. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  if (TEST_PROVIDER === "postgresql") return createDatabaseFromTemplate(inject("postgresTemplate"));
  const dir = mkdtempSync(path.join(tmpdir(), "gateway-db-"));
  const file = path.join(dir, "gateway.db");
  copyFileSync(inject("sqliteTemplate"), file);
  return { url: `file:${file}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
}

/** A fresh copy of the migrated template database (SQLite, or PostgreSQL with TEST_DATABASE=postgresql), served over real HTTP on a free port. */
export async function startGateway(options: { env?: Record<string, string>; logger?: Logger; webhookResolver?: Resolver } = {}): Promise<TestGateway> {
  const database = await createTestDatabase();
  const databaseUrl = database.url;
  const sql = {
    count: 0,
    statements: [] as string[],
    reset() {
      this.count = 0;
      this.statements = [];
    },
  };
  const db = openDatabase(databaseUrl, {
    onQuery: (statement) => {
      sql.count += 1;
      sql.statements.push(statement);
    },
  });
  const config = loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: "silent", PORT: "0", HOST: "127.0.0.1", DELIVERY_STEP_MS: "20", ...options.env });
  const clock = new ManualClock();
  const gateway = createGateway({ config, db, logger: options.logger ?? createLogger("silent"), clock, webhookResolver: options.webhookResolver });
  const url = await gateway.listen(0, "127.0.0.1");

  async function gql<T>(query: string, variables?: Record<string, unknown>, key?: string): Promise<GraphQLResponse<T>> {
    const response = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data: T; errors?: GraphQLResponse["errors"] };
    return { status: response.status, data: body.data, errors: body.errors };
  }

  async function untilSubscriptions(count: number): Promise<void> {
    await vi.waitFor(
      () => {
        const open = gateway.services.openSubscriptions;
        if (open < count) throw new Error(`${open} spend subscriptions registered, waiting for ${count}`);
      },
      { timeout: 10_000, interval: 10 },
    );
  }

  return {
    url,
    gateway,
    db,
    clock,
    databaseUrl,
    untilSubscriptions,
    sql,
    gql,
    async createTeam(options = {}) {
      const created = await gateway.services.teams.createTeam({ name: options.name ?? "Test team", balance: options.balance ?? 1_000_000 });
      return { teamId: created.team.id, mainAccountId: created.mainAccount.id, mainKey: created.apiKey };
    },
    async close() {
      await gateway.close();
      await db.close();
      await database.drop();
    },
  };
}

/** The one error of a response, asserting there is exactly one. */
export function onlyError(response: GraphQLResponse) {
  if (!response.errors || response.errors.length !== 1) {
    throw new Error(`expected exactly one error, got ${JSON.stringify(response.errors)}`);
  }
  return response.errors[0]!;
}
