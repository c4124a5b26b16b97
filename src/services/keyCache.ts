import { LRUCache } from "lru-cache";
import type { KeyRecord } from "../db/charges.ts";
import type { AccessChange } from "../events/types.ts";

/** What authentication keeps of a key: the key and its account, never the team's changing values (its balance). */
export type CachedKey = Omit<KeyRecord, "team">;

/** Keys kept per instance; the least recently used goes first past it. */
export const KEY_CACHE_MAX_ENTRIES = 10_000;
/** The longest KEY_CACHE_TTL_MS allowed: a lost access change may leave a key working at most this long. */
export const KEY_CACHE_TTL_MAX_MS = 1_000;

/**
 * The per-instance cache of the keys that authenticated, by key hash, so a
 * request needs no database round trip to know its caller (README.md,
 * "Scaling out"). Kept correct by access changes: the instance that makes one
 * forgets the keys at once, before answering; every other instance forgets
 * them when the event bus brings the change. If that message is lost (Redis
 * down or stalled), an entry still lives at most `ttlMs`: the bound on how
 * long a revoked, suspended or narrowed key can keep working anywhere.
 *
 * Only keys that authenticated are kept, so a refused key (revoked, expired,
 * inactive account, unknown) is read again on every request, and a
 * reactivated account's keys work at once. Expiry needs no event: it is
 * checked on every request against the cached `expiresAt`.
 */
export class KeyCache {
  readonly #entries: LRUCache<string, CachedKey> | null;

  /** `ttlMs` 0 turns the cache off: every request reads its key. */
  constructor(ttlMs: number, maxEntries: number = KEY_CACHE_MAX_ENTRIES) {
    this.#entries = ttlMs > 0 ? new LRUCache<string, CachedKey>({ max: maxEntries, ttl: Math.min(ttlMs, KEY_CACHE_TTL_MAX_MS) }) : null;
  }

  get(keyHash: string): CachedKey | undefined {
    return this.#entries?.get(keyHash);
  }

  remember(keyHash: string, key: CachedKey): void {
    this.#entries?.set(keyHash, key);
  }

  /** Records a refreshed lastUsedAt, so the key is not touched again before its resolution has passed. */
  touched(keyHash: string, at: Date): void {
    const entry = this.#entries?.get(keyHash);
    if (entry) entry.lastUsedAt = at;
  }

  /** Forgets every key the change concerns; returns how many were forgotten. */
  forget(change: AccessChange): number {
    if (!this.#entries) return 0;
    const concerned: string[] = [];
    for (const [keyHash, key] of this.#entries.entries()) {
      const hit = change.type === "account_suspended" ? key.account.id === change.accountId : change.apiKeyIds.includes(key.id);
      if (hit) concerned.push(keyHash);
    }
    for (const keyHash of concerned) this.#entries.delete(keyHash);
    return concerned.length;
  }

  get size(): number {
    return this.#entries?.size ?? 0;
  }
}
