import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyCache, type CachedKey } from "../src/services/keyCache.ts";
import { REDIS_TEST_URL, TEST_PROVIDER } from "./helpers/databases.ts";
import { createTestDatabase, startGateway, type TestGateway } from "./helpers/gateway.ts";
import { gqlAt, redisPrefix, startInstance, type Instance } from "./helpers/instances.ts";

/**
 * Authentication without a database round trip (README.md, "Scaling out"):
 * each instance keeps the keys that authenticated for KEY_CACHE_TTL_MS. An
 * access change is seen by the next request on the instance that made it, on
 * the others as soon as the bus brings it, and within KEY_CACHE_TTL_MS (at
 * most 1 s) even when the bus message is lost.
 */

const BALANCE = `{ balance { balance } }`;
const ME = `{ viewer { apiKey { id } } }`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


function cachedKey(id: string, accountId: string): CachedKey {
  return { id, environment: "live", revokedAt: null, expiresAt: null, permissions: [], lastUsedAt: null, account: { id: accountId, teamId: "t", kind: "sub", status: "active" } };
}

describe("the key cache", () => {
  it("forgets the keys an access change names, or every key of a suspended account, and nothing else", () => {
    const cache = new KeyCache(1000);
    cache.remember("h1", cachedKey("k1", "a1"));
    cache.remember("h2", cachedKey("k2", "a1"));
    cache.remember("h3", cachedKey("k3", "a2"));
    expect(cache.forget({ type: "keys_revoked", apiKeyIds: ["k3"] })).toBe(1);
    expect([cache.get("h1")?.id, cache.get("h2")?.id, cache.get("h3")]).toEqual(["k1", "k2", undefined]);
    expect(cache.forget({ type: "account_suspended", accountId: "a1" })).toBe(2);
    expect(cache.size).toBe(0);
  });

  it("keeps an entry for its time to live from when it was read, however often it is used meanwhile", async () => {
    const cache = new KeyCache(150);
    cache.remember("h1", cachedKey("k1", "a1"));
    const until = Date.now() + 300;
    let lastSeen = 0;
    while (Date.now() < until) {
      if (cache.get("h1")) lastSeen = Date.now();
      await sleep(10);
    }
    expect(lastSeen).toBeGreaterThan(0);
    expect(cache.get("h1")).toBeUndefined();
  });

  it("holds no entry with a time to live of 0, and never more than its bound", () => {
    const off = new KeyCache(0);
    off.remember("h1", cachedKey("k1", "a1"));
    expect(off.get("h1")).toBeUndefined();
    const small = new KeyCache(1000, 2);
    for (const n of [1, 2, 3]) small.remember(`h${n}`, cachedKey(`k${n}`, "a1"));
    expect(small.size).toBe(2);
  });
});

