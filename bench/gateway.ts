import { Proc, TSX, childEnv, freePort, rssKib, scriptPid, waitUntil } from "./lib/proc.ts";

export interface GatewayProcess {
  label: string;
  url: string;
  proc: Proc;
  /** The node process running src/main.ts (tsx's child), whose memory we read. */
  nodePid: number;
  rssKib(): number;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  label: string;
  databaseUrl: string;
  redisUrl?: string;
  redisPrefix?: string;
  /** e.g. "--inspect-port=127.0.0.1:0": an inspector that stays off until SIGUSR1 (profiles, memory after GC). */
  nodeOptions?: string;
}

/** Starts the gateway exactly as `npm start` does (tsx src/main.ts) on a free port; resolves once /healthz answers. */
export async function startGatewayProcess(options: GatewayOptions): Promise<GatewayProcess> {
  const port = await freePort();
  const env = childEnv({
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    REDIS_PREFIX: options.redisPrefix,
    LOG_LEVEL: "warn",
    DEMO_TEAM: "false",
    // The default carrier simulation: each charged message is advanced to sent, then delivered, 500 ms apart.
    DELIVERY_STEP_MS: "500",
    // Disables the per-key rate limiter (where the gateway has one): the bench measures capacity, not the limit.
    RATE_LIMIT_RPS: "0",
    NODE_OPTIONS: options.nodeOptions,
  });
  const proc = new Proc(options.label, TSX, ["src/main.ts"], env);
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(`${options.label} to answer /healthz`, 90_000, async () => {
    if (!proc.running) throw new Error(`${options.label} exited during start\n${proc.output()}`);
    const response = await fetch(`${url}/healthz`).catch(() => null);
    return response?.ok ? true : undefined;
  });
  const nodePid = scriptPid(proc.pid);
  return { label: options.label, url, proc, nodePid, rssKib: () => rssKib(nodePid), stop: () => proc.stop() };
}

export interface GraphQLResult<T = any> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export async function graphql<T = any>(url: string, key: string | null, query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResult<T>> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: GraphQLResult["errors"] };
  return { status: response.status, ...body };
}

/** A GraphQL request that must succeed: throws with the errors otherwise. */
export async function graphqlOk<T = any>(url: string, key: string | null, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const result = await graphql<T>(url, key, query, variables);
  if (result.status !== 200 || result.errors?.length || !result.data) {
    throw new Error(`GraphQL request to ${url} failed (HTTP ${result.status}): ${JSON.stringify(result.errors ?? result)}`);
  }
  return result.data;
}
