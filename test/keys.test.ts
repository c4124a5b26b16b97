import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REDIS_TEST_URL, TEST_PROVIDER } from "./helpers/databases.ts";
import { createTestDatabase, onlyError, startGateway, type TestGateway } from "./helpers/gateway.ts";
import { gqlAt, redisPrefix, startInstance, untilOpenSubscriptions, type Instance } from "./helpers/instances.ts";
import { createAgent, postJson } from "./helpers/http.ts";
import { TSX, childEnv, run } from "./helpers/process.ts";
import { SEND } from "./helpers/storm.ts";
import { subscribeSse, subscribeWs } from "./helpers/subscriptions.ts";

/**
 * Keys a business can run on (README.md, "API keys and scopes"): main-account
 * keys created, rolled and revoked by the team itself, expiry, the rule that a
 * team never locks itself out, the operator's recovery, sub-account keys that
 * never hold a management scope, and a main key sending for a sub-account.
 */

const CREATE_KEY = `mutation($input: CreateApiKeyInput) { createApiKey(input: $input) { key apiKey { id name permissions expiresAt } } }`;
const ROLL = `mutation($id: ID!, $s: Int) { rollApiKey(id: $id, expiresInSeconds: $s) { key apiKey { id name permissions expiresAt } previous { id expiresAt } } }`;
const REVOKE = `mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateApiKeyInput!) { updateApiKey(id: $id, input: $input) { id name permissions } }`;
const MY_KEYS = `{ viewer { apiKey { id } account { apiKeys { id name keyPrefix permissions expiresAt revokedAt } } } }`;
const BALANCE = `{ balance { balance } }`;
const SPEND = `subscription { spendUpdated { sequence } }`;
const END_WITHIN_MS = 1000;