describe(`cached keys on one instance (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;
  let mainKey: string;

  beforeAll(async () => {
    // A long time to live: what is refused below is refused because the change was seen, not because the entry aged.
    gw = await startGateway({ env: { KEY_CACHE_TTL_MS: "1000", RATE_LIMIT_RPS: "0" } });
    ({ mainKey } = await gw.createTeam());
  });
  afterAll(() => gw?.close());

  const status = async (key: string, query = BALANCE) => {
    const response = await gw.gql(query, {}, key);
    return response.errors?.[0]?.extensions.code ?? "ok";
  };

  it("the next request after a revocation, a suspension, a narrowing or a roll with no overlap is refused", async () => {
    const made = (await gw.gql(`mutation { createApiKey(input: { permissions: ["balance:read"] }) { key apiKey { id } } }`, {}, mainKey)).data.createApiKey;
    expect(await status(made.key)).toBe("ok");
    await gw.gql(`mutation($id: ID!) { updateApiKey(id: $id, input: { permissions: ["messages:read"] }) { id } }`, { id: made.apiKey.id }, mainKey);
    expect(await status(made.key)).toBe("forbidden");
    await gw.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: made.apiKey.id }, mainKey);
    expect(await status(made.key, ME)).toBe("unauthorized");

    const sub = (await gw.gql(`mutation { createSubAccount(input: { name: "Cached" }) { apiKey subAccount { id } } }`, {}, mainKey)).data.createSubAccount;
    expect(await status(sub.apiKey)).toBe("ok");
    await gw.gql(`mutation($id: ID!) { updateSubAccount(id: $id, input: { status: INACTIVE }) { id } }`, { id: sub.subAccount.id }, mainKey);
    expect(await status(sub.apiKey)).toBe("unauthorized");
    await gw.gql(`mutation($id: ID!) { updateSubAccount(id: $id, input: { status: ACTIVE }) { id } }`, { id: sub.subAccount.id }, mainKey);
    expect(await status(sub.apiKey)).toBe("ok");

    const spare = (await gw.gql(`mutation { createApiKey(input: { name: "Spare" }) { key apiKey { id } } }`, {}, mainKey)).data.createApiKey;
    expect(await status(spare.key)).toBe("ok");
    await gw.gql(`mutation($id: ID!) { rollApiKey(id: $id, expiresInSeconds: 0) { key } }`, { id: spare.apiKey.id }, mainKey);
    expect(await status(spare.key)).toBe("unauthorized");
  });

  it("a key read from the cache still expires to the millisecond", async () => {
    const expiresAt = new Date(gw.clock.now().getTime() + 60_000);
    const made = (await gw.gql(`mutation($at: DateTime!) { createApiKey(input: { name: "Short", expiresAt: $at }) { key } }`, { at: expiresAt.toISOString() }, mainKey)).data.createApiKey;
    expect(await status(made.key)).toBe("ok");
    gw.clock.set(new Date(expiresAt.getTime() - 1));
    expect(await status(made.key)).toBe("ok");
    gw.clock.set(expiresAt);
    expect(await status(made.key)).toBe("unauthorized");
  });
});

// Two processes on one PostgreSQL: one hears the other's access changes through Redis; a third hears nothing (its own
// Redis prefix, as if every message were lost) and still refuses a revoked key within KEY_CACHE_TTL_MS.
describe.runIf(TEST_PROVIDER === "postgresql")("cached keys on several instances", () => {
  let database: { url: string; drop(): Promise<void> };
  let a: Instance;
  let b: Instance;
  let deaf: Instance;
  let mainKey: string;
  const TTL_MS = 1000;

  beforeAll(async () => {
    database = await createTestDatabase();
    const env = { DATABASE_URL: database.url, REDIS_URL: REDIS_TEST_URL, REDIS_PREFIX: redisPrefix(), KEY_CACHE_TTL_MS: String(TTL_MS), RATE_LIMIT_RPS: "0" };
    a = await startInstance({ ...env, DEMO_TEAM: "true" });
    [b, deaf] = await Promise.all([startInstance(env), startInstance({ ...env, REDIS_PREFIX: redisPrefix() })]);
    mainKey = a.child.stdout.match(/zv_live_[0-9A-Za-z]{32,}/)![0];
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), deaf?.stop()]);
    await database?.drop();
  });

  const works = async (url: string, key: string) => (await gqlAt(url, key, BALANCE)).status === 200;
  const newKey = async () => {
    const made = await gqlAt(a.url, mainKey, `mutation { createApiKey(input: { name: "Spread" }) { key apiKey { id } } }`);
    return made.body.data.createApiKey as { key: string; apiKey: { id: string } };
  };

  it("a key revoked on one instance is refused by the next request on another", { timeout: 30_000 }, async () => {
    for (let trial = 0; trial < 5; trial += 1) {
      const made = await newKey();
      expect(await works(b.url, made.key)).toBe(true);
      await gqlAt(a.url, mainKey, `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: made.apiKey.id });
      expect(await works(b.url, made.key)).toBe(false);
    }
  });

  it("an instance that never hears the revocation refuses the key within KEY_CACHE_TTL_MS", { timeout: 30_000 }, async () => {
    const made = await newKey();
    expect(await works(deaf.url, made.key)).toBe(true);
    await gqlAt(a.url, mainKey, `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: made.apiKey.id });
    const revokedAt = Date.now();
    let acceptedAfter = 0;
    while (await works(deaf.url, made.key)) {
      acceptedAfter += 1;
      expect(Date.now() - revokedAt).toBeLessThan(TTL_MS + 100);
      await sleep(20);
    }
    expect(Date.now() - revokedAt).toBeLessThan(TTL_MS + 100);
    // The deaf instance did answer from its cache for a while: it is the time to live, not an event, that ended it.
    expect(acceptedAfter).toBeGreaterThan(0);
  });
});
