import type { ServerResponse } from "node:http";
import type { EdgeError } from "../edge/errors.ts";
import { sendJson } from "../edge/http.ts";

/** The services name input fields as GraphQL arguments ("input.name"); REST bodies have no `input` wrapper. */
function withoutInputPrefix(text: string): string {
  return text.replace(/\binput\./g, "");
}

function restDetails(details: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!details) return undefined;
  const out: Record<string, unknown> = { ...details };
  if (typeof out.field === "string") out.field = withoutInputPrefix(out.field) || undefined;
  if (Array.isArray(out.issues)) {
    out.issues = out.issues.map((issue: { field?: unknown; message?: unknown }) =>
      typeof issue?.field === "string" ? { ...issue, field: withoutInputPrefix(issue.field) } : issue,
    );
  }
  if (out.field === undefined) delete out.field;
  return out;
}

/** An EdgeError as a REST answer: `{ code, message, details? }` with its status (README.md, "Errors"). */
export function sendRestError(res: ServerResponse, error: EdgeError): void {
  const invalid = error.code === "invalid_request";
  const details = invalid ? restDetails(error.details) : error.details;
  const body = { code: error.code, message: invalid ? withoutInputPrefix(error.message) : error.message, ...(details ? { details } : {}) };
  // A 409 (an idempotency key reused) will not change on retry; tell the SDK not to.
  const retry: Record<string, string> = error.code === "conflict" ? { "x-should-retry": "false" } : {};
  sendJson(res, error.status, body, { ...retry, ...error.headers });
}
