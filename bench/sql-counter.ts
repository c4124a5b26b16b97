import { loadConfig } from "../src/config.ts";
import { openDatabase, type Database } from "../src/db/client.ts";
import { createLogger } from "../src/logger.ts";
import { createGateway } from "../src/server.ts";
import { finishWith, isEntryPoint, runJsonScript, scriptInput } from "./lib/proc.ts";
import { LISTING_QUERY } from "./queries.ts";

/**
 * SQL statements per request: the gateway in a process of its own, in-process
 * as the tests run it (createGateway over real HTTP), with every statement
 * Prisma sends counted, plus the calls to the raw-SQL charge store (key
 * last-used touches), which bypass Prisma.
 */
export interface SqlCountSpec {
  databaseUrl: string;
  mainKey: string;
  /** Sub-accounts the team has, to check the listing returned them all. */
  expected: number;
}

export interface SqlCountResult {
  /** Statements of the first request (cold: includes the key's lastUsedAt touch). */
  firstRequest: number;
  /** Statements of a later request (steady state): the figure the target is about. */
  steadyRequest: number;
  statements: string[];
  returned: number;
}

export function countListingSql(spec: SqlCountSpec): Promise<SqlCountResult> {
  return runJsonScript<SqlCountResult>("SQL counter", "bench/sql-counter.ts", spec, 120_000);
}

async function count(spec: SqlCountSpec): Promise<SqlCountResult> {
  let statements: string[] = [];
  const opened = openDatabase(spec.databaseUrl, { onQuery: (sql) => statements.push(sql) });
  // Both Prisma and the hot-path store report every statement they send through onQuery.
  const db: Database = opened;
  const config = loadConfig({ DATABASE_URL: spec.databaseUrl, LOG_LEVEL: "silent", HOST: "127.0.0.1", PORT: "0", DEMO_TEAM: "false" });
  const gateway = createGateway({ config, db, logger: createLogger("silent") });
  const url = await gateway.listen(0, "127.0.0.1");

  const request = async () => {
    statements = [];
    const response = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${spec.mainKey}` },
      body: JSON.stringify({ query: LISTING_QUERY }),
    });
    const result = (await response.json()) as { data?: { subAccounts: { edges: unknown[] } }; errors?: unknown[] };
    if (result.errors || !result.data) throw new Error(`listing failed: ${JSON.stringify(result.errors)}`);
    // The touch of lastUsedAt is fire-and-forget: let it land in this request's count.
    await new Promise((resolve) => setTimeout(resolve, 200));
    return { count: statements.length, statements: [...statements], returned: result.data.subAccounts.edges.length };
  };

  const first = await request();
  await request();
  const steady = await request();
  await gateway.close();
  await opened.close();
  if (steady.returned !== Math.min(100, spec.expected)) throw new Error(`listing returned ${steady.returned} sub-accounts, expected ${spec.expected}`);
  return {
    firstRequest: first.count,
    steadyRequest: steady.count,
    statements: steady.statements.map((sql) => sql.replace(/\s+/g, " ").slice(0, 300)),
    returned: steady.returned,
  };
}

if (isEntryPoint(import.meta.url)) {
  count(scriptInput<SqlCountSpec>()).then(finishWith, (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
