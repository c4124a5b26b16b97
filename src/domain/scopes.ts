/**
 * The scopes an API key's `permissions` may hold (README.md, "API keys and
 * scopes"): each operation needs one, checked by the service that runs it.
 */
export const SCOPES = [
  "messages:send",
  "messages:read",
  "balance:read",
  "spend:read",
  "sub_accounts:read",
  "sub_accounts:write",
  "api_keys:write",
  "webhooks:write",
  "audit:read",
  "team:write",
] as const;

export type Scope = (typeof SCOPES)[number];

/** What a sub-account key may hold: no management scope, whatever is asked. */
export const SUB_ACCOUNT_SCOPES: readonly Scope[] = ["messages:send", "messages:read", "balance:read", "spend:read"];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** Every scope a key of this kind may hold. */
export function scopesOfKind(kind: "main" | "sub"): readonly Scope[] {
  return kind === "main" ? SCOPES : SUB_ACCOUNT_SCOPES;
}

/**
 * The scopes a key holds: its stored permissions, or, when none are stored
 * (omitted or empty), every scope its kind may hold. Anything its kind may not
 * hold, or that is no scope at all, is dropped, whatever was stored.
 */
export function effectiveScopes(kind: "main" | "sub", stored: unknown): readonly Scope[] {
  const allowed = scopesOfKind(kind);
  if (!Array.isArray(stored) || stored.length === 0) return allowed;
  return allowed.filter((scope) => stored.includes(scope));
}

/** Holds every scope its kind may: what the team's guaranteed main key must have. */
export function holdsEveryScope(kind: "main" | "sub", stored: unknown): boolean {
  return effectiveScopes(kind, stored).length === scopesOfKind(kind).length;
}
