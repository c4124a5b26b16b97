import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const SOURCE = new URL("../prisma/schema.prisma", import.meta.url);
export const TARGET = new URL("../prisma/postgresql/schema.prisma", import.meta.url);

const HEADER = `// GENERATED from prisma/schema.prisma by \`npm run prisma:sync\`: do not edit.
// The models are the SQLite schema's, unchanged; a test fails when they drift.
`;

/** The PostgreSQL schema: the same models, another provider, another client output, no Pothos types. */
export function postgresSchemaFrom(sqlite: string): string {
  const replaced = sqlite
    .replace(/^\/\/ The single source of truth[\s\S]*?\n\n/, "")
    .replace(/generator pothos \{[\s\S]*?\n\}\n\n/, "")
    .replace('output     = "../src/generated/sqlite"', 'output     = "../../src/generated/postgresql"')
    .replace('provider = "sqlite"', 'provider = "postgresql"')
    .replace('url      = "file:../data/gateway.db"', 'url      = "postgresql://localhost/unused-the-adapter-connects"');
  return HEADER + replaced;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(TARGET, postgresSchemaFrom(readFileSync(SOURCE, "utf8")));
  process.stdout.write("prisma/postgresql/schema.prisma written\n");
}
