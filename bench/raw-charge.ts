import { performance } from "node:perf_hooks";
import { openDatabase } from "../src/db/client.ts";
import { resolveDestination } from "../src/domain/channels.ts";
import { loadPriceTable, quote } from "../src/domain/pricing.ts";
import { chargeAttemptFor } from "../src/services/messages.ts";
import { finishWith, isEntryPoint, runJsonScript, scriptInput } from "./lib/proc.ts";
import { latencySummary } from "./lib/stats.ts";
import { SEND_INPUT, type LoadResult } from "./load.ts";

/**
 * The raw database ceiling of the charge: the gateway's own ChargeStore
 * (SqliteChargeStore / PgChargeStore, the very SQL `sendMessage` runs) driven
 * by concurrent callers in a process of its own, with no HTTP, GraphQL,
 * authentication, Prisma read-back or event publishing.
 */
export interface RawChargeSpec {
  label: string;
  databaseUrl: string;
  teamId: string;
  accounts: { id: string; apiKeyId: string }[];
  concurrency: number;
  duration: number;
  runId: string;
}

export function runRawCharges(spec: RawChargeSpec): Promise<LoadResult> {
  return runJsonScript<LoadResult>(`raw charges: ${spec.label}`, "bench/raw-charge.ts", spec, (spec.duration + 60) * 1000);
}

async function drive(spec: RawChargeSpec): Promise<LoadResult> {
  const db = openDatabase(spec.databaseUrl);
  const prices = loadPriceTable();
  const channel = resolveDestination(SEND_INPUT.to, SEND_INPUT.text, null);
  const price = quote(prices, channel, SEND_INPUT.to, SEND_INPUT.text);
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let number = 0;
  let ok = 0;
  const started = performance.now();
  const deadline = started + spec.duration * 1000;

  async function caller(index: number): Promise<void> {
    const account = spec.accounts[index % spec.accounts.length]!;
    while (performance.now() < deadline) {
      const now = new Date();
      // The attempt as the messages service builds it for a sendMessage with an idempotencyKey.
      const attempt = chargeAttemptFor(
        { teamId: spec.teamId, accountId: account.id, apiKeyId: account.apiKeyId, isTestMode: false },
        { to: SEND_INPUT.to, channel, text: SEND_INPUT.text, segments: price.segments, idempotencyKey: `${spec.runId}-${number++}`, metadata: null },
        price.cost,
        now,
      );
      const begin = performance.now();
      const result = await db.charges.charge(attempt, () => {});
      latencies.push(performance.now() - begin);
      if (result.kind === "stored") ok += 1;
      else {
        const code = result.kind === "rejected" ? result.code : result.kind;
        failures[code] = (failures[code] ?? 0) + 1;
      }
      // SQLite's store is synchronous underneath: let the other callers (and timers) have a turn.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  await Promise.all(Array.from({ length: spec.concurrency }, (_, index) => caller(index)));
  const seconds = (performance.now() - started) / 1000;
  await db.close();
  return { label: spec.label, seconds, ok, rps: ok / seconds, latencyMs: latencySummary(latencies), non2xx: 0, errors: 0, timeouts: 0, failures };
}

if (isEntryPoint(import.meta.url)) {
  drive(scriptInput<RawChargeSpec>()).then(finishWith, (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
