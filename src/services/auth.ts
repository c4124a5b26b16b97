import { hashApiKey, looksLikeApiKey, type AccountKind, type KeyEnvironment } from "../domain/apiKeys.ts";
import { DomainError, unauthorized } from "../domain/errors.ts";
import { effectiveScopes, scopesOfKind, type Scope } from "../domain/scopes.ts";
import type { Actor, ServiceDeps } from "./deps.ts";
import type { CachedKey } from "./keyCache.ts";

/** lastUsedAt is refreshed at most this often per key, so reads do not all become writes. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** The caller of a request. */
export interface Authenticated {
  actor: Actor;
}

/** What decides whether a key authenticates, and what it may do. */
export interface KeyState {
  revokedAt: Date | null;
  expiresAt: Date | null;
  permissions: unknown;
  account: { status: string; kind: string };
}

/**
 * The one rule of which keys authenticate, for requests and for open
 * subscriptions alike: a key works while it is unrevoked, unexpired, and its
 * account is active. Returns why it does not, or null when it does.
 */
export function keyRefusal(key: KeyState, now: Date): DomainError | null {
  if (key.revokedAt) return unauthorized("This API key has been revoked. Create a new key with a main-account key.");
  if (key.expiresAt && key.expiresAt.getTime() <= now.getTime()) {
    return unauthorized(`This API key expired at ${key.expiresAt.toISOString()}. Use the key that replaced it, or create a new one with a main-account key.`);
  }
  if (key.account.status !== "active") {
    return unauthorized("This sub-account is inactive, so its API keys do not authenticate. A main-account key can reactivate it.");
  }
  return null;
}

/**
 * Resolves a key to its caller, or throws `unauthorized`. The key comes from
 * this instance's key cache when it authenticated recently (src/services/keyCache.ts:
 * access changes forget it at once here, within KEY_CACHE_TTL_MS everywhere),
 * else from the database; either way keyRefusal decides, against this
 * instant, so an expiry takes effect to the millisecond.
 */
export async function authenticate(deps: ServiceDeps, key: string): Promise<Authenticated> {
  if (!looksLikeApiKey(key)) throw unauthorized("The API key is malformed. Keys look like zv_live_... or zv_live_sub_....");
  const keyHash = hashApiKey(key);
  const cached = deps.keyCache.get(keyHash);
  const row = cached ?? (await readKey(deps, keyHash));
  const now = deps.clock.now();
  const refusal = keyRefusal(row, now);
  if (refusal) {
    if (cached) deps.keyCache.forget({ type: "keys_changed", apiKeyIds: [row.id] });
    throw refusal;
  }
  // Only a fresh read starts an entry's time to live: a busy key is still read again every KEY_CACHE_TTL_MS.
  if (!cached) deps.keyCache.remember(keyHash, row);
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
    deps.keyCache.touched(keyHash, now);
    // Best effort: a failed touch must not fail the request.
    deps.store.touchApiKey(row.id, now, LAST_USED_RESOLUTION_MS).catch(() => {});
  }
  return {
    actor: {
      apiKeyId: row.id,
      accountId: row.account.id,
      teamId: row.account.teamId,
      kind: row.account.kind as AccountKind,
      environment: row.environment as KeyEnvironment,
      scopes: effectiveScopes(row.account.kind as AccountKind, row.permissions),
    },
  };
}

async function readKey(deps: ServiceDeps, keyHash: string): Promise<CachedKey> {
  const row = await deps.store.findKeyByHash(keyHash);
  if (!row) throw unauthorized("Unknown API key. Check the key, or create a new one with a main-account key.");
  return row;
}

export function requireActor(actor: Actor | null): Actor {
  if (!actor) throw unauthorized();
  return actor;
}

/**
 * The one rule of what a key may do, called by every service operation with
 * the scope it needs (README.md, "API keys and scopes"): `unauthorized` without
 * a key, `forbidden` with `details.requiredScope` when the key does not hold
 * the scope. Sub-account keys never hold a management scope, so management is
 * refused to them here too.
 */
export function authorize(actor: Actor | null, scope: Scope): Actor {
  const resolved = requireActor(actor);
  if (resolved.scopes.includes(scope)) return resolved;
  throw missingScope(resolved.kind, scope);
}

function missingScope(kind: AccountKind, scope: Scope): DomainError {
  const message = !scopesOfKind(kind).includes(scope)
    ? `This operation needs a main-account API key (scope ${scope}); sub-account keys cannot manage the team.`
    : `This API key does not hold the scope ${scope} this operation needs. Use a key that holds it, or create one with a main-account key.`;
  return new DomainError("forbidden", message, { requiredScope: scope });
}

/** Why an open subscription's key may no longer stream (it stopped authenticating, or lost the scope), or null. */
export function streamRefusal(key: KeyState, now: Date, scope: Scope): DomainError | null {
  const kind = key.account.kind as AccountKind;
  return keyRefusal(key, now) ?? (effectiveScopes(kind, key.permissions).includes(scope) ? null : missingScope(kind, scope));
}
