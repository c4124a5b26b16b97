import http from "node:http";
import { ERROR_STATUS } from "../../src/domain/errors.ts";

/** The error codes of README.md's "Errors". */
export const ERROR_CODES = new Set(Object.keys(ERROR_STATUS));

export interface RawResponse {
  status: number;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  json: any;
  headers: http.IncomingHttpHeaders;
}

export interface RawRequest {
  method: string;
  /** Path and query string, already percent-encoded where needed. */
  path: string;
  headers?: Record<string, string>;
  /** Sent as is (a string may be anything, malformed JSON included). */
  body?: string | Buffer;
}

/** One HTTP request over a keep-alive agent, whatever its method, headers and body; fails if no answer comes within `timeoutMs`. */
export function sendRaw(baseUrl: string, request: RawRequest, agent: http.Agent, timeoutMs = 15_000): Promise<RawResponse> {
  const payload = request.body === undefined ? undefined : Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body, "utf8");
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      `${baseUrl}${request.path}`,
      {
        method: request.method,
        agent,
        headers: { ...(payload ? { "content-length": String(payload.length) } : {}), ...request.headers },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: any;
          try {
            json = text === "" ? undefined : JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: response.statusCode ?? 0, text, json, headers: response.headers });
        });
        response.on("error", reject);
      },
    );
    outgoing.on("error", reject);
    outgoing.setTimeout(timeoutMs, () => outgoing.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    outgoing.end(payload);
  });
}

/**
 * What must never reach a client: stack frames, source paths, SQL, the ORM or
 * database driver's names and error codes. Upper-case SQL keywords only, so a
 * human message may still say "update the limit".
 */
const LEAK_PATTERNS: RegExp[] = [
  /\bat [^\s]*\/[^\s]*:\d+/, // "at /app/src/x.ts:12" or "at file:///..."
  /\bat (async )?[\w$.<>]+ \(/, // "at Object.method ("
  /\.(ts|js|mjs|cjs):\d+/,
  /node_modules/,
  /\b(SELECT|INSERT INTO|UPDATE "|DELETE FROM|RETURNING|WHERE "|BEGIN|COMMIT|ROLLBACK)\b/,
  /prisma/i,
  /sqlite/i,
  /postgres/i,
  /\bpg_|\bPG::|\bP[0-9]{4}\b|SQLSTATE|constraint failed|violates|duplicate key|invalid byte sequence|syntax error at or near/i,
  /TypeError|ReferenceError|RangeError|Cannot read propert|undefined is not|is not a function/,
  /ECONNREFUSED|ECONNRESET/,
];

function collectStrings(value: unknown, into: string[]): string[] {
  if (typeof value === "string") into.push(value);
  else if (Array.isArray(value)) value.forEach((item) => collectStrings(item, into));
  else if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      into.push(key);
      collectStrings(item, into);
    }
  }
  return into;
}

/** Every string (values and object keys) a request carried: a response may echo them back. */
export function echoableStrings(...values: unknown[]): string[] {
  const strings = values.flatMap((value) => collectStrings(value, []));
  return [...new Set(strings.filter((s) => s.length >= 2))].sort((a, b) => b.length - a.length);
}

/**
 * The first leak in a response (its text and the pattern it matched), or null.
 * Strings the request itself carried are removed first: an error message may
 * quote the id or name the caller sent, which is not a leak.
 */
export function findLeak(response: unknown, echoed: string[]): string | null {
  for (const original of collectStrings(response, [])) {
    let text = original;
    for (const sent of echoed) if (text.includes(sent)) text = text.split(sent).join(" ");
    for (const pattern of LEAK_PATTERNS) {
      const match = pattern.exec(text);
      if (match) return `${JSON.stringify(original.slice(0, 300))} matches ${pattern}`;
    }
  }
  return null;
}

/**
 * The rules of README.md's "Errors" for one GraphQL response: every error has a
 * known code; a response whose errors all share one code has that code's HTTP
 * status; a 200 has data and no error. Returns what is wrong, or null.
 */
export function graphqlContractProblem(status: number, body: any): string | null {
  if (!body || typeof body !== "object") return `the body is not a JSON object`;
  const errors: any[] | undefined = body.errors;
  if (!errors || errors.length === 0) {
    return status === 200 ? null : `status ${status} without errors`;
  }
  for (const error of errors) {
    const code = error?.extensions?.code;
    if (!ERROR_CODES.has(code)) return `error code ${JSON.stringify(code)} is not one of README.md's "Errors" (${JSON.stringify(error?.message)})`;
    if (typeof error.message !== "string" || error.message.length === 0) return `an error without a message`;
  }
  const codes = new Set(errors.map((error) => error.extensions.code as keyof typeof ERROR_STATUS));
  if (codes.size === 1) {
    const expected = ERROR_STATUS[[...codes][0]!];
    if (status !== expected) return `status ${status} for an error with code ${[...codes][0]} (expected ${expected})`;
  }
  return null;
}

/**
 * The rules of README.md's "Errors" for one REST response. A known path asked
 * with a method it does not take is 405 invalid_request, naming the methods in
 * `Allow` (passed as `allow`).
 */
export function restContractProblem(status: number, body: any, allow?: string | null): string | null {
  if (status < 400) return null;
  if (!body || typeof body !== "object") return `an error status ${status} without a JSON body`;
  if (!ERROR_CODES.has(body.code)) return `error code ${JSON.stringify(body.code)} is not one of README.md's "Errors"`;
  if (typeof body.message !== "string" || body.message.length === 0) return `an error without a message`;
  if (status === 405) {
    if (body.code !== "invalid_request") return `405 with code ${body.code} (expected invalid_request)`;
    return allow === undefined || (allow && allow.length > 0) ? null : `405 without an Allow header`;
  }
  const expected = ERROR_STATUS[body.code as keyof typeof ERROR_STATUS];
  if (status !== expected) return `status ${status} for code ${body.code} (expected ${expected})`;
  return null;
}

/** Statuses a refusal may have: those of section 3, plus 413 for an oversized body and 405 for a wrong method. */
export function isRefusal(status: number): boolean {
  return status >= 400 && status < 500;
}