function endsWithin(ended: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([ended.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
}

describe("main-account keys", () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw?.close());

  async function teamKeyId(mainKey: string): Promise<string> {
    return (await gw.gql(MY_KEYS, {}, mainKey)).data.viewer.apiKey.id;
  }

  it("createApiKey returns the key once; viewer.account.apiKeys and GET /v1/api-keys list metadata only", async () => {
    const { mainKey } = await gw.createTeam();
    const created = await gw.gql(CREATE_KEY, { input: { name: "CI deploys", permissions: ["messages:send", "balance:read"] } }, mainKey);
    expect(created.errors).toBeUndefined();
    const { key, apiKey } = created.data.createApiKey;
    expect(key).toMatch(/^zv_live_[0-9A-Za-z]{32,}$/);
    expect(apiKey.permissions).toEqual(["messages:send", "balance:read"]);
    const listed = await gw.gql(MY_KEYS, {}, key);
    expect(listed.data.viewer.account.apiKeys.map((k: { name: string }) => k.name)).toEqual(["Main key", "CI deploys"]);
    expect(JSON.stringify(listed.data)).not.toContain(key);
    const rest = await fetch(`${gw.url}/v1/api-keys`, { headers: { authorization: `Bearer ${mainKey}` } });
    const body = (await rest.json()) as { items: { name: string; permissions: string[] }[] };
    expect(body.items.map((k) => k.name)).toEqual(["Main key", "CI deploys"]);
    expect(body.items[0]!.permissions).toHaveLength(10);
    expect(JSON.stringify(body)).not.toContain(key);
  });

  it("a leaked main key rolled with expiresInSeconds 0 is refused at once, its open subscriptions (WS and SSE) end within 1 s, the new key works", async () => {
    const { mainKey } = await gw.createTeam();
    const ws = await subscribeWs(gw.url, mainKey, SPEND);
    const sse = await subscribeSse(gw.url, mainKey, SPEND);
    await gw.untilSubscriptions(2);
    const rolled = await gw.gql(ROLL, { id: await teamKeyId(mainKey), s: 0 }, mainKey);
    expect(rolled.errors).toBeUndefined();
    expect(rolled.data.rollApiKey.apiKey.name).toBe("Main key");
    const refused = await gw.gql(BALANCE, {}, mainKey);
    expect(refused.status).toBe(401);
    expect(onlyError(refused).message).toMatch(/expired/);
    expect((await fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${mainKey}` } })).status).toBe(401);
    expect(await endsWithin(ws.ended, END_WITHIN_MS)).toBe(true);
    expect(await endsWithin(sse.ended, END_WITHIN_MS)).toBe(true);
    expect(ws.errors.map((e) => e.extensions?.code)).toEqual(["unauthorized"]);
    expect((await gw.gql(BALANCE, {}, rolled.data.rollApiKey.key)).status).toBe(200);
  });

  it("rolled with an overlap, the old key works until the overlap ends and not after; its subscriptions end within 1 s of it", async () => {
    const { mainKey } = await gw.createTeam();
    const rolled = await gw.gql(ROLL, { id: await teamKeyId(mainKey), s: 3600 }, mainKey);
    expect(new Date(rolled.data.rollApiKey.previous.expiresAt).getTime()).toBe(gw.clock.now().getTime() + 3_600_000);
    expect((await gw.gql(BALANCE, {}, mainKey)).status).toBe(200);
    const ws = await subscribeWs(gw.url, mainKey, SPEND);
    await gw.untilSubscriptions(1);
    gw.clock.advance(3_599_000);
    expect((await gw.gql(BALANCE, {}, mainKey)).status).toBe(200);
    expect(ws.isEnded()).toBe(false);
    gw.clock.advance(1_000);
    expect((await gw.gql(BALANCE, {}, mainKey)).status).toBe(401);
    expect(await endsWithin(ws.ended, END_WITHIN_MS)).toBe(true);
    expect((await gw.gql(BALANCE, {}, rolled.data.rollApiKey.key)).status).toBe(200);
  });

  it("the team's last full main key cannot be revoked or narrowed (409), rolling it works, and with another full key revoking works", async () => {
    const { mainKey } = await gw.createTeam();
    const id = await teamKeyId(mainKey);
    const limited = await gw.gql(CREATE_KEY, { input: { name: "Read only", permissions: ["balance:read"] } }, mainKey);
    const expiring = await gw.gql(CREATE_KEY, { input: { name: "Temporary", expiresAt: new Date(gw.clock.now().getTime() + 86_400_000).toISOString() } }, mainKey);
    expect(expiring.errors).toBeUndefined();
    for (const attempt of [gw.gql(REVOKE, { id }, mainKey), gw.gql(UPDATE, { id, input: { permissions: ["balance:read"] } }, mainKey)]) {
      const refused = await attempt;
      expect(refused.status).toBe(409);
      expect(onlyError(refused).extensions.code).toBe("conflict");
      expect(onlyError(refused).message).toMatch(/create another/);
    }
    const rest = await fetch(`${gw.url}/v1/api-keys/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${mainKey}` } });
    expect(rest.status).toBe(409);
    expect((await gw.gql(BALANCE, {}, mainKey)).status).toBe(200);

    const rolled = await gw.gql(ROLL, { id, s: 0 }, mainKey);
    const newKey = rolled.data.rollApiKey.key as string;
    expect((await gw.gql(BALANCE, {}, newKey)).status).toBe(200);
    const second = await gw.gql(CREATE_KEY, { input: { name: "Second full key" } }, newKey);
    const revoked = await gw.gql(REVOKE, { id: rolled.data.rollApiKey.apiKey.id }, newKey);
    expect(revoked.errors).toBeUndefined();
    expect((await gw.gql(BALANCE, {}, second.data.createApiKey.key)).status).toBe(200);
    // Renaming is never narrowing; a narrower key may always go.
    expect((await gw.gql(UPDATE, { id: second.data.createApiKey.apiKey.id, input: { name: "Renamed" } }, second.data.createApiKey.key)).errors).toBeUndefined();
    expect((await gw.gql(REVOKE, { id: limited.data.createApiKey.apiKey.id }, second.data.createApiKey.key)).errors).toBeUndefined();
  });

  it("two racing revocations of the team's two full keys: one wins, the other is 409, a full key remains", async () => {
    const { mainKey } = await gw.createTeam();
    const other = await gw.gql(CREATE_KEY, { input: { name: "Other full" } }, mainKey);
    const admin = await gw.gql(CREATE_KEY, { input: { name: "Key admin", permissions: ["api_keys:write"] } }, mainKey);
    const ids = [await teamKeyId(mainKey), other.data.createApiKey.apiKey.id as string];
    const results = await Promise.all(ids.map((id) => gw.gql(REVOKE, { id }, admin.data.createApiKey.key)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const live = await gw.db.prisma.apiKey.count({ where: { id: { in: ids }, revokedAt: null } });
    expect(live).toBe(1);
  });

  it("an expired key is unauthorized saying so; a key cannot be created already expired", async () => {
    const { mainKey } = await gw.createTeam();
    const past = await gw.gql(CREATE_KEY, { input: { expiresAt: new Date(gw.clock.now().getTime() - 1).toISOString() } }, mainKey);
    expect(onlyError(past).extensions).toMatchObject({ code: "invalid_request", details: { field: "input.expiresAt" } });
    const soon = await gw.gql(CREATE_KEY, { input: { expiresAt: new Date(gw.clock.now().getTime() + 60_000).toISOString() } }, mainKey);
    const key = soon.data.createApiKey.key as string;
    expect((await gw.gql(BALANCE, {}, key)).status).toBe(200);
    gw.clock.advance(60_000);
    const refused = await gw.gql(BALANCE, {}, key);
    expect(refused.status).toBe(401);
    expect(onlyError(refused).message).toMatch(/expired at/);
  });

  it("every key operation is in the audit log, with no key material", async () => {
    const { mainKey } = await gw.createTeam();
    const created = await gw.gql(CREATE_KEY, { input: { name: "Audited" } }, mainKey);
    const id = created.data.createApiKey.apiKey.id;
    await gw.gql(UPDATE, { id, input: { name: "Audited 2", permissions: ["audit:read"] } }, mainKey);
    const rolled = await gw.gql(ROLL, { id, s: 10 }, mainKey);
    await gw.gql(REVOKE, { id: rolled.data.rollApiKey.apiKey.id }, mainKey);
    const log = await gw.gql(`{ auditLog(first: 10) { edges { node { action target { id } details } } } }`, {}, mainKey);
    const actions = log.data.auditLog.edges.map((e: { node: { action: string } }) => e.node.action);
    expect(actions.slice(0, 4)).toEqual(["API_KEY_REVOKE", "API_KEY_ROLL", "API_KEY_UPDATE", "API_KEY_CREATE"]);
    const text = JSON.stringify(log.data);
    for (const secret of [mainKey, created.data.createApiKey.key, rolled.data.rollApiKey.key]) expect(text).not.toContain(secret);
  });

  it("the operator recovers a team that lost every main key (npm run admin -- create-main-key)", { timeout: 60_000 }, async () => {
    const { teamId, mainKey, mainAccountId } = await gw.createTeam({ name: "Locked out" });
    await gw.db.prisma.apiKey.updateMany({ where: { accountId: mainAccountId }, data: { revokedAt: new Date() } });
    expect((await gw.gql(BALANCE, {}, mainKey)).status).toBe(401);
    const cli = await run(TSX, ["src/cli/admin.ts", "create-main-key", "--team", teamId, "--name", "Recovered", "--json"], childEnv({ DATABASE_URL: gw.databaseUrl }));
    expect(cli.code, cli.stderr).toBe(0);
    const printed = JSON.parse(cli.stdout.trim().split("\n").at(-1)!) as { apiKey: { id: string; key: string }; mainAccount: { id: string } };
    expect(printed.mainAccount.id).toBe(mainAccountId);
    const viewer = await gw.gql(MY_KEYS, {}, printed.apiKey.key);
    expect(viewer.status).toBe(200);
    expect(viewer.data.viewer.apiKey.id).toBe(printed.apiKey.id);
    const unknown = await run(TSX, ["src/cli/admin.ts", "create-main-key", "--team", "nope"], childEnv({ DATABASE_URL: gw.databaseUrl }));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/not_found/);
  });
});

describe("sub-account keys and scopes", () => {
  let gw: TestGateway;
  let mainKey: string;
  let subId: string;

  beforeAll(async () => {
    gw = await startGateway();
    ({ mainKey } = await gw.createTeam());
    const created = await gw.gql(`mutation { createSubAccount(input: { name: "Scoped", creditLimit: 100 }) { subAccount { id apiKeys { permissions } } } }`, {}, mainKey);
    subId = created.data.createSubAccount.subAccount.id;
    expect(created.data.createSubAccount.subAccount.apiKeys[0].permissions).toEqual(["messages:send", "messages:read", "balance:read", "spend:read"]);
  });
  afterAll(() => gw?.close());

  const CREATE_SUB_KEY = `mutation($id: ID!, $input: CreateSubAccountApiKeyInput) { createSubAccountApiKey(subAccountId: $id, input: $input) { key apiKey { permissions expiresAt } } }`;

  it("can never hold a management scope, whatever is asked, on GraphQL and REST", async () => {
    for (const scope of ["sub_accounts:read", "sub_accounts:write", "api_keys:write", "webhooks:write", "audit:read", "team:write"]) {
      const refused = await gw.gql(CREATE_SUB_KEY, { id: subId, input: { permissions: ["balance:read", scope] } }, mainKey);
      expect(onlyError(refused).extensions).toMatchObject({ code: "invalid_request", details: { field: "input.permissions" } });
      const rest = await fetch(`${gw.url}/v1/sub-accounts/${subId}/api-keys`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${mainKey}` },
        body: JSON.stringify({ permissions: [scope] }),
      });
      expect(rest.status).toBe(400);
    }
    const unknown = await gw.gql(CREATE_SUB_KEY, { id: subId, input: { permissions: ["everything"] } }, mainKey);
    expect(onlyError(unknown).message).toMatch(/must be one of messages:send/);
    // Stored permissions that a sub-account key may not hold never count, even written straight to the database.
    const made = await gw.gql(CREATE_SUB_KEY, { id: subId, input: { permissions: ["balance:read"] } }, mainKey);
    await gw.db.prisma.apiKey.updateMany({ where: { accountId: subId, permissions: { equals: ["balance:read"] } }, data: { permissions: ["balance:read", "sub_accounts:read"] } });
    const denied = await gw.gql(`{ subAccounts(first: 1) { totalCount } }`, {}, made.data.createSubAccountApiKey.key);
    expect(onlyError(denied).extensions).toEqual({ code: "forbidden", details: { requiredScope: "sub_accounts:read" } });
  });

  it("a key without a scope is forbidden with details.requiredScope, on queries, mutations, WS and SSE subscriptions and REST", async () => {
    const made = await gw.gql(CREATE_SUB_KEY, { id: subId, input: { permissions: ["balance:read"] } }, mainKey);
    const key = made.data.createSubAccountApiKey.key as string;
    expect((await gw.gql(BALANCE, {}, key)).status).toBe(200);
    const send = await gw.gql(SEND, { input: { to: "+14155550100", text: "hi" } }, key);
    expect(send.status).toBe(403);
    expect(onlyError(send).extensions).toEqual({ code: "forbidden", details: { requiredScope: "messages:send" } });
    const ws = await subscribeWs(gw.url, key, SPEND);
    const sse = await subscribeSse(gw.url, key, SPEND);
    await Promise.all([ws.ended, sse.ended]);
    for (const stream of [ws, sse]) expect(stream.errors.map((e: any) => [e.extensions.code, e.extensions.details.requiredScope])).toEqual([["forbidden", "spend:read"]]);
    const rest = await fetch(`${gw.url}/v1/messages`, { headers: { authorization: `Bearer ${key}` } });
    expect(rest.status).toBe(403);
    expect(await rest.json()).toMatchObject({ code: "forbidden", details: { requiredScope: "messages:read" } });
  });
});

