import { createInterface } from "node:readline";
import WebSocket from "ws";
import { isEntryPoint, tsxProc, type Proc } from "./lib/proc.ts";
import { latencySummary } from "./lib/stats.ts";

/**
 * The fan-out client: one process holding many graphql-ws connections (the
 * graphql-transport-ws protocol over the `ws` package, parsed as little as a
 * measurement needs), each
 * with one `spendUpdated` subscription of a main key (all its sub-accounts).
 * Driven over stdin/stdout by the orchestrator:
 *   it prints CONNECTED once every connection is acknowledged;
 *   PRIME  -> it prints PRIMED once every subscriber has had an event (so all are registered), then forgets them;
 *   FINISH -> it prints the JSON result and exits.
 */
export interface FanoutSpec {
  urls: string[];
  key: string;
  subscribers: number;
}

export interface FanoutResult {
  subscribers: number;
  deliveries: number;
  /** Events per subscriber: every subscriber should see every charge of the team. */
  perSubscriber: { min: number; max: number };
  /** Receipt time (Date.now() in this process) minus the event's chargedAt, in ms. */
  latencyMs: { p50: number; p90: number; p99: number; mean: number; max: number };
  errors: number;
  ended: number;
}

export const SPEND_SUBSCRIPTION = `subscription { spendUpdated { subAccount { id totalSpent creditLimit status } amount messageId teamBalance remainingCredit limitReached chargedAt sequence } }`;

export function startFanoutClient(spec: FanoutSpec): Proc {
  return tsxProc("fan-out client", "bench/fanout-client.ts", [JSON.stringify(spec)]);
}

/**
 * PRIME: `trigger` makes one event every subscriber must see; resolves once all have had it (so every
 * subscription is registered) and the client has forgotten it: the measured window starts.
 */
export async function primeFanoutClient(client: Proc, trigger: () => Promise<unknown>): Promise<void> {
  const primed = client.waitForLine((line) => line === "PRIMED", 60_000);
  client.write("PRIME");
  await trigger();
  await primed;
}

/** FINISH: the client's result; the client process then exits. */
export async function finishFanoutClient(client: Proc): Promise<FanoutResult> {
  const resultLine = client.waitForLine((line) => line.startsWith("{"), 60_000);
  client.write("FINISH");
  return JSON.parse(await resultLine) as FanoutResult;
}

/** Where an event's chargedAt starts in a `next` message: found without parsing the whole message. */
const CHARGED_AT = '"chargedAt":"';

/**
 * The time a `next` message's event was charged, in ms since the epoch, or null. The client parses no more of
 * a message than this: at 10,000 deliveries a second a full parse per message would make the measuring
 * process the bottleneck, and its queue would be counted as the gateway's latency.
 */
function chargedAtOf(text: string): number | null {
  const at = text.indexOf(CHARGED_AT);
  return at < 0 ? null : Date.parse(text.slice(at + CHARGED_AT.length, at + CHARGED_AT.length + 24));
}

async function main(spec: FanoutSpec): Promise<void> {
  const sockets: WebSocket[] = [];
  const counts = new Uint32Array(spec.subscribers);
  let latencies: number[] = [];
  let errors = 0;
  let ended = 0;
  let primeWaiter: (() => void) | null = null;
  const allHaveOne = () => counts.every((count) => count > 0);

  // The graphql-transport-ws protocol by hand (what graphql-ws's client does, minus its per-message work).
  function open(index: number): Promise<void> {
    const url = spec.urls[index % spec.urls.length]!.replace(/^http/, "ws") + "/graphql";
    const socket = new WebSocket(url, "graphql-transport-ws");
    sockets.push(socket);
    return new Promise<void>((resolve, reject) => {
      socket.on("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${spec.key}` } })));
      socket.on("error", reject);
      socket.on("close", (code, reason) => {
        ended += 1;
        reject(new Error(`subscriber ${index} closed: ${code} ${reason.toString()}`));
      });
      socket.on("message", (data) => {
        const received = Date.now();
        const text = data.toString();
        if (text.startsWith('{"id":"1","type":"next"')) {
          if (text.includes('"errors"')) errors += 1;
          const chargedAt = chargedAtOf(text);
          if (chargedAt === null) return;
          counts[index]! += 1;
          latencies.push(received - chargedAt);
          if (primeWaiter && allHaveOne()) primeWaiter();
        } else if (text.includes('"type":"connection_ack"')) {
          socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: SPEND_SUBSCRIPTION } }));
          resolve();
        } else if (text.includes('"type":"ping"')) {
          socket.send('{"type":"pong"}');
        } else if (text.includes('"type":"error"') || text.includes('"type":"complete"')) {
          errors += text.includes('"type":"error"') ? 1 : 0;
          ended += 1;
        }
      });
    });
  }

  // In batches: a thousand handshakes at once would measure the accept queue, not the subscriptions.
  for (let start = 0; start < spec.subscribers; start += 50) {
    await Promise.all(Array.from({ length: Math.min(50, spec.subscribers - start) }, (_, offset) => open(start + offset)));
  }
  process.stdout.write("CONNECTED\n");

  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "PRIME") {
      if (!allHaveOne()) await new Promise<void>((resolve) => (primeWaiter = resolve));
      primeWaiter = null;
      counts.fill(0);
      latencies = [];
      errors = 0;
      process.stdout.write("PRIMED\n");
    } else if (line === "FINISH") {
      const result: FanoutResult = {
        subscribers: spec.subscribers,
        deliveries: latencies.length,
        perSubscriber: { min: Math.min(...counts), max: Math.max(...counts) },
        latencyMs: latencySummary(latencies),
        errors,
        ended,
      };
      for (const socket of sockets) socket.terminate();
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    }
  }
}

if (isEntryPoint(import.meta.url)) {
  main(JSON.parse(process.argv[2]!) as FanoutSpec).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
