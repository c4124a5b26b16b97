import { existsSync } from "node:fs";
import path from "node:path";
import { Proc, ROOT, TSX, childEnv, freePort, waitUntil } from "./lib/proc.ts";

/**
 * The peer: PostGraphile v5 serving the gateway's own PostgreSQL tables, in a
 * process of its own (bench/peer/serve.ts). It has no authentication and no
 * business rules: it is the listing's "generic GraphQL over the same tables"
 * reference. PostGraphile is not a dependency of the project (it declares
 * Node 22): the first benchmark that needs it installs it into
 * bench/peer/node_modules from bench/peer/package-lock.json.
 */

const PEER_DIR = path.join(ROOT, "bench", "peer");

/** The same 100 sub-accounts, with their keys and the team balance, in PostGraphile's generated names. */
export const POSTGRAPHILE_LISTING = `query Listing($teamId: String!) {
  allAccounts(first: 100, condition: { teamId: $teamId, kind: "sub" }, orderBy: PRIMARY_KEY_ASC) {
    totalCount
    nodes { rowId name totalSpent creditLimit apiKeysByAccountId { nodes { rowId } } teamByTeamId { balance } }
  }
}`;

/** Installs the peer's packages (npm ci in bench/peer) unless they already are. */
export async function ensurePostgraphileInstalled(log: (message: string) => void = () => {}): Promise<void> {
  if (existsSync(path.join(PEER_DIR, "node_modules", "postgraphile", "package.json"))) return;
  log("installing PostGraphile for the benchmark into bench/peer/node_modules (once; it declares Node 22, see bench/peer/serve.ts)");
  // --prefix: this directory, whatever npm_config_* the parent `npm run bench` passes down.
  const install = new Proc("npm ci (bench/peer)", "npm", ["ci", "--prefix", PEER_DIR, "--no-audit", "--no-fund", "--loglevel=error"], childEnv());
  await install.finished(600_000);
}

export async function startPostgraphile(databaseUrl: string, log?: (message: string) => void): Promise<{ url: string; proc: Proc; stop(): Promise<void> }> {
  await ensurePostgraphileInstalled(log);
  const port = await freePort();
  const proc = new Proc("PostGraphile peer", TSX, [path.join(PEER_DIR, "serve.ts")], childEnv({ PORT: String(port), PEER_DATABASE_URL: databaseUrl, GRAPHILE_ENV: "production" }));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil("PostGraphile to answer", 120_000, async () => {
    if (!proc.running) throw new Error(`PostGraphile exited\n${proc.output()}`);
    const response = await fetch(`${url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ __typename }" }) }).catch(() => null);
    return response?.ok ? true : undefined;
  });
  return { url, proc, stop: () => proc.stop() };
}
