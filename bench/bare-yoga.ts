import { createServer } from "node:http";
import { createSchema, createYoga } from "graphql-yoga";
import { Proc, TSX, childEnv, freePort, isEntryPoint, waitUntil } from "./lib/proc.ts";

/** The same stack's ceiling: graphql-yoga on node:http answering a constant field, nothing else. */
export const BARE_QUERY = "{ hello }";

export async function startBareYoga(): Promise<{ url: string; proc: Proc; stop(): Promise<void> }> {
  const port = await freePort();
  const proc = new Proc("bare graphql-yoga", TSX, ["bench/bare-yoga.ts"], childEnv({ PORT: String(port) }));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil("the bare yoga server", 60_000, async () => {
    if (!proc.running) throw new Error(`bare yoga exited\n${proc.output()}`);
    const response = await fetch(`${url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: BARE_QUERY }) }).catch(() => null);
    return response?.ok ? true : undefined;
  });
  return { url, proc, stop: () => proc.stop() };
}

if (isEntryPoint(import.meta.url)) {
  const yoga = createYoga({
    schema: createSchema({ typeDefs: "type Query { hello: String }", resolvers: { Query: { hello: () => "world" } } }),
    graphqlEndpoint: "/graphql",
    landingPage: false,
    graphiql: false,
    logging: false,
  });
  const server = createServer(yoga);
  server.listen(Number(process.env.PORT), "127.0.0.1");
  process.once("SIGTERM", () => server.close(() => process.exit(0)));
}
