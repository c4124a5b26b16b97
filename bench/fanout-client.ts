import { createInterface } from "node:readline";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { isEntryPoint, tsxProc, type Proc } from "./lib/proc.ts";
import { latencySummary } from "./lib/stats.ts";

/**
 * The fan-out client: one process holding many graphql-ws connections, each
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

async function main(spec: FanoutSpec): Promise<void> {
  const clients: Client[] = [];
  const counts = new Uint32Array(spec.subscribers);
  let latencies: number[] = [];
  let errors = 0;
  let ended = 0;
  let primeWaiter: (() => void) | null = null;
  const allHaveOne = () => counts.every((count) => count > 0);

  async function open(index: number): Promise<void> {
    const url = spec.urls[index % spec.urls.length]!.replace(/^http/, "ws") + "/graphql";
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${spec.key}` },
      lazy: false,
      retryAttempts: 0,
      onNonLazyError: () => {},
    });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.on("connected", () => resolve());
      client.on("closed", (event) => reject(new Error(`subscriber ${index} closed before being acknowledged: ${JSON.stringify(event)}`)));
    });
    client.subscribe<{ spendUpdated: { chargedAt: string } }>(
      { query: SPEND_SUBSCRIPTION },
      {
        next: (value) => {
          const received = Date.now();
          if (value.errors) errors += value.errors.length;
          const update = value.data?.spendUpdated;
          if (!update) return;
          counts[index]! += 1;
          latencies.push(received - Date.parse(update.chargedAt));
          if (primeWaiter && allHaveOne()) primeWaiter();
        },
        error: () => {
          errors += 1;
          ended += 1;
        },
        complete: () => {
          ended += 1;
        },
      },
    );
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
      await Promise.all(clients.map((client) => client.dispose()));
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
