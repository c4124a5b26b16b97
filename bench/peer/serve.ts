import { createServer } from "node:http";

/**
 * The peer process: PostGraphile v5 (amber preset, grafserv on node:http)
 * serving the gateway's own PostgreSQL tables (PEER_DATABASE_URL) on PORT.
 * Started by startPostgraphile (bench/postgraphile-peer.ts). PostGraphile is
 * installed in bench/peer/node_modules, beside this file, not in the
 * project's node_modules; the specifiers below are plain strings so the
 * project's typecheck does not need it.
 */

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

/** A module of bench/peer/node_modules, untyped. */
const load = (specifier: string): Promise<any> => import(specifier);

async function serve(): Promise<void> {
  polyfillPromiseWithResolvers();
  const { postgraphile } = await load("postgraphile");
  const { makePgService } = await load("postgraphile/adaptors/pg");
  const { grafserv } = await load("postgraphile/grafserv/node");
  const { PostGraphileAmberPreset } = await load("postgraphile/presets/amber");
  const preset = {
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

serve().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
