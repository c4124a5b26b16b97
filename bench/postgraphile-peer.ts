import { createServer } from "node:http";
// Types only (erased): the library itself is loaded by the peer process alone.
import type {} from "postgraphile";
import { Proc, TSX, childEnv, freePort, isEntryPoint, waitUntil } from "./lib/proc.ts";

/**
 * The peer: PostGraphile v5 (amber preset, grafserv on node:http) serving the
 * gateway's own PostgreSQL tables, in a process of its own. It has no
 * authentication and no business rules: it is the listing's "generic GraphQL
 * over the same tables" reference.
 */

/** The same 100 sub-accounts, with their keys and the team balance, in PostGraphile's generated names. */
export const POSTGRAPHILE_LISTING = `query Listing($teamId: String!) {
  allAccounts(first: 100, condition: { teamId: $teamId, kind: "sub" }, orderBy: PRIMARY_KEY_ASC) {
    totalCount
    nodes { rowId name totalSpent creditLimit apiKeysByAccountId { nodes { rowId } } teamByTeamId { balance } }
  }
}`;

export async function startPostgraphile(databaseUrl: string): Promise<{ url: string; proc: Proc; stop(): Promise<void> }> {
  const port = await freePort();
  const proc = new Proc("PostGraphile peer", TSX, ["bench/postgraphile-peer.ts"], childEnv({ PORT: String(port), PEER_DATABASE_URL: databaseUrl, GRAPHILE_ENV: "production" }));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil("PostGraphile to answer", 120_000, async () => {
    if (!proc.running) throw new Error(`PostGraphile exited\n${proc.output()}`);
    const response = await fetch(`${url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ __typename }" }) }).catch(() => null);
    return response?.ok ? true : undefined;
  });
  return { url, proc, stop: () => proc.stop() };
}

/**
 * PostGraphile 5.1 targets Node 22: its executor calls Promise.withResolvers
 * (Node >= 22), and on Node 20 every query silently resolves to null. The
 * standard polyfill, for the peer process only.
 */
function polyfillPromiseWithResolvers(): void {
  const promise = Promise as unknown as { withResolvers?: () => unknown };
  promise.withResolvers ??= () => {
    let resolve!: (value: unknown) => void;
    let reject!: (reason?: unknown) => void;
    const created = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise: created, resolve, reject };
  };
}

async function serve(): Promise<void> {
  polyfillPromiseWithResolvers();
  // Loaded here, not at the top: the orchestrator imports this module for startPostgraphile only.
  const { postgraphile } = await import("postgraphile");
  const { makePgService } = await import("postgraphile/adaptors/pg");
  const { grafserv } = await import("postgraphile/grafserv/node");
  const { PostGraphileAmberPreset } = await import("postgraphile/presets/amber");
  const preset: GraphileConfig.Preset = {
    extends: [PostGraphileAmberPreset],
    pgServices: [makePgService({ connectionString: process.env.PEER_DATABASE_URL!, schemas: ["public"] })],
    grafserv: { graphiql: false, watch: false },
  };
  const pgl = postgraphile(preset);
  const serv = pgl.createServ(grafserv);
  const server = createServer();
  server.on("error", (error) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  });
  serv.addTo(server).catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  });
  server.listen(Number(process.env.PORT), "127.0.0.1");
  process.once("SIGTERM", () => {
    server.close();
    void Promise.resolve(pgl.release()).finally(() => process.exit(0));
  });
}

if (isEntryPoint(import.meta.url)) {
  serve().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
