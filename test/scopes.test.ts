import fc from "fast-check";
import { getIntrospectionQuery } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCOPES, SUB_ACCOUNT_SCOPES, type Scope } from "../src/domain/scopes.ts";
import { allRoutes } from "../src/rest/index.ts";
import { fingerprint, fingerprintChanges } from "./helpers/fingerprint.ts";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { subscribeSse, subscribeWs } from "./helpers/subscriptions.ts";

/**
 * Scopes as a property (README.md, "API keys and scopes"): for random keys of
 * either kind holding random sets of scopes, and every operation of the
 * GraphQL schema and of /v1, the operation runs if and only if the key holds
 * the scope it needs (and its kind may hold it); a refused call is 403
 * forbidden with details.requiredScope and changes nothing.
 *
 * SPEC is this test's own copy of the rule, operation by operation: the
 * gateway must agree with it, and every operation the gateway serves must be
 * in it.
 */

type Needs = Scope | "none";

const GRAPHQL_SPEC: Record<string, Needs> = {
  viewer: "none",
  balance: "balance:read",
  subAccount: "sub_accounts:read",
  subAccounts: "sub_accounts:read",
  subAccountBalance: "sub_accounts:read",
  messages: "messages:read",
  message: "messages:read",
  auditLog: "audit:read",
  createSubAccount: "sub_accounts:write",
  updateSubAccount: "sub_accounts:write",
  deactivateSubAccount: "sub_accounts:write",
  createSubAccountApiKey: "api_keys:write",
  revokeSubAccountApiKey: "api_keys:write",
  createApiKey: "api_keys:write",
  rollApiKey: "api_keys:write",
  updateApiKey: "api_keys:write",
  revokeApiKey: "api_keys:write",
  sendMessage: "messages:send",
  spendUpdated: "spend:read",
  spendReport: "spend:read",
  spendAlerts: "spend:read",
  spendAlertRaised: "spend:read",
  updateTeam: "team:write",
  webhookEndpoints: "webhooks:write",
  webhookEndpoint: "webhooks:write",
  webhookDeliveries: "webhooks:write",
  createWebhookEndpoint: "webhooks:write",
  updateWebhookEndpoint: "webhooks:write",
  deleteWebhookEndpoint: "webhooks:write",
  rotateWebhookSecret: "webhooks:write",
  redeliverWebhookEvent: "webhooks:write",
};

const REST_SPEC: Record<string, Needs | "public"> = {
  "POST /v1/sub-accounts": "sub_accounts:write",
  "GET /v1/sub-accounts": "sub_accounts:read",
  "GET /v1/sub-accounts/:id": "sub_accounts:read",
  "PATCH /v1/sub-accounts/:id": "sub_accounts:write",
  "DELETE /v1/sub-accounts/:id": "sub_accounts:write",
  "GET /v1/sub-accounts/:id/balance": "sub_accounts:read",
  "POST /v1/sub-accounts/:id/api-keys": "api_keys:write",
  "GET /v1/sub-accounts/:id/api-keys": "sub_accounts:read",
  "DELETE /v1/sub-accounts/:id/api-keys/:keyId": "api_keys:write",
  "GET /v1/api-keys": "none",
  "POST /v1/api-keys": "api_keys:write",
  "PATCH /v1/api-keys/:keyId": "api_keys:write",
  "POST /v1/api-keys/:keyId/roll": "api_keys:write",
  "DELETE /v1/api-keys/:keyId": "api_keys:write",
  "GET /v1/balance": "balance:read",
  "GET /v1/me": "none",
  "POST /v1/messages": "messages:send",
  "GET /v1/messages": "messages:read",
  "GET /v1/messages/:id": "messages:read",
  "GET /v1/spend": "spend:read",
  "GET /v1/spend/alerts": "spend:read",
  "PATCH /v1/team": "team:write",
  "POST /v1/webhook-endpoints": "webhooks:write",
  "GET /v1/webhook-endpoints": "webhooks:write",
  "GET /v1/webhook-endpoints/:id": "webhooks:write",
  "PATCH /v1/webhook-endpoints/:id": "webhooks:write",
  "DELETE /v1/webhook-endpoints/:id": "webhooks:write",
  "POST /v1/webhook-endpoints/:id/rotate-secret": "webhooks:write",
  "GET /v1/webhook-endpoints/:id/deliveries": "webhooks:write",
  "POST /v1/webhook-endpoints/:id/events/:eventId/redeliver": "webhooks:write",
  "GET /v1/openapi.json": "public",
};

