import fc from "fast-check";
import { randomBytes } from "node:crypto";
import type http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSeed, runs } from "./helpers/arbitraries.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";
import { createAgent } from "./helpers/http.ts";
import { checkInvariants } from "./helpers/invariants.ts";
import { echoableStrings, sendRaw, type RawResponse } from "./helpers/responses.ts";

/**
 * Tenant isolation as a property. Random worlds of 2 or 3 teams, each with
 * random sub-accounts (some with limits, some suspended) and keys (main, live,
 * test-mode, revoked), each account with messages. Then random operations:
 * for a random key, every query, mutation and /v1 route aimed at an id the key
 * does not own (another team's, or for a sub-account key, a sibling's or the
 * main account's). Each must be refused with the code README.md's "Errors"
 * gives (another team's id: not_found; a sub-account key managing: forbidden; a
 * dead key: unauthorized), no response may carry anything of an account the
 * key does not own, and no row of such an account may change.
 */

const WORLDS = 3;
const CASES_PER_WORLD = runs(150);

/** A short unique marker: every name, externalId, text and metadata value of a world carries one, so a leak is found by text search. */
const token = (what: string) => `${what}-${randomBytes(5).toString("hex")}`;

interface KeyInfo {
  id: string;
  key: string;
  state: "live" | "test" | "revoked";
}

interface AccountInfo {
  id: string;
  teamId: string;
  kind: "main" | "sub";
  /** False for a suspended sub-account: its keys do not authenticate. */
  active: boolean;
  name: string;
  externalId: string | null;
  keys: KeyInfo[];
  messages: { id: string; idempotencyKey: string; text: string }[];
}

interface Actor {
  account: AccountInfo;
  key: KeyInfo;
  /** A sub-account the actor manages (a main key: one of its team's; a sub-account key: its own). */
  ownSubAccountId: string;
}

