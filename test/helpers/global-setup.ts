import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { applyMigrations } from "../../src/db/migrate.ts";
import { POSTGRES_ADMIN_URL, TEST_PROVIDER, postgresUrl, uniqueName, withAdmin } from "./databases.ts";

/**
 * Migrates one template database per run; each test copies it instead of
 * migrating again. On PostgreSQL a missing server fails the run (never skips).
 */
export default async function setup(project: TestProject) {
  const dir = mkdtempSync(path.join(tmpdir(), "gateway-test-"));
  const template = path.join(dir, "template.db");
  await applyMigrations(`file:${template}`);
  project.provide("sqliteTemplate", template);

  let postgresTemplate = "";
  if (TEST_PROVIDER === "postgresql") {
    postgresTemplate = uniqueName("gw_template");
    try {
      await withAdmin((client) => client.query(`CREATE DATABASE "${postgresTemplate}"`));
    } catch (error) {
      throw new Error(`PostgreSQL is required for TEST_DATABASE=postgresql but ${POSTGRES_ADMIN_URL} is unreachable: ${(error as Error).message}`);
    }
    await applyMigrations(postgresUrl(postgresTemplate));
  }
  project.provide("postgresTemplate", postgresTemplate);

  return async () => {
    rmSync(dir, { recursive: true, force: true });
    if (postgresTemplate) {
      await withAdmin(async (client) => {
        await client.query(`DROP DATABASE IF EXISTS "${postgresTemplate}" WITH (FORCE)`);
      });
    }
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    sqliteTemplate: string;
    postgresTemplate: string;
  }
}
