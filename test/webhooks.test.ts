import fc from "fast-check";
import { randomBytes } from "node:crypto";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEBHOOK_EVENT_TYPES } from "../src/domain/webhooks.ts";
import { anyString, anyValue, mostly, runSeed, runs } from "./helpers/arbitraries.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { createAgent } from "./helpers/http.ts";
import { findLeak, echoableStrings, graphqlContractProblem, restContractProblem, sendRaw } from "./helpers/responses.ts";
import { onlyError, startGateway, type TestGateway } from "./helpers/gateway.ts";
import { waitUntil } from "./helpers/process.ts";
import { WebhookReceiver } from "./helpers/webhookReceiver.ts";
import { CREATE_ENDPOINT, DELIVERIES, ENDPOINT_FIELDS, SECRETS_KEY, WEBHOOK_ENV } from "./helpers/webhooks.ts";

/**
 * Webhooks (README.md, "Webhooks") over real HTTP, with real receivers: every
 * event type arrives signed so that the standardwebhooks verifier accepts it
 * (and refuses it altered), its data is the object's REST view, and the
 * endpoints are managed through GraphQL and REST by main keys only.
 */

const CREATE_SUB = `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`;
const UPDATE_SUB = `mutation($id: ID!, $input: UpdateSubAccountInput!) { updateSubAccount(id: $id, input: $input) { id status } }`;

/** Every event of the receiver's path, verified with `secret` (throws if any signature does not verify). */
function verifiedEvents(receiver: WebhookReceiver, secret: string, path = "/") {
  return receiver.events(path).map((event) => ({ ...event, verified: new Webhook(secret).verify(event.received.body, event.received.headers) as any }));
}

