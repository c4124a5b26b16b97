import { readFileSync, readdirSync } from "node:fs";
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
    const folder = (provider: string) => new URL(`../prisma/${provider}migrations/`, import.meta.url);
    const migrationNames = (provider: string) =>
      readdirSync(folder(provider), { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
        .sort();
    const migration = (provider: string, name: string) => readFileSync(new URL(`${name}/migration.sql`, folder(provider)), "utf8");
    const names = migrationNames("");
    expect(migrationNames("postgresql/")).toEqual(names);
    for (const name of names) {
      expect(objects(migration("postgresql/", name)), `migration ${name}`).toEqual(objects(migration("", name)));
    }
    const all = names.flatMap((name) => objects(migration("", name)));
    expect(all).toContain("Account_one_main_per_team");
    expect(all).toContain("Team_balance_never_negative");
    expect(all).toContain("AuditEvent_actorType_valid");
    expect(all.length).toBeGreaterThan(70);
  });
});
