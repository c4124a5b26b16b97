import { hashApiKey, looksLikeApiKey, type AccountKind, type KeyEnvironment } from "../domain/apiKeys.ts";
import { forbidden, unauthorized } from "../domain/errors.ts";
import type { Actor, ServiceDeps } from "./deps.ts";

/** lastUsedAt is refreshed at most this often per key, so reads do not all become writes. */
const LAST_USED_RESOLUTION_MS = 60_000;

export function parseBearer(header: string | null | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header.trim());
  return match ? match[1]! : "";
}

/** The caller, and its team as read in the same statement (callers may reuse it within the request). */
export interface Authenticated {
  actor: Actor;
  team: { id: string; name: string; balance: bigint; currency: string; createdAt: Date };
}

/**
 * Resolves a bearer key to its actor, or throws `unauthorized`. A key works only
 * while it is unrevoked and its account is active; this is read fresh on every
 * call, so revocation and suspension take effect on the next request.
 */
export async function authenticate(deps: ServiceDeps, key: string): Promise<Authenticated> {
  if (!looksLikeApiKey(key)) throw unauthorized("The API key is malformed. Keys look like zv_live_... or zv_live_sub_....");
  const row = await deps.store.findKeyByHash(hashApiKey(key));
  if (!row) throw unauthorized("Unknown API key. Check the key, or create a new one with a main-account key.");
  if (row.revokedAt) throw unauthorized("This API key has been revoked. Create a new key with a main-account key.");
  if (row.account.status !== "active") {
    throw unauthorized("This sub-account is inactive, so its API keys do not authenticate. A main-account key can reactivate it.");
  }
  const now = deps.clock.now();
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
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
    },
    team: row.team,
  };
}

export function requireActor(actor: Actor | null): Actor {
  if (!actor) throw unauthorized();
  return actor;
}

/** Management operations are for main-account keys only (DESIGN.md section 2). */
export function requireMainKey(actor: Actor | null): Actor {
  const resolved = requireActor(actor);
  if (resolved.kind !== "main") throw forbidden();
  return resolved;
}