/** Where the throwaway endpoints point: nothing listens, and no test waits for a delivery. */
const HOOK_URL = "http://127.0.0.1:9/hooks";

const RUNS = Number(process.env.SCOPE_RUNS ?? 250);

/** What one case works on: its own throwaway targets, so an allowed call always has something to act on. */
interface Targets {
  subId: string;
  subKeyId: string;
  mainKeyId: string;
  messageId: string;
  endpointId: string;
  eventId: string;
}

interface Outcome {
  status: number;
  code?: string;
  requiredScope?: string;
}

describe(`scopes as a property (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;
  let mainKey: string;
  let teamId: string;

  const gql = async (key: string, query: string, variables: Record<string, unknown> = {}): Promise<Outcome> => {
    const response = await gw.gql(query, variables, key);
    const error = response.errors?.[0];
    return { status: response.status, code: error?.extensions.code, requiredScope: error?.extensions.details?.requiredScope };
  };
  const rest = async (key: string, method: string, path: string, body?: unknown): Promise<Outcome> => {
    const response = await fetch(`${gw.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const json = text ? (JSON.parse(text) as { code?: string; details?: { requiredScope?: string } }) : {};
    return { status: response.status, code: json.code, requiredScope: json.details?.requiredScope };
  };
  const subscription = async (key: string, transport: "ws" | "sse", query = `subscription { spendUpdated { sequence } }`): Promise<Outcome> => {
    const before = gw.gateway.services.openSubscriptions;
    const stream = transport === "ws" ? await subscribeWs(gw.url, key, query) : await subscribeSse(gw.url, key, query);
    const opened = await Promise.race([
      stream.ended.then(() => false),
      (async () => {
        while (gw.gateway.services.openSubscriptions <= before) await new Promise((resolve) => setTimeout(resolve, 5));
        return true;
      })(),
    ]);
    stream.close();
    const error = stream.errors[0] as { extensions?: { code?: string; details?: { requiredScope?: string } } } | undefined;
    return opened ? { status: 200 } : { status: 403, code: error?.extensions?.code, requiredScope: error?.extensions?.details?.requiredScope };
  };

  /** Every operation, by the name SPEC knows it by, run with `key` against `t`. */
  const OPERATIONS: Record<string, (key: string, t: Targets) => Promise<Outcome>> = {
    viewer: (key) => gql(key, `{ viewer { apiKey { id } account { id apiKeys { id } } } }`),
    balance: (key) => gql(key, `{ balance { balance } }`),
    subAccount: (key, t) => gql(key, `query($id: ID!) { subAccount(id: $id) { id apiKeys { id } } }`, { id: t.subId }),
    subAccounts: (key) => gql(key, `{ subAccounts(first: 5) { totalCount edges { node { id } } } }`),
    subAccountBalance: (key, t) => gql(key, `query($id: ID!) { subAccountBalance(id: $id) { balance } }`, { id: t.subId }),
    messages: (key) => gql(key, `{ messages(first: 5) { edges { node { id } } } }`),
    message: (key, t) => gql(key, `query($id: ID!) { message(id: $id) { id } }`, { id: t.messageId }),
    auditLog: (key) => gql(key, `{ auditLog(first: 5) { edges { node { id } } } }`),
    createSubAccount: (key) => gql(key, `mutation { createSubAccount(input: { name: "By scope" }) { apiKey } }`),
    updateSubAccount: (key, t) => gql(key, `mutation($id: ID!) { updateSubAccount(id: $id, input: { name: "Renamed by scope" }) { id } }`, { id: t.subId }),
    deactivateSubAccount: (key, t) => gql(key, `mutation($id: ID!) { deactivateSubAccount(id: $id) { keysRevoked } }`, { id: t.subId }),
    createSubAccountApiKey: (key, t) => gql(key, `mutation($id: ID!) { createSubAccountApiKey(subAccountId: $id) { key } }`, { id: t.subId }),
    revokeSubAccountApiKey: (key, t) => gql(key, `mutation($s: ID!, $k: ID!) { revokeSubAccountApiKey(subAccountId: $s, apiKeyId: $k) { id } }`, { s: t.subId, k: t.subKeyId }),
    createApiKey: (key) => gql(key, `mutation { createApiKey(input: { permissions: ["balance:read"] }) { key } }`),
    rollApiKey: (key, t) => gql(key, `mutation($id: ID!) { rollApiKey(id: $id, expiresInSeconds: 0) { key } }`, { id: t.mainKeyId }),
    updateApiKey: (key, t) => gql(key, `mutation($id: ID!) { updateApiKey(id: $id, input: { name: "Renamed" }) { id } }`, { id: t.mainKeyId }),
    revokeApiKey: (key, t) => gql(key, `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: t.mainKeyId }),
    sendMessage: (key) => gql(key, `mutation { sendMessage(input: { to: "+14155550100", text: "scoped" }) { id } }`),
    "spendUpdated over graphql-ws": (key) => subscription(key, "ws"),
    "spendUpdated over SSE": (key) => subscription(key, "sse"),
    "spendAlertRaised over graphql-ws": (key) => subscription(key, "ws", `subscription { spendAlertRaised { id } }`),
    spendReport: (key) => gql(key, `{ spendReport(from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z", groupBy: [CHANNEL]) { total { amount } } }`),
    spendAlerts: (key) => gql(key, `{ spendAlerts(first: 5) { edges { node { id } } } }`),
    updateTeam: (key) => gql(key, `mutation { updateTeam(input: { lowBalanceThreshold: 100 }) { id } }`),
    "GET /v1/spend": (key) => rest(key, "GET", "/v1/spend?from=2026-01-01&to=2026-02-01&groupBy=day,channel"),
    "GET /v1/spend/alerts": (key) => rest(key, "GET", "/v1/spend/alerts"),
    "PATCH /v1/team": (key) => rest(key, "PATCH", "/v1/team", { lowBalanceThreshold: 100 }),
    "POST /v1/sub-accounts": (key) => rest(key, "POST", "/v1/sub-accounts", { name: "By scope" }),
    "GET /v1/sub-accounts": (key) => rest(key, "GET", "/v1/sub-accounts"),
    "GET /v1/sub-accounts/:id": (key, t) => rest(key, "GET", `/v1/sub-accounts/${t.subId}`),
    "PATCH /v1/sub-accounts/:id": (key, t) => rest(key, "PATCH", `/v1/sub-accounts/${t.subId}`, { name: "Renamed" }),
    "DELETE /v1/sub-accounts/:id": (key, t) => rest(key, "DELETE", `/v1/sub-accounts/${t.subId}`),
    "GET /v1/sub-accounts/:id/balance": (key, t) => rest(key, "GET", `/v1/sub-accounts/${t.subId}/balance`),
    "POST /v1/sub-accounts/:id/api-keys": (key, t) => rest(key, "POST", `/v1/sub-accounts/${t.subId}/api-keys`, {}),
    "GET /v1/sub-accounts/:id/api-keys": (key, t) => rest(key, "GET", `/v1/sub-accounts/${t.subId}/api-keys`),
    "DELETE /v1/sub-accounts/:id/api-keys/:keyId": (key, t) => rest(key, "DELETE", `/v1/sub-accounts/${t.subId}/api-keys/${t.subKeyId}`),
    "GET /v1/api-keys": (key) => rest(key, "GET", "/v1/api-keys"),
    "POST /v1/api-keys": (key) => rest(key, "POST", "/v1/api-keys", { permissions: ["balance:read"] }),
    "PATCH /v1/api-keys/:keyId": (key, t) => rest(key, "PATCH", `/v1/api-keys/${t.mainKeyId}`, { name: "Renamed" }),
    "POST /v1/api-keys/:keyId/roll": (key, t) => rest(key, "POST", `/v1/api-keys/${t.mainKeyId}/roll`, { expiresInSeconds: 0 }),
    "DELETE /v1/api-keys/:keyId": (key, t) => rest(key, "DELETE", `/v1/api-keys/${t.mainKeyId}`),
    "GET /v1/balance": (key) => rest(key, "GET", "/v1/balance"),
    "GET /v1/me": (key) => rest(key, "GET", "/v1/me"),
    "POST /v1/messages": (key) => rest(key, "POST", "/v1/messages", { to: "+14155550100", text: "scoped" }),
    "GET /v1/messages": (key) => rest(key, "GET", "/v1/messages"),
    "GET /v1/messages/:id": (key, t) => rest(key, "GET", `/v1/messages/${t.messageId}`),
    webhookEndpoints: (key) => gql(key, `{ webhookEndpoints(first: 5) { edges { node { id } } } }`),
    webhookEndpoint: (key, t) => gql(key, `query($id: ID!) { webhookEndpoint(id: $id) { id } }`, { id: t.endpointId }),
    webhookDeliveries: (key, t) => gql(key, `query($id: ID!) { webhookDeliveries(endpointId: $id, first: 5) { edges { node { id } } } }`, { id: t.endpointId }),
    createWebhookEndpoint: (key) => gql(key, `mutation { createWebhookEndpoint(input: { url: "${HOOK_URL}" }) { secret } }`),
    updateWebhookEndpoint: (key, t) => gql(key, `mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: { description: "Renamed" }) { id } }`, { id: t.endpointId }),
    deleteWebhookEndpoint: (key, t) => gql(key, `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }`, { id: t.endpointId }),
    rotateWebhookSecret: (key, t) => gql(key, `mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`, { id: t.endpointId }),
    redeliverWebhookEvent: (key, t) => gql(key, `mutation($id: ID!, $e: ID!) { redeliverWebhookEvent(endpointId: $id, eventId: $e) { eventId } }`, { id: t.endpointId, e: t.eventId }),
    "POST /v1/webhook-endpoints": (key) => rest(key, "POST", "/v1/webhook-endpoints", { url: HOOK_URL }),
    "GET /v1/webhook-endpoints": (key) => rest(key, "GET", "/v1/webhook-endpoints"),
    "GET /v1/webhook-endpoints/:id": (key, t) => rest(key, "GET", `/v1/webhook-endpoints/${t.endpointId}`),
    "PATCH /v1/webhook-endpoints/:id": (key, t) => rest(key, "PATCH", `/v1/webhook-endpoints/${t.endpointId}`, { description: "Renamed" }),
    "DELETE /v1/webhook-endpoints/:id": (key, t) => rest(key, "DELETE", `/v1/webhook-endpoints/${t.endpointId}`),
    "POST /v1/webhook-endpoints/:id/rotate-secret": (key, t) => rest(key, "POST", `/v1/webhook-endpoints/${t.endpointId}/rotate-secret`, {}),
    "GET /v1/webhook-endpoints/:id/deliveries": (key, t) => rest(key, "GET", `/v1/webhook-endpoints/${t.endpointId}/deliveries`),
    "POST /v1/webhook-endpoints/:id/events/:eventId/redeliver": (key, t) =>
      rest(key, "POST", `/v1/webhook-endpoints/${t.endpointId}/events/${t.eventId}/redeliver`, {}),
  };

  const needsOf = (operation: string): Needs => ((GRAPHQL_SPEC[operation.split(" ")[0]!] ?? REST_SPEC[operation]) as Needs);

  beforeAll(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_RPS: "0" } });
    ({ mainKey, teamId } = await gw.createTeam({ balance: 10_000_000 }));
  });
  afterAll(() => gw?.close());

  it("SPEC covers every root field of the schema and every /v1 route, and the route table says the same scopes", async () => {
    const schema = (await gw.gql(getIntrospectionQuery(), {})).data.__schema;
    const roots = [schema.queryType.name, schema.mutationType.name, schema.subscriptionType.name];
    const fields = schema.types.filter((type: { name: string }) => roots.includes(type.name)).flatMap((type: { fields: { name: string }[] }) => type.fields.map((f) => f.name));
    expect(fields.sort()).toEqual(Object.keys(GRAPHQL_SPEC).sort());
    const routes = Object.fromEntries(allRoutes.map((route) => [`${route.method} ${route.path}`, route.access === "key" ? "none" : route.access]));
    expect(routes).toEqual(REST_SPEC);
  });

  /** Fresh targets for one case, made with the team's full main key. */
  async function targets(): Promise<Targets & { subKey: string }> {
    const created = await gw.gql(`mutation { createSubAccount(input: { name: "Target" }) { apiKey subAccount { id apiKeys { id } } } }`, {}, mainKey);
    const sub = created.data.createSubAccount;
    const spare = await gw.gql(`mutation($id: ID!) { createSubAccountApiKey(subAccountId: $id) { apiKey { id } } }`, { id: sub.subAccount.id }, mainKey);
    const mainSpare = await gw.gql(`mutation { createApiKey(input: { name: "Spare", permissions: ["balance:read"] }) { apiKey { id } } }`, {}, mainKey);
    const sent = await gw.gql(`mutation { sendMessage(input: { to: "+14155550100", text: "target" }) { id } }`, {}, sub.apiKey);
    const hook = await gw.gql(`mutation { createWebhookEndpoint(input: { url: "${HOOK_URL}", events: [SUB_ACCOUNT_CREATED] }) { endpoint { id } } }`, {}, mainKey);
    const event = await gw.db.prisma.webhookEvent.findFirstOrThrow({ where: { teamId }, orderBy: { createdAt: "desc" }, select: { id: true } });
    return {
      subId: sub.subAccount.id,
      subKey: sub.apiKey,
      subKeyId: spare.data.createSubAccountApiKey.apiKey.id,
      mainKeyId: mainSpare.data.createApiKey.apiKey.id,
      messageId: sent.data.sendMessage.id,
      endpointId: hook.data.createWebhookEndpoint.endpoint.id,
      eventId: event.id,
    };
  }

  /** A key of `kind` holding `scopes` (empty: every scope of its kind). */
  async function keyWith(kind: "main" | "sub", scopes: readonly Scope[], t: Targets): Promise<string> {
    if (kind === "main") return (await gw.gql(`mutation($p: [String!]) { createApiKey(input: { permissions: $p }) { key } }`, { p: scopes }, mainKey)).data.createApiKey.key;
    const made = await gw.gql(`mutation($id: ID!, $p: [String!]) { createSubAccountApiKey(subAccountId: $id, input: { permissions: $p }) { key } }`, { id: t.subId, p: scopes }, mainKey);
    return made.data.createSubAccountApiKey.key;
  }

  it(`runs an operation if and only if the key holds its scope; a refusal is forbidden, names the scope and changes nothing (${RUNS} cases)`, { timeout: 600_000 }, async () => {
    const kinds = fc.constantFrom<"main" | "sub">("main", "sub");
    const cases = kinds.chain((kind) =>
      fc.record({
        kind: fc.constant(kind),
        scopes: fc.subarray([...(kind === "main" ? SCOPES : SUB_ACCOUNT_SCOPES)]),
        operation: fc.constantFrom(...Object.keys(OPERATIONS)),
      }),
    );
    const seen = { allowed: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(cases, async ({ kind, scopes, operation }) => {
        const t = await targets();
        const key = await keyWith(kind, scopes, t);
        const held: readonly Scope[] = scopes.length === 0 ? (kind === "main" ? SCOPES : SUB_ACCOUNT_SCOPES) : scopes;
        const needs = needsOf(operation);
        const allowed = needs === "none" || held.includes(needs);
        const before = await fingerprint(gw.db);
        const outcome = await OPERATIONS[operation]!(key, t);
        const label = `${kind} key holding [${scopes.join(", ")}] on ${operation} (needs ${needs})`;
        if (allowed) {
          seen.allowed += 1;
          expect(outcome.status, `${label}: ${JSON.stringify(outcome)}`).toBeLessThan(300);
        } else {
          seen.refused += 1;
          expect(outcome, label).toEqual({ status: 403, code: "forbidden", requiredScope: needs });
          expect(fingerprintChanges(before, await fingerprint(gw.db)), label).toEqual([]);
        }
      }),
      { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
    expect(seen.allowed).toBeGreaterThan(RUNS / 5);
    expect(seen.refused).toBeGreaterThan(RUNS / 5);
  });
});