const worldShape = fc.array(
  fc.record({
    subAccounts: fc.array(
      fc.record({
        // At least the world's own sends (two of 1 cent each), so building it never hits the limit.
        creditLimit: fc.option(fc.integer({ min: 2, max: 500 })),
        suspended: fc.boolean(),
        withTestKey: fc.boolean(),
        withRevokedKey: fc.boolean(),
        messages: fc.integer({ min: 1, max: 2 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    mainMessages: fc.integer({ min: 1, max: 2 }),
  }),
  { minLength: 2, maxLength: 3 },
);

const SUB_FIELDS = `id name externalId status totalSpent creditLimit metadata apiKeys { id keyPrefix name revokedAt } balance { balance totalSpent creditLimit }`;
const MESSAGE_FIELDS = `id accountId to text cost idempotencyKey metadata isTestMode`;

/** The operations, each aimed at a target the actor does not own. */
type TargetKind = "subAccount" | "anyAccount" | "apiKey" | "message" | "none";
interface Operation {
  name: string;
  target: TargetKind;
  /** Management operations are for main keys: a sub-account key gets forbidden. */
  management: boolean;
  request(actor: Actor, target: Target): { method: string; path: string; body?: unknown; graphql?: boolean; headers?: Record<string, string> };
}

interface Target {
  account: AccountInfo;
  key?: KeyInfo;
  message?: AccountInfo["messages"][number];
}

const gql = (query: string, variables: Record<string, unknown>) => ({ method: "POST", path: "/graphql", body: { query, variables }, graphql: true });
const HIJACK = { name: "Hijacked", externalId: "hijacked", creditLimit: 1, metadata: { hijacked: true } };

const OPERATIONS: Operation[] = [
  { name: "graphql subAccount", target: "anyAccount", management: true, request: (_, t) => gql(`query($id: ID!) { subAccount(id: $id) { ${SUB_FIELDS} } }`, { id: t.account.id }) },
  { name: "graphql subAccountBalance", target: "anyAccount", management: true, request: (_, t) => gql(`query($id: ID!) { subAccountBalance(id: $id) { balance totalSpent creditLimit } }`, { id: t.account.id }) },
  {
    name: "graphql updateSubAccount",
    target: "anyAccount",
    management: true,
    request: (_, t) => gql(`mutation($id: ID!, $input: UpdateSubAccountInput!) { updateSubAccount(id: $id, input: $input) { ${SUB_FIELDS} } }`, { id: t.account.id, input: { ...HIJACK, status: "INACTIVE" } }),
  },
  { name: "graphql deactivateSubAccount", target: "anyAccount", management: true, request: (_, t) => gql(`mutation($id: ID!) { deactivateSubAccount(id: $id) { keysRevoked subAccount { id name } } }`, { id: t.account.id }) },
  {
    name: "graphql createSubAccountApiKey",
    target: "anyAccount",
    management: true,
    request: (_, t) => gql(`mutation($id: ID!) { createSubAccountApiKey(subAccountId: $id, input: { name: "intruder" }) { key apiKey { id } } }`, { id: t.account.id }),
  },
  {
    name: "graphql revokeSubAccountApiKey",
    target: "apiKey",
    management: true,
    request: (_, t) => gql(`mutation($s: ID!, $k: ID!) { revokeSubAccountApiKey(subAccountId: $s, apiKeyId: $k) { id name revokedAt } }`, { s: t.account.id, k: t.key!.id }),
  },
  {
    // Someone else's key through a sub-account the actor does manage (its own id for a sub-account key).
    name: "graphql revokeSubAccountApiKey via an own sub-account",
    target: "apiKey",
    management: true,
    request: (a, t) => gql(`mutation($s: ID!, $k: ID!) { revokeSubAccountApiKey(subAccountId: $s, apiKeyId: $k) { id name revokedAt } }`, { s: ownSubAccountId(a), k: t.key!.id }),
  },
  { name: "graphql message", target: "message", management: false, request: (_, t) => gql(`query($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`, { id: t.message!.id }) },
  {
    name: "graphql messages of another account",
    target: "anyAccount",
    management: false,
    request: (_, t) => gql(`query($id: ID) { messages(first: 100, subAccountId: $id) { edges { node { ${MESSAGE_FIELDS} } } } }`, { id: t.account.id }),
  },
  { name: "graphql rollApiKey", target: "apiKey", management: true, request: (_, t) => gql(`mutation($id: ID!) { rollApiKey(id: $id, expiresInSeconds: 0) { key previous { id } } }`, { id: t.key!.id }) },
  { name: "graphql revokeApiKey", target: "apiKey", management: true, request: (_, t) => gql(`mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`, { id: t.key!.id }) },
  { name: "graphql updateApiKey", target: "apiKey", management: true, request: (_, t) => gql(`mutation($id: ID!) { updateApiKey(id: $id, input: { name: "hijacked", permissions: ["balance:read"] }) { id name } }`, { id: t.key!.id }) },
  {
    name: "graphql sendMessage as another account",
    target: "anyAccount",
    management: false,
    request: (_, t) => gql(`mutation($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`, { input: { to: "+14155550100", text: "as someone else", subAccountId: t.account.id } }),
  },
  { name: "rest POST roll api-key", target: "apiKey", management: true, request: (_, t) => ({ method: "POST", path: `/v1/api-keys/${t.key!.id}/roll`, body: { expiresInSeconds: 0 } }) },
  { name: "rest DELETE main api-key", target: "apiKey", management: true, request: (_, t) => ({ method: "DELETE", path: `/v1/api-keys/${t.key!.id}` }) },
  { name: "rest PATCH api-key", target: "apiKey", management: true, request: (_, t) => ({ method: "PATCH", path: `/v1/api-keys/${t.key!.id}`, body: { name: "hijacked" } }) },
  {
    name: "rest POST message as another account",
    target: "anyAccount",
    management: false,
    request: (_, t) => ({ method: "POST", path: "/v1/messages", body: { to: "+14155550100", text: "as someone else" }, headers: { "x-sub-account-id": t.account.id } }),
  },
  { name: "rest GET sub-account", target: "anyAccount", management: true, request: (_, t) => ({ method: "GET", path: `/v1/sub-accounts/${t.account.id}` }) },
  { name: "rest PATCH sub-account", target: "anyAccount", management: true, request: (_, t) => ({ method: "PATCH", path: `/v1/sub-accounts/${t.account.id}`, body: { ...HIJACK, status: "inactive" } }) },
  { name: "rest DELETE sub-account", target: "anyAccount", management: true, request: (_, t) => ({ method: "DELETE", path: `/v1/sub-accounts/${t.account.id}` }) },
  { name: "rest GET sub-account balance", target: "anyAccount", management: true, request: (_, t) => ({ method: "GET", path: `/v1/sub-accounts/${t.account.id}/balance` }) },
  { name: "rest POST api-key", target: "anyAccount", management: true, request: (_, t) => ({ method: "POST", path: `/v1/sub-accounts/${t.account.id}/api-keys`, body: { name: "intruder" } }) },
  { name: "rest GET api-keys", target: "anyAccount", management: true, request: (_, t) => ({ method: "GET", path: `/v1/sub-accounts/${t.account.id}/api-keys` }) },
  { name: "rest DELETE api-key", target: "apiKey", management: true, request: (_, t) => ({ method: "DELETE", path: `/v1/sub-accounts/${t.account.id}/api-keys/${t.key!.id}` }) },
  { name: "rest DELETE api-key via an own sub-account", target: "apiKey", management: true, request: (a, t) => ({ method: "DELETE", path: `/v1/sub-accounts/${ownSubAccountId(a)}/api-keys/${t.key!.id}` }) },
  { name: "rest GET message", target: "message", management: false, request: (_, t) => ({ method: "GET", path: `/v1/messages/${t.message!.id}` }) },
  { name: "rest GET messages of another account", target: "anyAccount", management: false, request: (_, t) => ({ method: "GET", path: `/v1/messages?subAccountId=${t.account.id}&limit=100` }) },
];

/** Operations that succeed for the actor's own data but must carry nothing of anyone else's. */
const OWN_OPERATIONS: Operation[] = [
  { name: "graphql viewer", target: "none", management: false, request: () => gql(`{ viewer { apiKey { id name keyPrefix } account { id name isSubAccount } team { id name balance } isTestMode } }`, {}) },
  { name: "graphql balance", target: "none", management: false, request: () => gql(`{ balance { balance totalSpent creditLimit isSubAccount } }`, {}) },
  { name: "graphql subAccounts", target: "none", management: true, request: () => gql(`{ subAccounts(first: 100) { totalCount edges { node { ${SUB_FIELDS} } } } }`, {}) },
  {
    name: "graphql subAccounts by another account's externalId",
    target: "subAccount",
    management: true,
    request: (_, t) => gql(`query($e: String) { subAccounts(first: 100, externalId: $e) { totalCount edges { node { id name } } } }`, { e: t.account.externalId }),
  },
  { name: "graphql messages", target: "none", management: false, request: () => gql(`{ messages(first: 100) { edges { node { ${MESSAGE_FIELDS} } } } }`, {}) },
  {
    name: "graphql sendMessage with another account's idempotencyKey",
    target: "message",
    management: false,
    request: (_, t) => gql(`mutation($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`, { input: { to: "+14155550100", text: "mine", idempotencyKey: t.message!.idempotencyKey } }),
  },
  { name: "rest GET me", target: "none", management: false, request: () => ({ method: "GET", path: "/v1/me" }) },
  { name: "rest GET balance", target: "none", management: false, request: () => ({ method: "GET", path: "/v1/balance" }) },
  { name: "rest GET sub-accounts", target: "none", management: true, request: () => ({ method: "GET", path: "/v1/sub-accounts?limit=100" }) },
  { name: "rest GET sub-accounts by another account's externalId", target: "subAccount", management: true, request: (_, t) => ({ method: "GET", path: `/v1/sub-accounts?externalId=${encodeURIComponent(t.account.externalId ?? "")}` }) },
  { name: "rest GET messages", target: "none", management: false, request: () => ({ method: "GET", path: "/v1/messages?limit=100" }) },
  {
    name: "rest POST message with another account's idempotencyKey",
    target: "message",
    management: false,
    request: (_, t) => ({ method: "POST", path: "/v1/messages", body: { to: "+14155550100", text: "mine", idempotencyKey: t.message!.idempotencyKey } }),
  },
];

function ownSubAccountId(actor: Actor): string {
  return actor.ownSubAccountId;
}

describe(`tenant isolation as a property (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;
  let agent: http.Agent;
  const accounts: AccountInfo[] = [];
  const teamIds: string[] = [];
  const seed = runSeed(`tenant isolation (${TEST_PROVIDER})`);
  let cases = 0;

  beforeAll(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_RPS: "0" } });
    agent = createAgent(4);
  });
  afterAll(async () => {
    agent?.destroy();
    await gw?.close();
    console.log(`tenant isolation (${TEST_PROVIDER}): ${cases} cases over ${WORLDS} random worlds (seed ${seed})`);
  });

  async function call(key: string, request: { method: string; path: string; body?: unknown; headers?: Record<string, string> }): Promise<RawResponse> {
    return sendRaw(
      gw.url,
      {
        method: request.method,
        path: request.path,
        headers: { ...request.headers, authorization: `Bearer ${key}`, accept: "application/json", ...(request.body === undefined ? {} : { "content-type": "application/json" }) },
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
      },
      agent,
    );
  }

  async function graphqlData(key: string, query: string, variables: Record<string, unknown>) {
    const response = await call(key, gql(query, variables));
    expect(response.json?.errors, `${query}: ${response.text}`).toBeUndefined();
    return response.json.data;
  }

  /** Builds one random world through the public API and records who owns what. */
  async function buildWorld(shape: typeof worldShape extends fc.Arbitrary<infer T> ? T : never): Promise<AccountInfo[]> {
    const world: AccountInfo[] = [];
    const sharedIdempotencyKey = token("order"); // the same key in every account: each must get its own message
    for (const teamShape of shape) {
      const teamName = token("Team");
      const team = await gw.createTeam({ name: teamName, balance: 1_000_000 });
      teamIds.push(team.teamId);
      const main: AccountInfo = { id: team.mainAccountId, teamId: team.teamId, kind: "main", active: true, name: teamName, externalId: null, keys: [{ id: "", key: team.mainKey, state: "live" }], messages: [] };
      world.push(main);
      const subs: { info: AccountInfo; shape: (typeof teamShape.subAccounts)[number] }[] = [];
      for (const subShape of teamShape.subAccounts) {
        const name = token("Client");
        const externalId = token("ext");
        const created = await graphqlData(
          team.mainKey,
          `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id apiKeys { id } } } }`,
          { input: { name, externalId, creditLimit: subShape.creditLimit, metadata: { owner: token("meta") } } },
        );
        const info: AccountInfo = {
          id: created.createSubAccount.subAccount.id,
          teamId: team.teamId,
          kind: "sub",
          active: true,
          name,
          externalId,
          keys: [{ id: created.createSubAccount.subAccount.apiKeys[0].id, key: created.createSubAccount.apiKey, state: "live" }],
          messages: [],
        };
        for (const extra of [subShape.withTestKey ? "test" : null, subShape.withRevokedKey ? "revoked" : null]) {
          if (!extra) continue;
          const made = await graphqlData(
            team.mainKey,
            `mutation($id: ID!, $input: CreateSubAccountApiKeyInput) { createSubAccountApiKey(subAccountId: $id, input: $input) { key apiKey { id } } }`,
            { id: info.id, input: { name: token("key"), environment: extra === "test" ? "TEST" : "LIVE" } },
          );
          info.keys.push({ id: made.createSubAccountApiKey.apiKey.id, key: made.createSubAccountApiKey.key, state: extra as KeyInfo["state"] });
        }
        world.push(info);
        subs.push({ info, shape: subShape });
      }
      // Messages from every account (live keys; test keys too, which are priced but not charged).
      for (const account of [main, ...subs.map((s) => s.info)]) {
        const count = account.kind === "main" ? teamShape.mainMessages : subs.find((s) => s.info === account)!.shape.messages;
        for (let index = 0; index < count; index += 1) {
          const key = account.keys.find((k) => k.state === (index === 1 ? "test" : "live")) ?? account.keys[0]!;
          const idempotencyKey = index === 0 ? sharedIdempotencyKey : token("idem");
          const text = token("secret text");
          const sent = await graphqlData(key.key, `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`, { input: { to: "+14155550100", text, idempotencyKey } });
          account.messages.push({ id: sent.sendMessage.id, idempotencyKey, text });
        }
      }
      // Revoke and suspend last, once the messages exist.
      for (const { info, shape: subShape } of subs) {
        const revoked = info.keys.find((k) => k.state === "revoked");
        if (revoked) {
          await graphqlData(team.mainKey, `mutation($s: ID!, $k: ID!) { revokeSubAccountApiKey(subAccountId: $s, apiKeyId: $k) { id } }`, { s: info.id, k: revoked.id });
        }
        if (subShape.suspended) {
          await graphqlData(team.mainKey, `mutation($id: ID!) { updateSubAccount(id: $id, input: { status: INACTIVE }) { id } }`, { id: info.id });
          info.active = false;
        }
      }
      const mainKeyRow = await gw.db.prisma.apiKey.findFirstOrThrow({ where: { accountId: main.id } });
      main.keys[0]!.id = mainKeyRow.id;
    }
    return world;
  }

  /** What an actor owns: a main key its whole team, a sub-account key its own account. */
  function owns(actor: Actor, account: AccountInfo): boolean {
    return actor.account.kind === "main" ? account.teamId === actor.account.teamId : account.id === actor.account.id;
  }

  /** Every marker of the accounts the actor does not own: ids, names, externalIds, texts. */
  function foreignMarkers(actor: Actor): string[] {
    return accounts
      .filter((account) => !owns(actor, account))
      .flatMap((account) => [
        account.id,
        // The main account is named after the team, whose name a sub-account key may see.
        ...(account.kind === "main" && account.teamId === actor.account.teamId ? [] : [account.name]),
        ...(account.externalId ? [account.externalId] : []),
        ...account.keys.flatMap((key) => [key.id, key.key.slice(0, 16)]),
        ...account.messages.flatMap((message) => [message.id, message.text]),
      ]);
  }

  /** Everything of the accounts the actor does not own, straight from the database (minus what the carrier and key use move). */
  async function foreignSnapshot(actor: Actor): Promise<string> {
    const ids = accounts.filter((account) => !owns(actor, account)).map((account) => account.id);
    const otherTeams = teamIds.filter((id) => id !== actor.account.teamId);
    const [rows, keys, messages, ledger, teams] = await Promise.all([
      gw.db.prisma.account.findMany({ where: { id: { in: ids } }, orderBy: { id: "asc" } }),
      gw.db.prisma.apiKey.findMany({ where: { accountId: { in: ids } }, orderBy: { id: "asc" }, omit: { lastUsedAt: true } }),
      gw.db.prisma.message.findMany({ where: { accountId: { in: ids } }, orderBy: { id: "asc" }, select: { id: true, accountId: true, cost: true, idempotencyKey: true, text: true, metadata: true } }),
      gw.db.prisma.ledgerEntry.findMany({ where: { accountId: { in: ids } }, orderBy: { id: "asc" } }),
      gw.db.prisma.team.findMany({ where: { id: { in: otherTeams } }, orderBy: { id: "asc" } }),
    ]);
    return JSON.stringify({ rows, keys, messages, ledger, teams }, (_key, value) => (typeof value === "bigint" ? String(value) : value));
  }

  /** The code README.md's "Errors" gives for this actor aimed at someone else's target. */
  function expectedRefusal(actor: Actor, operation: Operation, target: Target): string[] {
    if (actor.key.state === "revoked" || !actor.account.active) return ["unauthorized"];
    if (actor.account.kind === "sub") {
      if (operation.management) return ["forbidden"];
      // A message id of another account is unknown to it; asking for another account's list is forbidden.
      return operation.target === "message" ? ["not_found"] : ["forbidden", "not_found"];
    }
    // A main key: another team's id is not_found, never forbidden and never data.
    void target;
    return ["not_found"];
  }

  function codeOf(response: RawResponse, graphql: boolean): string | undefined {
    return graphql ? response.json?.errors?.[0]?.extensions?.code : response.json?.code;
  }

  for (let worldIndex = 0; worldIndex < WORLDS; worldIndex += 1) {
    it(`world ${worldIndex + 1}: no key reads or changes anything of an account it does not own (${CASES_PER_WORLD} cases)`, async () => {
      const [shape] = fc.sample(worldShape, { seed: seed + worldIndex, numRuns: 1 });
      const world = await buildWorld(shape!);
      accounts.push(...world);
      const actors: Actor[] = world.flatMap((account) =>
        account.keys.map((key) => ({
          account,
          key,
          ownSubAccountId: account.kind === "sub" ? account.id : world.find((a) => a.teamId === account.teamId && a.kind === "sub")!.id,
        })),
      );
      const operations = [...OPERATIONS, ...OWN_OPERATIONS];

      const scenario = fc.record({
        actor: fc.constantFrom(...actors),
        operation: fc.constantFrom(...operations),
        pick: fc.nat(),
      });

      await fc.assert(
        fc.asyncProperty(scenario, async ({ actor, operation, pick }) => {
          const foreign = accounts.filter((account) => !owns(actor, account));
          const candidates: Target[] = (() => {
            switch (operation.target) {
              case "subAccount":
                return foreign.filter((a) => a.kind === "sub").map((account) => ({ account }));
              case "anyAccount":
              case "none":
                return foreign.map((account) => ({ account }));
              case "apiKey":
                return foreign.flatMap((account) => account.keys.map((key) => ({ account, key })));
              case "message":
                return foreign.flatMap((account) => account.messages.map((message) => ({ account, message })));
            }
          })();
          if (candidates.length === 0) return; // e.g. no foreign sub-account for this target kind
          const target = candidates[pick % candidates.length]!;
          const request = operation.request(actor, target);
          const before = await foreignSnapshot(actor);
          const response = await call(actor.key.key, request);
          cases += 1;
          const label = `${operation.name} by a ${actor.key.state} key of ${actor.account.kind} ${actor.account.id} (${actor.account.active ? "active" : "suspended"}) aimed at ${target.account.kind} ${target.account.id} of team ${target.account.teamId}`;
          const describeResponse = `${label}\nstatus ${response.status}: ${response.text.slice(0, 1200)}`;

          expect(response.status, describeResponse).toBeLessThan(500);
          const code = codeOf(response, request.graphql === true);
          if (OPERATIONS.includes(operation)) {
            expect(expectedRefusal(actor, operation, target), describeResponse).toContain(code);
          } else if (response.status >= 400) {
            // Own-data operations may be refused for the actor's own reasons, never with another's data.
            expect(["unauthorized", "forbidden", "credit_limit_exceeded", "insufficient_balance", "conflict"], describeResponse).toContain(code);
            if (actor.key.state === "revoked" || !actor.account.active) expect(code, describeResponse).toBe("unauthorized");
          }

          // No marker of a foreign account anywhere in the response, except what the request itself sent.
          const sentStrings = new Set(echoableStrings(request));
          const text = response.text;
          const leaked = foreignMarkers(actor).filter((marker) => !sentStrings.has(marker) && !request.path.includes(marker) && text.includes(marker));
          expect(leaked, describeResponse).toEqual([]);

          // A conflict names the actor's own message, never another account's.
          const conflictMessageId = request.graphql ? response.json?.errors?.[0]?.extensions?.details?.messageId : response.json?.details?.messageId;
          if (conflictMessageId) expect(foreignMarkers(actor), describeResponse).not.toContain(conflictMessageId);
          const message = request.graphql ? response.json?.data?.sendMessage : response.json?.message;
          if (message?.accountId) expect(message.accountId, describeResponse).toBe(actor.account.id);

          expect(await foreignSnapshot(actor), `${label}: a row of an account it does not own changed`).toBe(before);
        }),
        { numRuns: CASES_PER_WORLD, seed: seed + worldIndex, verbose: 0 },
      );
      for (const teamId of new Set(world.map((account) => account.teamId))) await checkInvariants(gw.db, teamId);
    }, 300_000);
  }
});
