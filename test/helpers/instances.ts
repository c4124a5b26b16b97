import { randomBytes } from "node:crypto";
import { Child, START_ARGS, START_COMMAND, childEnv, freePort, waitUntil } from "./process.ts";

export interface Instance {
  url: string;
  child: Child;
  stop(): Promise<void>;
}

/** Starts `npm start`'s process on a free port with the given environment; resolves once /healthz answers. */
export async function startInstance(env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const child = new Child(START_COMMAND, START_ARGS, childEnv({ PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", DEMO_TEAM: "false", DELIVERY_STEP_MS: "20", ...env }));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(`gateway on port ${port} to answer /healthz`, 60_000, async () => {
    if (!child.running) throw new Error(`gateway exited early:\n${child.stdout}\n${child.stderr}`);
    try {
      return (await fetch(`${url}/healthz`)).ok ? true : undefined;
    } catch {
      return undefined;
    }
  });
  return { url, child, stop: () => child.stop() };
}

/** A Redis channel prefix of its own for one test run. */
export function redisPrefix(): string {
  return `gw-test-${randomBytes(5).toString("hex")}:`;
}

/** One GraphQL request to an instance, over real HTTP. */
export async function gqlAt(url: string, key: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

/** The gauge `gateway_open_subscriptions` on an instance's /metrics (Prometheus text format). */
export async function openSubscriptions(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sample = text.split("\n").find((line) => /^gateway_open_subscriptions(\{[^}]*\})? /.test(line));
  if (sample === undefined) throw new Error(`${url}/metrics has no gateway_open_subscriptions sample`);
  const value = Number(sample.slice(sample.lastIndexOf(" ") + 1));
  if (!Number.isFinite(value)) throw new Error(`unreadable sample: ${sample}`);
  return value;
}

/**
 * Resolves once the instance at `url` reports exactly `count` open subscriptions. graphql-ws
 * acknowledges the connection, not the subscription, and an SSE stream may be open before the
 * gateway has registered it: a charge sent right after subscribing could come before it.
 */
export async function untilOpenSubscriptions(url: string, count: number, timeoutMs = 10_000): Promise<void> {
  await waitUntil(`${url} to report ${count} open subscription(s)`, timeoutMs, async () => {
    const open = await openSubscriptions(url);
    if (open !== count) throw new Error(`${open} open`);
    return true;
  });
}
