import autocannon from "autocannon";
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
  /** Requests per second over all connections (a steady rate instead of as fast as possible). */
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

async function drive(spec: LoadSpec): Promise<LoadResult> {
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