describe("a main key sending for a sub-account", () => {
  let gw: TestGateway;
  let mainKey: string;

  beforeAll(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_RPS: "0" } });
    ({ mainKey } = await gw.createTeam({ balance: 1_000_000 }));
  });
  afterAll(() => gw?.close());

  async function subAccount(creditLimit: number | null) {
    const created = await gw.gql(`mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`, { input: { name: "Customer", creditLimit } }, mainKey);
    return { id: created.data.createSubAccount.subAccount.id as string, key: created.data.createSubAccount.apiKey as string };
  }

  it("is charged as the sub-account, owned by it, recording the main key; REST takes X-Sub-Account-Id", async () => {
    const sub = await subAccount(null);
    const sent = await gw.gql(`mutation($input: SendMessageInput!) { sendMessage(input: $input) { id accountId apiKeyId cost } }`, { input: { to: "+14155550100", text: "for you", subAccountId: sub.id } }, mainKey);
    expect(sent.errors).toBeUndefined();
    const mainKeyId = (await gw.gql(MY_KEYS, {}, mainKey)).data.viewer.apiKey.id;
    expect(sent.data.sendMessage).toMatchObject({ accountId: sub.id, apiKeyId: mainKeyId });
    const rest = await fetch(`${gw.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${mainKey}`, "x-sub-account-id": sub.id },
      body: JSON.stringify({ to: "+14155550100", text: "for you, over REST" }),
    });
    expect(rest.status).toBe(201);
    expect(((await rest.json()) as any).message).toMatchObject({ accountId: sub.id, apiKeyId: mainKeyId });
    const account = await gw.db.prisma.account.findUniqueOrThrow({ where: { id: sub.id } });
    expect(account.totalSpent).toBe(2n);
    // The sub-account sees them as its own.
    const own = await gw.gql(`{ messages(first: 10) { edges { node { id } } } }`, {}, sub.key);
    expect(own.data.messages.edges).toHaveLength(2);
  });

  it("a sub-account key naming another account is forbidden; another team's sub-account is not_found; nothing is charged", async () => {
    const [a, b] = [await subAccount(null), await subAccount(null)];
    const forbidden = await gw.gql(SEND, { input: { to: "+14155550100", text: "x", subAccountId: b.id } }, a.key);
    expect(onlyError(forbidden).extensions.code).toBe("forbidden");
    const other = await gw.createTeam({ name: "Elsewhere" });
    const foreign = await gw.gql(`mutation { createSubAccount(input: { name: "Theirs" }) { subAccount { id } } }`, {}, other.mainKey);
    const unknown = await gw.gql(SEND, { input: { to: "+14155550100", text: "x", subAccountId: foreign.data.createSubAccount.subAccount.id } }, mainKey);
    expect(onlyError(unknown).extensions.code).toBe("not_found");
    expect(await gw.db.prisma.message.count({ where: { accountId: { in: [a.id, b.id, foreign.data.createSubAccount.subAccount.id] } } })).toBe(0);
  });

  it("a concurrent storm mixing its own key and the main key acting for it never exceeds its limit, and every charge is in its spend events once", { timeout: 60_000 }, async () => {
    const LIMIT = 150;
    const sub = await subAccount(LIMIT);
    const events = await subscribeWs<{ spendUpdated: { sequence: number; messageId: string } }>(gw.url, mainKey, `subscription($id: ID) { spendUpdated(subAccountId: $id) { sequence messageId } }`, { id: sub.id });
    await gw.untilSubscriptions(1);
    const agent = createAgent(32);
    const responses = await Promise.all(
      Array.from({ length: 300 }, (_, i) => {
        const input = { to: "+14155550100", text: `storm ${i}`, ...(i % 2 === 0 ? { subAccountId: sub.id } : {}) };
        return postJson(`${gw.url}/graphql`, { query: SEND, variables: { input } }, { authorization: `Bearer ${i % 2 === 0 ? mainKey : sub.key}` }, agent);
      }),
    );
    agent.destroy();
    const charged = responses.filter((r) => r.status === 200).map((r) => r.body.data.sendMessage.id as string);
    const refused = responses.filter((r) => r.status !== 200);
    expect(charged).toHaveLength(LIMIT);
    expect(refused.every((r) => r.body.errors[0].extensions.code === "credit_limit_exceeded")).toBe(true);
    const account = await gw.db.prisma.account.findUniqueOrThrow({ where: { id: sub.id } });
    expect(account.totalSpent).toBe(BigInt(LIMIT));
    await events.waitFor(LIMIT, 5_000);
    expect(events.events.map((e) => e.spendUpdated.sequence)).toEqual(Array.from({ length: LIMIT }, (_, i) => i + 1));
    expect(new Set(events.events.map((e) => e.spendUpdated.messageId))).toEqual(new Set(charged));
    const mainKeyId = (await gw.gql(MY_KEYS, {}, mainKey)).data.viewer.apiKey.id as string;
    const byMain = await gw.db.prisma.message.count({ where: { accountId: sub.id, apiKeyId: mainKeyId } });
    expect(byMain).toBeGreaterThan(0);
    expect(byMain).toBeLessThan(LIMIT);
    events.close();
  });
});