describe(`webhooks (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;
  let receiver: WebhookReceiver;
  let team: Awaited<ReturnType<TestGateway["createTeam"]>>;

  beforeAll(async () => {
    gw = await startGateway({ env: WEBHOOK_ENV });
    receiver = await WebhookReceiver.start();
    team = await gw.createTeam({ name: "Webhook team" });
  });
  afterAll(async () => {
    await gw?.close();
    await receiver?.close();
  });

  async function createEndpoint(key: string, input: Record<string, unknown>) {
    const response = await gw.gql(CREATE_ENDPOINT, { input }, key);
    expect(response.errors).toBeUndefined();
    return response.data.createWebhookEndpoint as { secret: string; endpoint: { id: string; events: string[] } };
  }

  async function rest(method: string, path: string, key: string, body?: unknown) {
    const response = await fetch(`${gw.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: response.status === 204 ? null : ((await response.json()) as any) };
  }

  it("delivers every event type, signed so that standardwebhooks verifies it, and refuses it altered", { timeout: 60_000 }, async () => {
    const { secret, endpoint } = await createEndpoint(team.mainKey, { url: `${receiver.url}/all`, events: WEBHOOK_EVENT_TYPES.map((t) => t.replace(".", "_").toUpperCase()) });
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(endpoint.events).toHaveLength(WEBHOOK_EVENT_TYPES.length);

    const sub = (await gw.gql(CREATE_SUB, { input: { name: "Client", externalId: "ext-1", creditLimit: 5000 } }, team.mainKey)).data.createSubAccount;
    const subId = sub.subAccount.id as string;
    await gw.gql(UPDATE_SUB, { id: subId, input: { name: "Client renamed" } }, team.mainKey);
    await gw.gql(UPDATE_SUB, { id: subId, input: { status: "INACTIVE" } }, team.mainKey);
    await gw.gql(UPDATE_SUB, { id: subId, input: { status: "ACTIVE" } }, team.mainKey);
    const key = (await gw.gql(`mutation($id: ID!) { createSubAccountApiKey(subAccountId: $id, input: { name: "extra" }) { key apiKey { id } } }`, { id: subId }, team.mainKey)).data
      .createSubAccountApiKey;
    await gw.gql(`mutation($s: ID!, $k: ID!) { revokeSubAccountApiKey(subAccountId: $s, apiKeyId: $k) { id } }`, { s: subId, k: key.apiKey.id }, team.mainKey);
    // The first charge takes the balance below the team's low-balance threshold: a real spend alert.
    const balanceBefore = (await rest("GET", "/v1/balance", team.mainKey)).body.balance as number;
    expect((await rest("PATCH", "/v1/team", team.mainKey, { lowBalanceThreshold: balanceBefore })).status).toBe(200);
    const delivered = (await gw.gql(`mutation { sendMessage(input: { to: "+14155550100", text: "hello" }) { id } }`, {}, sub.apiKey)).data.sendMessage.id as string;
    const failed = (await gw.gql(`mutation { sendMessage(input: { to: "+14155550101", text: "bye" }) { id } }`, {}, sub.apiKey)).data.sendMessage.id as string;
    await gw.db.charges.advanceMessageStatus(failed, "failed", new Date());
    await gw.gateway.services.teams.topUp(team.teamId, 1234);
    await waitUntil("the first message delivered", 10_000, async () => ((await rest("GET", `/v1/messages/${delivered}`, team.mainKey)).body.message.status === "delivered" ? true : undefined));
    await gw.gql(`mutation($id: ID!) { deactivateSubAccount(id: $id) { keysRevoked } }`, { id: subId }, team.mainKey);
    const afterDeactivation = (await rest("GET", `/v1/sub-accounts/${subId}`, team.mainKey)).body.subAccount;
    const keysAfterDeactivation = (await rest("GET", `/v1/sub-accounts/${subId}/api-keys`, team.mainKey)).body.items;
    const alerts = (await rest("GET", "/v1/spend/alerts", team.mainKey)).body.items;
    expect(alerts.map((alert: any) => alert.kind)).toEqual(["low_balance"]);
    const messages = {
      delivered: (await rest("GET", `/v1/messages/${delivered}`, team.mainKey)).body.message,
      failed: (await rest("GET", `/v1/messages/${failed}`, team.mainKey)).body.message,
    };
    expect(await gw.gateway.services.accounts.purgeExpired(new Date(Date.now() + 15 * 86_400_000))).toEqual([subId]);

    const expected = [...WEBHOOK_EVENT_TYPES];
    await waitUntil("an event of every type", 15_000, () => (expected.every((type) => receiver.events("/all").some((e) => e.body.type === type)) ? true : undefined));
    const events = verifiedEvents(receiver, secret, "/all");
    const ofType = (type: string) => events.filter((e) => e.verified.type === type).map((e) => e.verified);

    // Bodies: { type, timestamp, data }, data the REST view of the object.
    for (const event of events) expect(Object.keys(event.verified)).toEqual(["type", "timestamp", "data"]);
    expect(ofType("sub_account.created")[0].data).toMatchObject({ id: subId, name: "Client", externalId: "ext-1", status: "active", creditLimit: 5000 });
    expect(ofType("sub_account.updated")[0].data).toMatchObject({ id: subId, name: "Client renamed" });
    expect(ofType("sub_account.suspended")[0].data).toMatchObject({ id: subId, status: "inactive" });
    expect(ofType("sub_account.reactivated")[0].data).toMatchObject({ id: subId, status: "active" });
    expect(ofType("sub_account.deactivated")[0].data).toEqual(afterDeactivation);
    expect(ofType("sub_account.purged")[0].data).toEqual(afterDeactivation);
    const created = ofType("api_key.created").map((e) => e.data);
    expect(created.map((k: any) => k.id).sort()).toEqual(keysAfterDeactivation.map((k: any) => k.id).sort());
    expect(created.find((k: any) => k.id === key.apiKey.id)).toEqual({ ...keysAfterDeactivation.find((k: any) => k.id === key.apiKey.id), revokedAt: null, accountId: subId });
    const revoked = ofType("api_key.revoked").map((e) => e.data);
    expect(revoked.map((k: any) => k.id).sort()).toEqual(keysAfterDeactivation.map((k: any) => k.id).sort());
    for (const item of revoked) expect(item).toEqual({ ...keysAfterDeactivation.find((k: any) => k.id === item.id), accountId: subId });
    expect(ofType("message.delivered")[0].data).toEqual(messages.delivered);
    expect(ofType("message.failed")[0].data).toEqual(messages.failed);
    expect(ofType("team.topped_up")[0].data).toMatchObject({ id: team.teamId, amount: 1234, currency: "USD" });
    expect(ofType("spend.alert").map((e) => e.data)).toEqual(alerts);
    for (const event of events) expect(Date.parse(event.verified.timestamp)).not.toBeNaN();

    // No key material anywhere in a delivery.
    const everything = receiver.received.map((r) => JSON.stringify(r)).join("\n");
    for (const secretText of [sub.apiKey, key.key, team.mainKey, secret]) expect(everything).not.toContain(secretText);

    // The verifier refuses a delivery whose body or timestamp was altered, or signed with another secret.
    const sample = events.find((e) => e.verified.type === "sub_account.created")!.received;
    const verifier = new Webhook(secret);
    expect(() => verifier.verify(sample.body.replace("Client", "Clienx"), sample.headers)).toThrow(WebhookVerificationError);
    expect(() => verifier.verify(sample.body, { ...sample.headers, "webhook-timestamp": String(Number(sample.timestamp) + 1) })).toThrow(WebhookVerificationError);
    expect(() => verifier.verify(sample.body, { ...sample.headers, "webhook-id": "evt_other" })).toThrow(WebhookVerificationError);
    expect(() => new Webhook(`whsec_${randomBytes(32).toString("base64")}`).verify(sample.body, sample.headers)).toThrow(WebhookVerificationError);
  });

  const OPERATIONS: { name: string; query: string; variables: (ids: { endpointId: string; eventId: string }) => Record<string, unknown> }[] = [
    { name: "webhookEndpoints", query: `{ webhookEndpoints { edges { node { id } } } }`, variables: () => ({}) },
    { name: "webhookEndpoint", query: `query($id: ID!) { webhookEndpoint(id: $id) { id } }`, variables: (ids) => ({ id: ids.endpointId }) },
    { name: "webhookDeliveries", query: `query($id: ID!) { webhookDeliveries(endpointId: $id) { edges { node { id } } } }`, variables: (ids) => ({ id: ids.endpointId }) },
    { name: "createWebhookEndpoint", query: CREATE_ENDPOINT, variables: () => ({ input: { url: "http://127.0.0.1:9/x" } }) },
    { name: "updateWebhookEndpoint", query: `mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: { description: "x" }) { id } }`, variables: (ids) => ({ id: ids.endpointId }) },
    { name: "deleteWebhookEndpoint", query: `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }`, variables: (ids) => ({ id: ids.endpointId }) },
    { name: "rotateWebhookSecret", query: `mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`, variables: (ids) => ({ id: ids.endpointId }) },
    {
      name: "redeliverWebhookEvent",
      query: `mutation($e: ID!, $v: ID!) { redeliverWebhookEvent(endpointId: $e, eventId: $v) { eventId } }`,
      variables: (ids) => ({ e: ids.endpointId, v: ids.eventId }),
    },
  ];

  it("a sub-account key is forbidden every webhook operation; another team's endpoint or event is not_found; nothing changes", async () => {
    const other = await gw.createTeam({ name: "Other team" });
    const { endpoint } = await createEndpoint(other.mainKey, { url: `${receiver.url}/other`, events: ["TEAM_TOPPED_UP"] });
    await gw.gateway.services.teams.topUp(other.teamId, 100);
    const event = await gw.db.prisma.webhookEvent.findFirstOrThrow({ where: { teamId: other.teamId, type: "team.topped_up" } });
    const ids = { endpointId: endpoint.id, eventId: event.id };
    const sub = (await gw.gql(CREATE_SUB, { input: { name: "Customer" } }, team.mainKey)).data.createSubAccount;
    const before = await gw.db.prisma.webhookEndpoint.findMany({ orderBy: { id: "asc" } });
    for (const operation of OPERATIONS) {
      const forbidden = await gw.gql(operation.query, operation.variables(ids), sub.apiKey);
      expect({ op: operation.name, status: forbidden.status, code: onlyError(forbidden).extensions.code }).toEqual({ op: operation.name, status: 403, code: "forbidden" });
      const anonymous = await gw.gql(operation.query, operation.variables(ids));
      expect({ op: operation.name, code: onlyError(anonymous).extensions.code }).toEqual({ op: operation.name, code: "unauthorized" });
      if (operation.name === "webhookEndpoints" || operation.name === "createWebhookEndpoint") continue;
      const foreign = await gw.gql(operation.query, operation.variables(ids), team.mainKey);
      expect({ op: operation.name, status: foreign.status, code: onlyError(foreign).extensions.code }).toEqual({ op: operation.name, status: 404, code: "not_found" });
    }
    // An event of another team, through an endpoint of one's own: not_found too.
    const own = await createEndpoint(team.mainKey, { url: `${receiver.url}/own`, events: ["TEAM_TOPPED_UP"] });
    const crossed = await gw.gql(OPERATIONS.at(-1)!.query, { e: own.endpoint.id, v: event.id }, team.mainKey);
    expect(onlyError(crossed).extensions.code).toBe("not_found");
    expect(await gw.db.prisma.webhookEndpoint.findMany({ where: { id: { in: before.map((e) => e.id) } }, orderBy: { id: "asc" } })).toEqual(before);
    for (const path of ["/v1/webhook-endpoints", `/v1/webhook-endpoints/${endpoint.id}`, `/v1/webhook-endpoints/${endpoint.id}/deliveries`]) {
      expect((await rest("GET", path, sub.apiKey)).status).toBe(403);
    }
    expect((await rest("POST", "/v1/webhook-endpoints", sub.apiKey, { url: "http://127.0.0.1:9/x" })).status).toBe(403);
    expect((await rest("GET", `/v1/webhook-endpoints/${endpoint.id}`, team.mainKey)).status).toBe(404);
    expect((await rest("DELETE", `/v1/webhook-endpoints/${endpoint.id}`, team.mainKey)).status).toBe(404);
  });

  it.each([
    [{ url: "not a url" }, "input.url", /absolute URL/],
    [{ url: "ftp://example.com/x" }, "input.url", /http or https/],
    [{ url: "https://user:pw@example.com/x" }, "input.url", /user name or password/],
    [{ url: `https://example.com/${"x".repeat(2100)}` }, "input.url", /at most 2048/],
    [{ url: "https://example.com/x", events: [] }, "input.events", /at least one/],
    [{ url: "https://example.com/x", events: ["NOPE"] }, "input.events", /./],
    [{ url: "https://example.com/x", description: "d".repeat(501) }, "input.description", /at most 500/],
    [{ url: "https://example.com/x", secret: "whsec_mine" }, "input", /secret/],
  ])("refuses %j naming the field, and writes nothing", async (input, field, message) => {
    const before = await gw.db.prisma.webhookEndpoint.count();
    const response = await gw.gql(CREATE_ENDPOINT, { input }, team.mainKey);
    const error = onlyError(response);
    expect(error.extensions.code).toBe("invalid_request");
    expect(String(error.extensions.details?.field ?? "")).toMatch(new RegExp(`^${field.replace(".", "\\.")}`));
    expect(error.message).toMatch(message);
    expect(await gw.db.prisma.webhookEndpoint.count()).toBe(before);
  });

  it("REST /v1/webhook-endpoints: create, list with paging, get, update, rotate, deliveries, redeliver, delete; each action audited", async () => {
    const owner = await gw.createTeam({ name: "REST team" });
    const created = await rest("POST", "/v1/webhook-endpoints", owner.mainKey, { url: `${receiver.url}/rest`, events: ["team.topped_up"], description: "  billing  " });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    expect(created.body.endpoint).toMatchObject({ url: `${receiver.url}/rest`, events: ["team.topped_up"], description: "billing", enabled: true, disabledReason: null });
    const id = created.body.endpoint.id;
    const second = await rest("POST", "/v1/webhook-endpoints", owner.mainKey, { url: `${receiver.url}/rest2` });
    expect(second.body.endpoint.events).toEqual(WEBHOOK_EVENT_TYPES.filter((t) => !t.startsWith("message.")));

    const page1 = await rest("GET", "/v1/webhook-endpoints?limit=1", owner.mainKey);
    expect(page1.body.items.map((e: any) => e.id)).toEqual([id]);
    const page2 = await rest("GET", `/v1/webhook-endpoints?limit=1&cursor=${page1.body.nextCursor}`, owner.mainKey);
    expect(page2.body).toEqual({ items: [second.body.endpoint], nextCursor: null });
    expect((await rest("GET", `/v1/webhook-endpoints/${id}`, owner.mainKey)).body.endpoint).toEqual(created.body.endpoint);

    const patched = await rest("PATCH", `/v1/webhook-endpoints/${id}`, owner.mainKey, { events: ["team.topped_up", "api_key.created"], description: null });
    expect(patched.body.endpoint).toMatchObject({ events: ["api_key.created", "team.topped_up"], description: null });
    expect((await rest("PATCH", `/v1/webhook-endpoints/${id}`, owner.mainKey, { enabled: "yes" })).body).toMatchObject({ code: "invalid_request", details: { field: "enabled" } });

    const rotated = await rest("POST", `/v1/webhook-endpoints/${id}/rotate-secret`, owner.mainKey);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(created.body.secret);
    expect(rotated.body.endpoint.previousSecretExpiresAt).toBe(rotated.body.previousSecretExpiresAt);

    await gw.gateway.services.teams.topUp(owner.teamId, 321);
    const deliveries = await waitUntil("a delivery listed", 10_000, async () => {
      const list = await rest("GET", `/v1/webhook-endpoints/${id}/deliveries`, owner.mainKey);
      return list.body.items.length > 0 ? list.body : undefined;
    });
    expect(deliveries.items[0]).toMatchObject({ eventType: "team.topped_up", attempt: 1, outcome: "succeeded", httpStatus: 200, error: null, nextRetryAt: null });
    const redelivered = await rest("POST", `/v1/webhook-endpoints/${id}/events/${deliveries.items[0].eventId}/redeliver`, owner.mainKey);
    expect(redelivered).toMatchObject({ status: 200, body: { endpointId: id, eventId: deliveries.items[0].eventId, eventType: "team.topped_up" } });
    expect((await rest("POST", `/v1/webhook-endpoints/${id}/events/evt_nope/redeliver`, owner.mainKey)).status).toBe(404);

    expect((await rest("DELETE", `/v1/webhook-endpoints/${id}`, owner.mainKey)).status).toBe(204);
    expect((await rest("GET", `/v1/webhook-endpoints/${id}`, owner.mainKey)).status).toBe(404);
    expect(await gw.db.prisma.webhookDelivery.count({ where: { endpointId: id } })).toBe(0);

    const audit = await gw.gql(`query($id: ID) { auditLog(first: 20, targetId: $id) { edges { node { action actor { type } target { type id } details } } } }`, { id }, owner.mainKey);
    const actions = audit.data.auditLog.edges.map((edge: any) => edge.node);
    expect(actions.map((a: any) => a.action).reverse()).toEqual([
      "WEBHOOK_ENDPOINT_CREATE",
      "WEBHOOK_ENDPOINT_UPDATE",
      "WEBHOOK_ENDPOINT_ROTATE_SECRET",
      "WEBHOOK_ENDPOINT_REDELIVER",
      "WEBHOOK_ENDPOINT_DELETE",
    ]);
    for (const action of actions) expect(action).toMatchObject({ actor: { type: "API_KEY" }, target: { type: "WEBHOOK_ENDPOINT", id } });
    expect(actions.find((a: any) => a.action === "WEBHOOK_ENDPOINT_UPDATE").details).toEqual({
      changedFields: ["events", "description"],
      before: { events: ["team.topped_up"], description: "billing" },
      after: { events: ["api_key.created", "team.topped_up"], description: null },
    });
    const auditText = JSON.stringify(actions);
    for (const secret of [created.body.secret, rotated.body.secret]) expect(auditText).not.toContain(secret);

    const openapi = (await (await fetch(`${gw.url}/v1/openapi.json`)).json()) as any;
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining([
        "/v1/webhook-endpoints",
        "/v1/webhook-endpoints/{id}",
        "/v1/webhook-endpoints/{id}/rotate-secret",
        "/v1/webhook-endpoints/{id}/deliveries",
        "/v1/webhook-endpoints/{id}/events/{eventId}/redeliver",
      ]),
    );
  });

  it("metrics: attempts and deliveries by outcome, pending deliveries, age of the oldest pending event", async () => {
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^gateway_webhook_attempts_total\{outcome="success"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^gateway_webhook_deliveries_total\{outcome="succeeded"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^gateway_webhook_pending_deliveries \d+$/m);
    expect(metrics).toMatch(/^gateway_webhook_oldest_pending_event_age_seconds [\d.e+-]+$/m);
  });

  it("prunes settled events (with their deliveries and attempts) after 30 days, and keeps those still being retried", async () => {
    const owner = await gw.createTeam({ name: "Pruned team" });
    receiver.answer = (request) => (request.path === "/failing" ? 500 : 200);
    try {
      const ok = await createEndpoint(owner.mainKey, { url: `${receiver.url}/kept`, events: ["TEAM_TOPPED_UP"] });
      const failing = await createEndpoint(owner.mainKey, { url: `${receiver.url}/failing`, events: ["API_KEY_CREATED"] });
      await gw.gateway.services.teams.topUp(owner.teamId, 100);
      const sub = (await gw.gql(CREATE_SUB, { input: { name: "Pruned" } }, owner.mainKey)).data.createSubAccount;
      await waitUntil("both endpoints attempted", 10_000, async () =>
        (await gw.db.prisma.webhookAttempt.count({ where: { endpointId: { in: [ok.endpoint.id, failing.endpoint.id] } } })) >= 2 ? true : undefined,
      );
      const events = await gw.db.prisma.webhookEvent.findMany({ where: { teamId: owner.teamId }, select: { id: true, type: true } });
      const pruned = await gw.gateway.services.webhooks.pruneHistory(new Date(gw.clock.now().getTime() + 31 * 86_400_000));
      expect(pruned).toBeGreaterThanOrEqual(events.length - 1);
      const left = await gw.db.prisma.webhookEvent.findMany({ where: { teamId: owner.teamId }, select: { type: true } });
      expect(left.map((e: any) => e.type)).toEqual(["api_key.created"]);
      expect(await gw.db.prisma.webhookAttempt.count({ where: { endpointId: ok.endpoint.id } })).toBe(0);
      expect(sub.subAccount.id).toBeTruthy();
    } finally {
      receiver.answer = () => 200;
    }
  });

  it("generated inputs to every webhook mutation and route: coded answers below 500, no leak, and a refusal writes nothing", { timeout: 120_000 }, async () => {
    const owner = await gw.createTeam({ name: "Fuzzed webhooks" });
    const { endpoint } = await createEndpoint(owner.mainKey, { url: "http://127.0.0.1:9/fuzz", events: ["SPEND_ALERT"] });
    const agent = createAgent(4);
    const url = mostly(fc.oneof(fc.webUrl(), fc.constantFrom("https://example.com/x", "http://[::1]/", "http://127.0.0.1:9/y", "javascript:alert(1)", "")));
    const events = mostly(fc.array(mostly(fc.constantFrom(...WEBHOOK_EVENT_TYPES, ...WEBHOOK_EVENT_TYPES.map((t) => t.replace(".", "_").toUpperCase()))), { maxLength: 14 }));
    const fields = fc.record({ url, events, description: mostly(anyString), enabled: mostly(fc.boolean()), extra: anyValue }, { requiredKeys: [] });
    const id = mostly(fc.constantFrom(endpoint.id, "evt_nope", "", "x".repeat(100)));
    const request = fc.oneof(
      fc.record({ kind: fc.constant("graphql-create"), input: fields }),
      fc.record({ kind: fc.constant("graphql-update"), id, input: fields }),
      fc.record({ kind: fc.constant("rest-create"), input: fields }),
      fc.record({ kind: fc.constant("rest-update"), id, input: fields }),
      fc.record({ kind: fc.constant("rest-redeliver"), id, eventId: id }),
      fc.record({ kind: fc.constant("rest-list"), limit: mostly(fc.integer({ min: -1, max: 101 })), cursor: mostly(anyString) }),
    );
    const seed = runSeed(`webhook inputs (${TEST_PROVIDER})`);
    try {
      await fc.assert(
        fc.asyncProperty(request, async (generated: any) => {
          const input = generated.input && "extra" in generated.input ? (({ extra: _extra, ...rest }) => rest)(generated.input) : generated.input;
          const before = await gw.db.prisma.webhookEndpoint.findMany({ where: { teamId: owner.teamId }, orderBy: { id: "asc" } });
          const response = await sendGenerated(owner.mainKey, generated, input, agent);
          expect(response.status, response.text).toBeLessThan(500);
          // A URL over Node's header limit is refused by its HTTP parser (431), before the application: no JSON body then.
          if (response.status !== 431) {
            const problem = generated.kind.startsWith("graphql") ? graphqlContractProblem(response.status, response.json) : restContractProblem(response.status, response.json);
            expect(problem, response.text.slice(0, 500)).toBeNull();
          }
          expect(findLeak(response.json, echoableStrings(input, generated.id))).toBeNull();
          const refused = response.status >= 400 || (response.json?.errors?.length ?? 0) > 0;
          if (refused) expect(await gw.db.prisma.webhookEndpoint.findMany({ where: { teamId: owner.teamId }, orderBy: { id: "asc" } })).toEqual(before);
        }),
        { seed, numRuns: runs(300) },
      );
    } finally {
      agent.destroy();
    }
  });

  async function sendGenerated(key: string, generated: any, input: unknown, agent: ReturnType<typeof createAgent>) {
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json", accept: "application/json" };
    // Lone surrogates cannot be percent-encoded: sent as U+FFFD, as any client would.
    const path = (value: unknown) => encodeURIComponent(Buffer.from(typeof value === "string" ? value : (JSON.stringify(value) ?? ""), "utf8").toString("utf8"));
    switch (generated.kind) {
      case "graphql-create":
        return sendRaw(gw.url, { method: "POST", path: "/graphql", headers, body: JSON.stringify({ query: CREATE_ENDPOINT, variables: { input } }) }, agent);
      case "graphql-update":
        return sendRaw(gw.url, {
          method: "POST",
          path: "/graphql",
          headers,
          body: JSON.stringify({ query: `mutation($id: ID!, $input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $input) { ${ENDPOINT_FIELDS} } }`, variables: { id: generated.id, input } }),
        }, agent);
      case "rest-create":
        return sendRaw(gw.url, { method: "POST", path: "/v1/webhook-endpoints", headers, body: JSON.stringify(input) }, agent);
      case "rest-update":
        return sendRaw(gw.url, { method: "PATCH", path: `/v1/webhook-endpoints/${path(generated.id)}`, headers, body: JSON.stringify(input) }, agent);
      case "rest-redeliver":
        return sendRaw(gw.url, { method: "POST", path: `/v1/webhook-endpoints/${path(generated.id)}/events/${path(generated.eventId)}/redeliver`, headers }, agent);
      default:
        return sendRaw(gw.url, { method: "GET", path: `/v1/webhook-endpoints?limit=${path(generated.limit)}&cursor=${path(generated.cursor)}`, headers }, agent);
    }
  }
});
