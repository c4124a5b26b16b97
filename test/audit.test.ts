import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../src/domain/apiKeys.ts";
import { onlyError, startGateway, type GraphQLResponse, type TestGateway } from "./helpers/gateway.ts";
import { TSX, childEnv, run } from "./helpers/process.ts";

/**
 * The audit log (issue 7): every management action, through GraphQL, REST or
 * the operator CLI, is recorded once with who did it, with which key, on what
 * and what changed, and a main key reads its own team's log through `auditLog`.
 */

const DAY_MS = 86_400_000;

const AUDIT_LOG = `query($first: Int, $after: String, $action: AuditAction, $targetId: ID) {
  auditLog(first: $first, after: $after, action: $action, targetId: $targetId) {
    edges { cursor node { id action actor { type accountId apiKeyId apiKeyPrefix } target { type id } details createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const WHO_AM_I = `{ viewer { apiKey { id keyPrefix } account { id } } }`;
const CREATE = `mutation($input: CreateSubAccountInput!) {
  createSubAccount(input: $input) { apiKey subAccount { id apiKeys { id } } }
}`;
const UPDATE = `mutation($id: ID!, $input: UpdateSubAccountInput!) { updateSubAccount(id: $id, input: $input) { id } }`;
const DEACTIVATE = `mutation($id: ID!) { deactivateSubAccount(id: $id) { keysRevoked deletionScheduledAt } }`;
const CREATE_KEY = `mutation($id: ID!) { createSubAccountApiKey(subAccountId: $id, input: { name: "extra" }) { key apiKey { id } } }`;
const REVOKE_KEY = `mutation($id: ID!, $keyId: ID!) { revokeSubAccountApiKey(subAccountId: $id, apiKeyId: $keyId) { id revokedAt } }`;

interface AuditEventNode {
  id: string;
  action: string;
  actor: { type: string; accountId: string | null; apiKeyId: string | null; apiKeyPrefix: string | null };
  target: { type: string; id: string };
  details: Record<string, any>;
  createdAt: string;
}

type Team = Awaited<ReturnType<TestGateway["createTeam"]>> & { mainKeyId: string; mainKeyPrefix: string };

describe("audit log", () => {
  let gw: TestGateway;
  /** Every key the gateway handed out in this file: none may appear in an audit event. */
  const keysSeen: string[] = [];

  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.close());

  async function createTeam(name: string): Promise<Team> {
    const team = await gw.createTeam({ name });
    keysSeen.push(team.mainKey);
    const { data } = await gw.gql(WHO_AM_I, {}, team.mainKey);
    return { ...team, mainKeyId: data.viewer.apiKey.id, mainKeyPrefix: data.viewer.apiKey.keyPrefix };
  }

  function expectOk<T>(response: GraphQLResponse<T>): T {
    expect(response.errors).toBeUndefined();
    return response.data;
  }

  function expectError(response: GraphQLResponse, status: number, code: string) {
    const error = onlyError(response);
    expect({ status: response.status, code: error.extensions.code }).toEqual({ status, code });
  }

  async function auditLog(key: string, variables: Record<string, unknown> = {}): Promise<AuditEventNode[]> {
    const data = expectOk(await gw.gql(AUDIT_LOG, { first: 100, ...variables }, key));
    return data.auditLog.edges.map((edge: { node: AuditEventNode }) => edge.node);
  }

  async function createSub(team: Team, input: Record<string, unknown> = {}) {
    const data = expectOk(await gw.gql(CREATE, { input: { name: "Client", ...input } }, team.mainKey));
    keysSeen.push(data.createSubAccount.apiKey);
    return { id: data.createSubAccount.subAccount.id as string, key: data.createSubAccount.apiKey as string, keyId: data.createSubAccount.subAccount.apiKeys[0].id as string };
  }

  async function rest(method: string, path: string, key: string, body?: unknown) {
    const response = await fetch(`${gw.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: response.status === 204 ? null : ((await response.json()) as any) };
  }

  const byMainKey = (team: Team) => ({ type: "API_KEY", accountId: team.mainAccountId, apiKeyId: team.mainKeyId, apiKeyPrefix: team.mainKeyPrefix });

  it("records each GraphQL management action once: the main key that did it, the target and what changed", async () => {
    const team = await createTeam("Audited team");
    const tick = () => gw.clock.advance(1000);

    tick();
    const sub = await createSub(team, { externalId: "crm-7", creditLimit: 1000 });
    tick();
    expectOk(await gw.gql(UPDATE, { id: sub.id, input: { name: "Client renamed", creditLimit: 2500, metadata: { plan: "pro" } } }, team.mainKey));
    tick();
    expectOk(await gw.gql(UPDATE, { id: sub.id, input: { status: "INACTIVE" } }, team.mainKey));
    tick();
    expectOk(await gw.gql(UPDATE, { id: sub.id, input: { status: "ACTIVE" } }, team.mainKey));
    tick();
    const created = expectOk(await gw.gql(CREATE_KEY, { id: sub.id }, team.mainKey)).createSubAccountApiKey;
    keysSeen.push(created.key);
    tick();
    expectOk(await gw.gql(REVOKE_KEY, { id: sub.id, keyId: created.apiKey.id }, team.mainKey));
    tick();
    const deactivated = expectOk(await gw.gql(DEACTIVATE, { id: sub.id }, team.mainKey)).deactivateSubAccount;

    const events = await auditLog(team.mainKey);
    expect(events).toHaveLength(9);
    expect(events.slice(0, 7).map((event) => event.action)).toEqual([
      "SUB_ACCOUNT_DEACTIVATE",
      "API_KEY_REVOKE",
      "API_KEY_CREATE",
      "SUB_ACCOUNT_REACTIVATE",
      "SUB_ACCOUNT_SUSPEND",
      "SUB_ACCOUNT_UPDATE",
      "SUB_ACCOUNT_CREATE",
    ]);
    // Before them, the team's creation and funding by the operator (one clock reading, so in either order).
    expect(events.slice(7).map((event) => [event.action, event.actor.type]).sort()).toEqual([
      ["TEAM_CREATE", "OPERATOR"],
      ["TEAM_TOP_UP", "OPERATOR"],
    ]);
    for (const event of events.slice(0, 7)) expect(event.actor).toEqual(byMainKey(team));
    const createdAts = events.map((event) => Date.parse(event.createdAt));
    expect(createdAts).toEqual([...createdAts].sort((a, b) => b - a));

    const [deactivate, revoke, keyCreate, reactivate, suspend, update, create] = events;
    const onSub = { type: "SUB_ACCOUNT", id: sub.id };
    expect(create).toMatchObject({ target: onSub, details: { name: "Client", externalId: "crm-7", creditLimit: 1000, apiKeyId: sub.keyId } });
    expect(update).toMatchObject({
      target: onSub,
      details: {
        changedFields: ["name", "creditLimit", "metadata"],
        before: { name: "Client", creditLimit: 1000 },
        after: { name: "Client renamed", creditLimit: 2500 },
      },
    });
    expect(suspend).toMatchObject({ target: onSub, details: { before: { status: "active" }, after: { status: "inactive" } } });
    expect(reactivate).toMatchObject({ target: onSub, details: { before: { status: "inactive" }, after: { status: "active" } } });
    expect(keyCreate).toMatchObject({ target: { type: "API_KEY", id: created.apiKey.id }, details: { subAccountId: sub.id, name: "extra", environment: "live" } });
    expect(revoke).toMatchObject({ target: { type: "API_KEY", id: created.apiKey.id }, details: { subAccountId: sub.id } });
    expect(deactivate).toMatchObject({
      target: onSub,
      details: { keysRevoked: 1, revokedApiKeyIds: [sub.keyId], deletionScheduledAt: deactivated.deletionScheduledAt },
    });

    // Filters: by target and by action.
    expect((await auditLog(team.mainKey, { targetId: created.apiKey.id })).map((event) => event.action)).toEqual(["API_KEY_REVOKE", "API_KEY_CREATE"]);
    expect((await auditLog(team.mainKey, { action: "SUB_ACCOUNT_SUSPEND" })).map((event) => event.id)).toEqual([suspend!.id]);
  });

  it("records nothing for an update that changes nothing or a key revoked twice", async () => {
    const team = await createTeam("Idle team");
    const sub = await createSub(team, { name: "Same" });
    expectOk(await gw.gql(REVOKE_KEY, { id: sub.id, keyId: sub.keyId }, team.mainKey));
    const before = await auditLog(team.mainKey);

    expectOk(await gw.gql(UPDATE, { id: sub.id, input: { name: "  Same  ", externalId: null, status: "ACTIVE" } }, team.mainKey));
    expectOk(await gw.gql(REVOKE_KEY, { id: sub.id, keyId: sub.keyId }, team.mainKey));

    expect(await auditLog(team.mainKey)).toEqual(before);
  });

  it("audits REST /v1 actions exactly like GraphQL ones, also when they race", async () => {
    const team = await createTeam("REST team");
    const created = await Promise.all(Array.from({ length: 8 }, (_, i) => rest("POST", "/v1/sub-accounts", team.mainKey, { name: `REST client ${i}` })));
    expect(created.map((response) => response.status)).toEqual(Array(8).fill(201));
    keysSeen.push(...created.map((response) => response.body.subAccount.apiKey as string));
    const subId = created[0]!.body.subAccount.id as string;

    expect((await rest("PATCH", `/v1/sub-accounts/${subId}`, team.mainKey, { creditLimit: 700 })).status).toBe(200);
    const key = await rest("POST", `/v1/sub-accounts/${subId}/api-keys`, team.mainKey, { name: "rest key" });
    expect(key.status).toBe(201);
    keysSeen.push(key.body.apiKey.key);
    expect((await rest("DELETE", `/v1/sub-accounts/${subId}/api-keys/${key.body.apiKey.id}`, team.mainKey)).status).toBe(204);
    expect((await rest("DELETE", `/v1/sub-accounts/${subId}`, team.mainKey)).status).toBe(200);

    const creates = await auditLog(team.mainKey, { action: "SUB_ACCOUNT_CREATE" });
    expect(creates.map((event) => event.target.id).sort()).toEqual(created.map((response) => response.body.subAccount.id).sort());
    for (const event of creates) expect(event.actor).toEqual(byMainKey(team));

    const onSub = await auditLog(team.mainKey, { targetId: subId });
    expect(onSub.map((event) => event.action)).toEqual(["SUB_ACCOUNT_DEACTIVATE", "SUB_ACCOUNT_UPDATE", "SUB_ACCOUNT_CREATE"]);
    expect(onSub[1]!.details).toEqual({ changedFields: ["creditLimit"], before: { creditLimit: null }, after: { creditLimit: 700 } });
    const onKey = await auditLog(team.mainKey, { targetId: key.body.apiKey.id });
    expect(onKey.map((event) => [event.action, event.actor.apiKeyId])).toEqual([
      ["API_KEY_REVOKE", team.mainKeyId],
      ["API_KEY_CREATE", team.mainKeyId],
    ]);
  });

  it("is for main keys only, and each team sees its own events only", async () => {
    const teamA = await createTeam("Team A");
    const teamB = await createTeam("Team B");
    const subA = await createSub(teamA);
    const subB = await createSub(teamB);

    expectError(await gw.gql(AUDIT_LOG, {}, subA.key), 403, "forbidden");
    expectError(await gw.gql(AUDIT_LOG, {}), 401, "unauthorized");

    const eventsA = await auditLog(teamA.mainKey);
    const eventsB = await auditLog(teamB.mainKey);
    expect(eventsA.map((event) => event.target.id)).toContain(subA.id);
    const idsA = new Set(eventsA.map((event) => event.id));
    expect(eventsB.filter((event) => idsA.has(event.id))).toEqual([]);
    const teamBTargets = new Set([teamB.teamId, subB.id]);
    expect(eventsB.every((event) => teamBTargets.has(event.target.id))).toBe(true);
    expect(await auditLog(teamB.mainKey, { targetId: subA.id })).toEqual([]);
  });

  it("writes no event when an action fails", async () => {
    const team = await createTeam("Failing team");
    const other = await createTeam("Other team");
    const sub = await createSub(team);
    const otherSub = await createSub(other);
    const count = () => gw.db.prisma.auditEvent.count();
    const before = await count();

    expectError(await gw.gql(CREATE, { input: { name: "   " } }, team.mainKey), 400, "invalid_request");
    expectError(await gw.gql(CREATE, { input: { name: "Sneaky" } }, sub.key), 403, "forbidden");
    expectError(await gw.gql(UPDATE, { id: sub.id, input: { creditLimit: -5 } }, team.mainKey), 400, "invalid_request");
    expectError(await gw.gql(UPDATE, { id: otherSub.id, input: { name: "Hijacked" } }, team.mainKey), 404, "not_found");
    expectError(await gw.gql(DEACTIVATE, { id: "missing-sub-account" }, team.mainKey), 404, "not_found");
    expectError(await gw.gql(CREATE_KEY, { id: otherSub.id }, team.mainKey), 404, "not_found");
    expectError(await gw.gql(REVOKE_KEY, { id: sub.id, keyId: otherSub.keyId }, team.mainKey), 404, "not_found");
    expect((await rest("PATCH", `/v1/sub-accounts/${sub.id}`, team.mainKey, { status: "paused" })).status).toBe(400);
    await expect(gw.gateway.services.teams.topUp("missing-team", 100)).rejects.toMatchObject({ code: "not_found" });
    await expect(gw.gateway.services.teams.createMainAccount(team.teamId, "Second main")).rejects.toMatchObject({ code: "invalid_request" });

    expect(await count()).toBe(before);
  });

  it("rolls the action back when its event cannot be written", async () => {
    const isolated = await startGateway();
    try {
      const team = await isolated.createTeam({ name: "Broken audit" });
      const create = await isolated.gql(CREATE, { input: { name: "Kept", creditLimit: 100 } }, team.mainKey);
      const sub = create.data.createSubAccount.subAccount;
      await isolated.db.prisma.$executeRawUnsafe(`ALTER TABLE "AuditEvent" RENAME TO "AuditEventUnavailable"`);

      expectError(await isolated.gql(CREATE, { input: { name: "Never created" } }, team.mainKey), 500, "internal_error");
      expectError(await isolated.gql(UPDATE, { id: sub.id, input: { creditLimit: 900 } }, team.mainKey), 500, "internal_error");
      expectError(await isolated.gql(REVOKE_KEY, { id: sub.id, keyId: sub.apiKeys[0].id }, team.mainKey), 500, "internal_error");
      expectError(await isolated.gql(DEACTIVATE, { id: sub.id }, team.mainKey), 500, "internal_error");

      const list = await isolated.gql(`{ subAccounts(first: 10) { edges { node { name status creditLimit apiKeys { revokedAt } } } } }`, {}, team.mainKey);
      expect(list.data.subAccounts.edges.map((edge: any) => edge.node)).toEqual([
        { name: "Kept", status: "ACTIVE", creditLimit: 100, apiKeys: [{ revokedAt: null }] },
      ]);
      const balance = await isolated.gql(`{ balance { isSubAccount } }`, {}, create.data.createSubAccount.apiKey);
      expect(balance.data).toEqual({ balance: { isSubAccount: true } });
    } finally {
      await isolated.close();
    }
  });

  it("keeps a purged sub-account's history, with the purge recorded as the gateway's own", async () => {
    const team = await createTeam("Purging team");
    const sub = await createSub(team, { name: "Short-lived" });
    const deactivated = expectOk(await gw.gql(DEACTIVATE, { id: sub.id }, team.mainKey)).deactivateSubAccount;

    gw.clock.set(new Date(Date.parse(deactivated.deletionScheduledAt) + 1000));
    expect(await gw.gateway.services.accounts.purgeExpired()).toContain(sub.id);

    const history = await auditLog(team.mainKey, { targetId: sub.id });
    expect(history.map((event) => event.action)).toEqual(["SUB_ACCOUNT_PURGE", "SUB_ACCOUNT_DEACTIVATE", "SUB_ACCOUNT_CREATE"]);
    expect(history[0]).toMatchObject({
      actor: { type: "SYSTEM", accountId: null, apiKeyId: null, apiKeyPrefix: null },
      details: { name: "Short-lived", externalId: null, totalSpent: 0, deletionScheduledAt: deactivated.deletionScheduledAt },
    });
  });

  it("records the operator CLI's top-up with no key", async () => {
    const team = await createTeam("Operator team");
    const result = await run(TSX, ["src/cli/admin.ts", "top-up", "--team", team.teamId, "--amount", "4321", "--json"], childEnv({ DATABASE_URL: gw.databaseUrl }));
    expect(result.code, result.stderr).toBe(0);

    const topUps = await auditLog(team.mainKey, { action: "TEAM_TOP_UP" });
    const fromCli = topUps.find((event) => event.details.amount === 4321);
    expect(fromCli).toMatchObject({
      actor: { type: "OPERATOR", accountId: null, apiKeyId: null, apiKeyPrefix: null },
      target: { type: "TEAM", id: team.teamId },
      details: { amount: 4321, balanceAfter: 1_000_000 + 4321 },
    });
    expect(topUps).toHaveLength(2);
  });

  it("pages newest first with opaque cursors, at most 100 events a page", async () => {
    const team = await createTeam("Paged team");
    // Same clock reading for all: the order falls back on the id, and pages must still neither skip nor repeat.
    for (let i = 0; i < 5; i += 1) await createSub(team, { name: `Paged ${i}` });
    const all = await auditLog(team.mainKey);
    expect(all).toHaveLength(7);

    const pages: AuditEventNode[][] = [];
    let after: string | null = null;
    for (;;) {
      const data = expectOk(await gw.gql(AUDIT_LOG, { first: 3, after }, team.mainKey)) as any;
      pages.push(data.auditLog.edges.map((edge: { node: AuditEventNode }) => edge.node));
      if (!data.auditLog.pageInfo.hasNextPage) break;
      after = data.auditLog.pageInfo.endCursor;
    }
    expect(pages.map((page) => page.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual(all);

    expectError(await gw.gql(AUDIT_LOG, { first: 101 }, team.mainKey), 400, "invalid_request");
    expectError(await gw.gql(AUDIT_LOG, { first: 0 }, team.mainKey), 400, "invalid_request");
    expectError(await gw.gql(AUDIT_LOG, { after: "not-a-cursor" }, team.mainKey), 400, "invalid_request");
    expectError(await gw.gql(AUDIT_LOG, { targetId: "bad id!" }, team.mainKey), 400, "invalid_request");
  });

  it("never stores key material: no key, no key prefix, no key hash in any event", async () => {
    const rows = await gw.db.prisma.auditEvent.findMany();
    expect(rows.length).toBeGreaterThan(30);
    const stored = JSON.stringify(rows);
    expect(stored).not.toContain("zv_");
    const hashes = [...keysSeen.map(hashApiKey), ...(await gw.db.prisma.apiKey.findMany({ select: { keyHash: true } })).map((row) => row.keyHash)];
    expect(keysSeen.length).toBeGreaterThan(20);
    for (const hash of hashes) expect(stored).not.toContain(hash);
  });
});
