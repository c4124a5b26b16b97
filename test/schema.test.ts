import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { printedSchema } from "../src/graphql/schema/index.ts";
import { SOURCE, TARGET, postgresSchemaFrom } from "../scripts/postgres-schema.ts";

describe("schema.graphql", () => {
  it("is the printed schema of the code (run `npm run schema:print` to update it)", () => {
    const committed = readFileSync(new URL("../schema.graphql", import.meta.url), "utf8");
    expect(committed, "schema.graphql is stale: run `npm run schema:print` and commit the result").toBe(printedSchema());
  });
});

describe("one data model for both databases", () => {
  it("prisma/postgresql/schema.prisma is generated from prisma/schema.prisma (run `npm run prisma:sync` to update it)", () => {
    const sqlite = readFileSync(SOURCE, "utf8");
    const postgres = readFileSync(TARGET, "utf8");
    expect(postgres, "the PostgreSQL schema drifted from the SQLite one: run `npm run prisma:sync`").toBe(postgresSchemaFrom(sqlite));
  });

  it("both providers' migrations create the same tables, columns and constraints", () => {
    const objects = (sql: string) =>
      [...sql.matchAll(/CREATE (?:UNIQUE )?(?:TABLE|INDEX) "([^"]+)"|CONSTRAINT "([^"]+)"|^\s+"([A-Za-z]+)" [A-Z]/gm)]
        .map((match) => match[1] ?? match[2] ?? match[3])
        .filter((name) => !name!.endsWith("_pkey"))
        .sort();
    const migration = (folder: string) => readFileSync(new URL(`../prisma/${folder}migrations/20261122000000_init/migration.sql`, import.meta.url), "utf8");
    const sqlite = objects(migration(""));
    expect(sqlite).toContain("Account_one_main_per_team");
    expect(sqlite).toContain("Team_balance_never_negative");
    expect(sqlite.length).toBeGreaterThan(60);
    expect(objects(migration("postgresql/"))).toEqual(sqlite);
  });
});
