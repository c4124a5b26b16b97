import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import Database from "better-sqlite3";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { providerOf, sqliteFile } from "./client.ts";

/** Our own lock around `prisma migrate deploy`: Prisma's gives up after 10 s when instances start together. */
const MIGRATION_LOCK = "subaccounts-gateway:migrate";

/** Runs `action` while no other instance runs a startup step (migrations, the demo team) on this database. */
export async function withStartupLock<T>(url: string, action: () => Promise<T>): Promise<T> {
  return providerOf(url) === "postgresql" ? withPostgresLock(url, action) : action();
}

async function withPostgresLock<T>(url: string, action: () => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock(hashtext($1))", [MIGRATION_LOCK]);
    return await action();
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext($1))", [MIGRATION_LOCK]).catch(() => {});
    await client.end();
  }
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The directory of a `file:` URL, created if missing. */
function ensureSqliteDirectory(url: string): void {
  const file = url.slice("file:".length).split("?")[0]!;
  if (file && file !== ":memory:") mkdirSync(path.dirname(path.resolve(root, file)), { recursive: true });
}

/** Applies pending Prisma migrations with `prisma migrate deploy`; instances starting together take turns. */
export async function applyMigrations(url: string): Promise<void> {
  if (providerOf(url) === "postgresql") {
    return withPostgresLock(url, async () => {
      if ((await pendingPostgresMigrations(url)).length > 0) await runMigrateDeploy(url);
      await applyPostgresFunctions(url);
    });
  }
  ensureSqliteDirectory(url);
  if (pendingSqliteMigrations(url).length > 0) await runMigrateDeploy(url);
}

function migrationNames(provider: "sqlite" | "postgresql"): string[] {
  const folder = path.join(root, "prisma", ...(provider === "postgresql" ? ["postgresql"] : []), "migrations");
  return readdirSync(folder, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

const APPLIED = `SELECT "migration_name" FROM "_prisma_migrations" WHERE "finished_at" IS NOT NULL AND "rolled_back_at" IS NULL`;

/**
 * Migrations not yet applied. Spawning the Prisma CLI only when there are
 * some keeps starts and CLI commands fast, and leaves a database that
 * gateways already have open alone.
 */
function pendingSqliteMigrations(url: string): string[] {
  const file = sqliteFile(url);
  if (!existsSync(file)) return migrationNames("sqlite");
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const hasTable = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'`).get();
    const applied = new Set(hasTable ? (db.prepare(APPLIED).all() as { migration_name: string }[]).map((row) => row.migration_name) : []);
    return migrationNames("sqlite").filter((name) => !applied.has(name));
  } finally {
    db.close();
  }
}

async function pendingPostgresMigrations(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const exists = await client.query(`SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS present`);
    const applied = new Set(exists.rows[0]?.present ? (await client.query(APPLIED)).rows.map((row) => row.migration_name as string) : []);
    return migrationNames("postgresql").filter((name) => !applied.has(name));
  } finally {
    await client.end();
  }
}

async function runMigrateDeploy(url: string): Promise<void> {
  const prismaBin = path.join(root, "node_modules", "prisma", "build", "index.js");
  const output: string[] = [];
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, [prismaBin, "migrate", "deploy"], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: url, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    child.on("error", reject);
    child.on("close", (exitCode) => resolve(exitCode ?? 1));
  });
  if (code !== 0) throw new Error(`Database migration failed:\n${output.join("").trim()}`);
}

/** prisma/postgresql/functions.sql: CREATE OR REPLACE of the database functions (see that file for why not a migration). */
async function applyPostgresFunctions(url: string): Promise<void> {
  const script = readFileSync(path.join(root, "prisma", "postgresql", "functions.sql"), "utf8");
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(script);
  } finally {
    await client.end();
  }
}
