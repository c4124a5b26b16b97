import autocannon from "autocannon";
import { performance } from "node:perf_hooks";
import { finishWith, isEntryPoint, runJsonScript, scriptInput } from "./lib/proc.ts";

/**
 * The load driver: autocannon, always in a child process of its own, never in
 * the process under test. Either one fixed request (a query) or charged
 * sendMessage calls spread round-robin over sub-account keys, each with a
 * unique idempotencyKey.
 */
export interface LoadSpec {
  label: string;
  /** Connections are spread round-robin over these (several gateway instances). */
  urls: string[];
  connections: number;
  /** Seconds. */
  duration: number;
  /** A fixed GraphQL request. */
  query?: { body: string; key?: string };
  /** Charged sends instead. */
  send?: { keys: string[]; runId: string };
  /**
   * Sends per second, evenly spaced (one every 1/rate s, each without waiting for the one before), instead of
   * as fast as possible. Not autocannon's overallRate: that releases each connection's quota at the start of
   * every second, so "10 a second" arrives as a burst of 10 (which a fan-out measurement would report as latency).
   */
  overallRate?: number;
}

export interface LoadResult {
  label: string;
  seconds: number;
  /** 2xx responses without GraphQL errors. */
  ok: number;
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; mean: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Error codes of refused or failed requests (e.g. insufficient_balance), counted. */
  failures: Record<string, number>;
}

export const SEND_MUTATION = "mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id cost } }";
/** 1 cent with the built-in price table: one GSM-7 SMS segment to +1. */
export const SEND_INPUT = { to: "+14155550100", text: "Your verification code is 123456" };

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return runJsonScript<LoadResult>(`load: ${spec.label}`, "bench/load.ts", spec, (spec.duration + 60) * 1000);
}

function errorCode(body: string): string {
  try {
    const parsed = JSON.parse(body) as { errors?: { extensions?: { code?: string } }[] };
    return parsed.errors?.[0]?.extensions?.code ?? "graphql_error";
  } catch {
    return "unparseable";
  }
}

/** Charged sends at an even pace: send n leaves at start + n / rate seconds, round-robin over the instances and keys. */
async function driveSteady(spec: LoadSpec & { send: NonNullable<LoadSpec["send"]>; overallRate: number }): Promise<LoadResult> {
  const failures: Record<string, number> = {};
  const latencies: number[] = [];
  const intervalMs = 1000 / spec.overallRate;
  const total = Math.round(spec.duration * spec.overallRate);
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  let ok = 0;
  const sendOne = async (number: number) => {
    const begin = performance.now();
    const response = await fetch(`${spec.urls[number % spec.urls.length]}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${spec.send.keys[number % spec.send.keys.length]}` },
      body: JSON.stringify({ query: SEND_MUTATION, variables: { input: { ...SEND_INPUT, idempotencyKey: `${spec.send.runId}-${number}` } } }),
    });
    const body = await response.text();
    latencies.push(performance.now() - begin);
    if (response.status !== 200 || body.includes('"errors"')) failures[`${response.status} ${errorCode(body)}`] = (failures[`${response.status} ${errorCode(body)}`] ?? 0) + 1;
    else ok += 1;
  };
  for (let number = 0; number < total; number += 1) {
    const due = started + number * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(sendOne(number).catch(() => void (failures["network error"] = (failures["network error"] ?? 0) + 1)));
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 10) / 10;
  const mean = latencies.reduce((sum, value) => sum + value, 0) / Math.max(1, latencies.length);
  return { label: spec.label, seconds, ok, rps: ok / seconds, latencyMs: { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean, max: at(1) }, non2xx: 0, errors: 0, timeouts: 0, failures };
}

async function drive(spec: LoadSpec): Promise<LoadResult> {
  if (spec.overallRate && spec.send) return driveSteady({ ...spec, send: spec.send, overallRate: spec.overallRate });
  const failures: Record<string, number> = {};
  const fail = (code: string) => (failures[code] = (failures[code] ?? 0) + 1);
  const onResponse = (status: number, body: string) => {
    // A 200 can still carry errors (partial results): count those too.
    if (status !== 200 || body.includes('"errors"')) fail(`${status} ${errorCode(body)}`);
  };
  const baseHeaders = { "content-type": "application/json", accept: "application/json" };
  let requestNumber = 0;
  const requests = spec.send
    ? [
        {
          method: "POST" as const,
          path: "/graphql",
          setupRequest: (request: any) => {
            const { keys, runId } = spec.send!;
            const number = requestNumber++;
            request.headers = { ...baseHeaders, authorization: `Bearer ${keys[number % keys.length]}` };
            request.body = JSON.stringify({ query: SEND_MUTATION, variables: { input: { ...SEND_INPUT, idempotencyKey: `${runId}-${number}` } } });
            return request;
          },
          onResponse,
        },
      ]
    : [
        {
          method: "POST" as const,
          path: "/graphql",
          headers: { ...baseHeaders, ...(spec.query!.key ? { authorization: `Bearer ${spec.query!.key}` } : {}) },
          body: spec.query!.body,
          onResponse,
        },
      ];
  const result = await autocannon({
    url: spec.urls.length === 1 ? spec.urls[0]! : spec.urls,
    connections: spec.connections,
    duration: spec.duration,
    requests,
    ...(spec.overallRate ? { overallRate: spec.overallRate } : {}),
  });
  const ok = result["2xx"] - Object.entries(failures).filter(([code]) => code.startsWith("200 ")).reduce((sum, [, count]) => sum + count, 0);
  const seconds = result.duration;
  return {
    label: spec.label,
    seconds,
    ok,
    rps: ok / seconds,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, mean: result.latency.mean, max: result.latency.max },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    failures,
  };
}

if (isEntryPoint(import.meta.url)) {
  drive(scriptInput<LoadSpec>()).then(finishWith, (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