// Two gateway processes on one PostgreSQL and one Redis: what a roll does is true on both at once.
describe.runIf(TEST_PROVIDER === "postgresql")("rolling a main key on two instances", () => {
  let database: { url: string; drop(): Promise<void> };
  let a: Instance;
  let b: Instance;
  let mainKey: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    const env = { DATABASE_URL: database.url, REDIS_URL: REDIS_TEST_URL, REDIS_PREFIX: redisPrefix(), DEMO_TEAM: "true" };
    a = await startInstance(env);
    b = await startInstance(env);
    mainKey = (a.child.stdout + b.child.stdout).match(/zv_live_[0-9A-Za-z]{32,}/)![0];
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await database?.drop();
  });

  const balance = async (url: string, key: string) => (await gqlAt(url, key, BALANCE)).status;
  const keyId = async (key: string) => (await gqlAt(a.url, key, MY_KEYS)).body.data.viewer.apiKey.id as string;

  it("with expiresInSeconds 0 the old key is refused at once on both, and its subscriptions on both end within 1 s", { timeout: 60_000 }, async () => {
    const onA = await subscribeWs(a.url, mainKey, SPEND);
    const onB = await subscribeSse(b.url, mainKey, SPEND);
    await Promise.all([untilOpenSubscriptions(a.url, 1), untilOpenSubscriptions(b.url, 1)]);
    const rolled = await gqlAt(a.url, mainKey, ROLL, { id: await keyId(mainKey), s: 0 });
    expect(rolled.body.errors).toBeUndefined();
    expect([await balance(a.url, mainKey), await balance(b.url, mainKey)]).toEqual([401, 401]);
    expect(await endsWithin(onA.ended, END_WITHIN_MS)).toBe(true);
    expect(await endsWithin(onB.ended, END_WITHIN_MS)).toBe(true);
    mainKey = rolled.body.data.rollApiKey.key;
    expect([await balance(a.url, mainKey), await balance(b.url, mainKey)]).toEqual([200, 200]);
  });

  it("with an overlap the old key works on both until it ends and not after; its subscriptions on both end within 1 s of it", { timeout: 60_000 }, async () => {
    const old = mainKey;
    const rolled = await gqlAt(b.url, old, ROLL, { id: await keyId(old), s: 3 });
    const expiresAt = new Date(rolled.body.data.rollApiKey.previous.expiresAt).getTime();
    const onA = await subscribeWs(a.url, old, SPEND);
    const onB = await subscribeWs(b.url, old, SPEND);
    await Promise.all([untilOpenSubscriptions(a.url, 1), untilOpenSubscriptions(b.url, 1)]);
    expect([await balance(a.url, old), await balance(b.url, old)]).toEqual([200, 200]);
    await new Promise((resolve) => setTimeout(resolve, expiresAt - Date.now()));
    const endedAt = await Promise.all([onA.ended, onB.ended].map((ended) => ended.then(() => Date.now())));
    expect(Math.max(...endedAt) - expiresAt).toBeLessThan(END_WITHIN_MS);
    expect([await balance(a.url, old), await balance(b.url, old)]).toEqual([401, 401]);
    expect([await balance(a.url, rolled.body.data.rollApiKey.key), await balance(b.url, rolled.body.data.rollApiKey.key)]).toEqual([200, 200]);
  });
});
