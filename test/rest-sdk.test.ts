import Zavu, { APIError, AuthenticationError, BadRequestError, NotFoundError, PermissionDeniedError } from "@zavudev/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allRoutes } from "../src/rest/index.ts";
import { openApiPath } from "../src/rest/openapi.ts";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";
import { SPEND } from "./helpers/storm.ts";
import { subscribeWs } from "./helpers/subscriptions.ts";

/** The SDK exactly as a customer uses it; only the base URL points at the gateway. */
function sdk(gw: TestGateway, apiKey: string): Zavu {
  return new Zavu({ apiKey, baseURL: gw.url });
}

/** Resolves to the error a promise rejects with (fails if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail");
}

const SUB_ACCOUNT_GQL = `query($id: ID!) { subAccount(id: $id) { id name externalId status totalSpent creditLimit metadata createdAt } }`;

describe("REST /v1 with the official SDK (@zavudev/sdk)", () => {
  let gw: TestGateway;
  let teamId: string;
  let mainKey: string;
  let client: Zavu;

  beforeAll(async () => {
    gw = await startGateway();
    ({ teamId, mainKey } = await gw.createTeam({ name: "My Company", balance: 1_000_000 }));
    client = sdk(gw, mainKey);
  });
  afterAll(async () => gw.close());

  it("creates a sub-account as in the docs (the key once), retrieves it, and it is the same object over GraphQL", async () => {
    const { subAccount } = await client.subAccounts.create({
      name: "Client ABC",
      externalId: "client_123",
      creditLimit: 100000, // $1,000.00 in cents
      metadata: {
        plan: "enterprise",
        region: "us-east",
      },
    });
    expect(subAccount.apiKey).toMatch(/^zv_live_sub_[A-Za-z0-9]{32,}$/);
    expect(subAccount).toMatchObject({
      name: "Client ABC",
      externalId: "client_123",
      status: "active",
      totalSpent: 0,
      creditLimit: 100000,
      metadata: { plan: "enterprise", region: "us-east" },
    });
    expect(new Date(subAccount.createdAt).toISOString()).toBe(subAccount.createdAt);

    const { subAccount: fetched } = await client.subAccounts.retrieve(subAccount.id);
    expect(fetched.apiKey).toBeUndefined();
    expect(fetched).toMatchObject({ id: subAccount.id, name: "Client ABC", status: "active", totalSpent: 0, creditLimit: 100000 });

    const viaGraphQL = await gw.gql(SUB_ACCOUNT_GQL, { id: subAccount.id }, mainKey);
    expect(viaGraphQL.errors).toBeUndefined();
    expect(viaGraphQL.data.subAccount).toEqual({
      id: subAccount.id,
      name: "Client ABC",
      externalId: "client_123",
      status: "ACTIVE",
      totalSpent: 0,
      creditLimit: 100000,
      metadata: { plan: "enterprise", region: "us-east" },
      createdAt: subAccount.createdAt,
    });

    // The key returned once works with the SDK.
    const me = await sdk(gw, subAccount.apiKey!).me.retrieve();
    expect(me.project).toMatchObject({ id: subAccount.id, isSubAccount: true, name: "Client ABC" });
  });

  it("lists with cursor pagination: the docs' pages, and the SDK's auto-pagination over 120 sub-accounts, every id once", async () => {
    const other = await gw.createTeam({ name: "Lister" });
    const lister = sdk(gw, other.mainKey);
    const created: string[] = [];
    for (let batch = 0; batch < 12; batch += 1) {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => lister.subAccounts.create({ name: `Customer ${batch * 10 + i}` })),
      );
      created.push(...results.map((r) => r.subAccount.id));
    }

    const { items, nextCursor } = await lister.subAccounts.list({ limit: 50 });
    expect(items).toHaveLength(50);
    expect(nextCursor).toBeTruthy();
    const nextPage = await lister.subAccounts.list({ limit: 50, cursor: nextCursor });
    expect(nextPage.items).toHaveLength(50);
    expect(nextPage.items.some((item) => items.some((first) => first.id === item.id))).toBe(false);

    for (const limit of [undefined, 7, 100]) {
      const seen: string[] = [];
      for await (const sub of lister.subAccounts.list(limit ? { limit } : {})) {
        expect(sub.apiKey).toBeUndefined();
        seen.push(sub.id);
      }
      expect(seen).toHaveLength(120);
      expect(new Set(seen)).toEqual(new Set(created));
    }

    // A cursor whose sub-account is gone (purged since) continues after where it stood.
    const firstPage = await lister.subAccounts.list({ limit: 10 });
    const lastSeen = firstPage.items.at(-1)!.id;
    await gw.db.prisma.account.delete({ where: { id: lastSeen } });
    const afterGone = await lister.subAccounts.list({ limit: 10, cursor: firstPage.nextCursor! });
    expect(afterGone.items[0]!.id > lastSeen).toBe(true);
    expect(afterGone.items.map((item) => item.id)).not.toContain(lastSeen);
    // A cursor that is not one of this list's is a BadRequestError, whatever it looks like.
    for (const cursor of ["not a cursor!", "zzzzzzzzzzzzzzzzzzzzzzzzz", lastSeen, Buffer.from("[1]").toString("base64url")]) {
      expect(await rejection(lister.subAccounts.list({ cursor }))).toBeInstanceOf(BadRequestError);
    }

    // Filters beyond the SDK's params, on the same service.
    const one = await lister.subAccounts.list({ limit: 5, status: "inactive" } as never);
    expect(one.items).toEqual([]);
  });

  it("updates limit and metadata, suspends and reactivates (the docs' examples)", async () => {
    const { subAccount: created } = await client.subAccounts.create({ name: "Updatable", creditLimit: 100000 });
    const subClient = sdk(gw, created.apiKey!);

    const { subAccount } = await client.subAccounts.update(created.id, {
      creditLimit: 200000, // Increase to $2,000
      metadata: { plan: "enterprise-plus" },
    });
    expect(subAccount.creditLimit).toBe(200000);
    expect(subAccount.metadata).toEqual({ plan: "enterprise-plus" });

    const { subAccount: suspended } = await client.subAccounts.update(created.id, { status: "inactive" });
    expect(suspended.status).toBe("inactive");
    expect(await rejection(subClient.balance.retrieve())).toBeInstanceOf(AuthenticationError);

    const { subAccount: reactivated } = await client.subAccounts.update(created.id, { status: "active" });
    expect(reactivated.status).toBe("active");
    expect((await subClient.balance.retrieve()).isSubAccount).toBe(true);

    const { subAccount: unlimited } = await client.subAccounts.update(created.id, { creditLimit: 0 });
    expect(unlimited.creditLimit).toBeNull();
  });

  it("getBalance, balance.retrieve with a main and a sub-account key, and me.retrieve", async () => {
    const { subAccount } = await client.subAccounts.create({ name: "Balances", creditLimit: 500 });

    const balance = await client.subAccounts.getBalance(subAccount.id);
    expect(balance).toMatchObject({ balance: expect.any(Number), currency: "USD", isSubAccount: true, totalSpent: 0, creditLimit: 500 });

    const mainView = await client.balance.retrieve();
    expect(mainView).toMatchObject({ currency: "USD", isSubAccount: false, totalSpent: null, creditLimit: null });
    expect(mainView.balance).toBe(balance.balance);

    const subView = await sdk(gw, subAccount.apiKey!).balance.retrieve();
    expect(subView).toEqual({ ...balance, remainingCredit: 500 });

    const me = await client.me.retrieve();
    expect(me).toMatchObject({ isTestMode: false, project: { isSubAccount: false }, team: { id: teamId, name: "My Company" } });
    expect(me.apiKey.id).toBeTruthy();
  });

  it("creates, lists and revokes sub-account API keys; a revoked key gets AuthenticationError", async () => {
    const { subAccount } = await client.subAccounts.create({ name: "Keys" });
    const { apiKey } = await client.subAccounts.apiKeys.create(subAccount.id, { name: "Production Key", environment: "live" });
    expect(apiKey).toMatchObject({ name: "Production Key", environment: "live" });
    expect(apiKey.key).toMatch(/^zv_live_sub_/);

    const { items } = await client.subAccounts.apiKeys.list(subAccount.id);
    expect(items).toHaveLength(2);
    for (const key of items) {
      expect(key.key).toBeUndefined();
      expect(apiKey.key.startsWith(items.find((k) => k.id === apiKey.id)!.keyPrefix)).toBe(true);
      expect(typeof key.createdAt).toBe("number");
      expect(key.revokedAt).toBeNull();
    }

    const keyClient = sdk(gw, apiKey.key);
    expect((await keyClient.me.retrieve()).apiKey.id).toBe(apiKey.id);

    await client.subAccounts.apiKeys.revoke(apiKey.id, { id: subAccount.id });
    const error = await rejection(keyClient.me.retrieve());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.error).toMatchObject({ code: "unauthorized" });

    const after = await client.subAccounts.apiKeys.list(subAccount.id);
    expect(after.items.find((k) => k.id === apiKey.id)!.revokedAt).toEqual(expect.any(Number));
    // The other key still works.
    expect((await sdk(gw, subAccount.apiKey!).balance.retrieve()).isSubAccount).toBe(true);
  });

  it("deactivates: every key revoked (keysRevoked), the keys stop working", async () => {
    const { subAccount } = await client.subAccounts.create({ name: "Leaving" });
    await client.subAccounts.apiKeys.create(subAccount.id, { name: "Second" });
    const result = await client.subAccounts.deactivate(subAccount.id);
    expect(result.keysRevoked).toBe(2);
    expect(result.message).toMatch(/deactivated/);
    expect(await rejection(sdk(gw, subAccount.apiKey!).balance.retrieve())).toBeInstanceOf(AuthenticationError);
    const { subAccount: after } = await client.subAccounts.retrieve(subAccount.id);
    expect(after.status).toBe("inactive");
  });

  it("sends, retrieves and lists messages, the charge visible in the balance and pushed to a GraphQL spend subscriber", async () => {
    const { subAccount } = await client.subAccounts.create({ name: "Sender", creditLimit: 1000 });
    const subClient = sdk(gw, subAccount.apiKey!);
    const before = await client.balance.retrieve();
    const spend = await subscribeWs(gw.url, mainKey, SPEND, { id: subAccount.id });
    await gw.untilSubscriptions(1);

    const { message } = await subClient.messages.send({ to: "+14155551234", text: "Hello from Client ABC!" });
    expect(message).toMatchObject({ to: "+14155551234", channel: "sms", text: "Hello from Client ABC!", status: "queued" });
    expect(message.cost).toBeGreaterThan(0);

    const [event] = await spend.waitFor(1);
    expect(event.spendUpdated).toMatchObject({
      subAccount: { id: subAccount.id, totalSpent: message.cost, creditLimit: 1000 },
      amount: message.cost,
      messageId: message.id,
      teamBalance: before.balance - message.cost!,
    });
    spend.close();

    expect(await subClient.balance.retrieve()).toMatchObject({ balance: before.balance - message.cost!, totalSpent: message.cost, creditLimit: 1000 });
    expect((await client.subAccounts.getBalance(subAccount.id)).totalSpent).toBe(message.cost);

    const { message: fetched } = await subClient.messages.retrieve(message.id);
    expect(fetched.id).toBe(message.id);
    // A main key reads its team's messages too.
    expect((await client.messages.retrieve(message.id)).message.id).toBe(message.id);

    const sent = [message.id];
    for (let i = 0; i < 4; i += 1) sent.push((await subClient.messages.send({ to: "+14155551234", text: `n${i}`, idempotencyKey: `k${i}` })).message.id);
    const listed: string[] = [];
    for await (const item of subClient.messages.list({ limit: 2 })) listed.push(item.id);
    expect(listed).toEqual([...sent].reverse());
    expect((await subClient.messages.list({ channel: "email" })).items).toEqual([]);

    // Same idempotencyKey: the original message, charged once.
    const again = await subClient.messages.send({ to: "+14155551234", text: "n0", idempotencyKey: "k0" });
    expect(again.message.id).toBe(sent[1]);
    const totalSpent = (await subClient.balance.retrieve()).totalSpent;
    expect(totalSpent).toBe(5 * message.cost!);
  });

  describe("errors through the SDK's own classes", () => {
    it("a sub-account key on management gets PermissionDeniedError (403 forbidden)", async () => {
      const { subAccount } = await client.subAccounts.create({ name: "No nesting" });
      const subClient = sdk(gw, subAccount.apiKey!);
      for (const call of [
        () => subClient.subAccounts.create({ name: "Nested" }),
        () => subClient.subAccounts.list(),
        () => subClient.subAccounts.retrieve(subAccount.id),
        () => subClient.subAccounts.apiKeys.list(subAccount.id),
        () => subClient.subAccounts.getBalance(subAccount.id),
      ]) {
        const error = await rejection(call());
        expect(error).toBeInstanceOf(PermissionDeniedError);
        expect(error.status).toBe(403);
        expect(error.error).toMatchObject({ code: "forbidden" });
      }
    });

    it("an unknown or missing key gets AuthenticationError", async () => {
      const error = await rejection(sdk(gw, "zv_live_" + "x".repeat(40)).balance.retrieve());
      expect(error).toBeInstanceOf(AuthenticationError);
      const raw = await fetch(`${gw.url}/v1/balance`);
      expect(raw.status).toBe(401);
      expect(await raw.json()).toMatchObject({ code: "unauthorized" });
    });

    it("another team's id is NotFoundError, never data", async () => {
      const stranger = await gw.createTeam({ name: "Stranger" });
      const { subAccount } = await sdk(gw, stranger.mainKey).subAccounts.create({ name: "Theirs" });
      for (const call of [
        () => client.subAccounts.retrieve(subAccount.id),
        () => client.subAccounts.update(subAccount.id, { name: "Mine now" }),
        () => client.subAccounts.getBalance(subAccount.id),
        () => client.subAccounts.deactivate(subAccount.id),
        () => client.subAccounts.apiKeys.list(subAccount.id),
        () => client.subAccounts.apiKeys.create(subAccount.id, { name: "sneaky" }),
      ]) {
        const error = await rejection(call());
        expect(error).toBeInstanceOf(NotFoundError);
        expect(error.error).toMatchObject({ code: "not_found" });
        expect(JSON.stringify(error.error)).not.toContain("Theirs");
      }
      const { subAccount: still } = await sdk(gw, stranger.mainKey).subAccounts.retrieve(subAccount.id);
      expect(still).toMatchObject({ name: "Theirs", status: "active" });
    });

    it("invalid input is BadRequestError naming the field", async () => {
      const cases: [() => Promise<unknown>, string][] = [
        [() => client.subAccounts.create({ name: "   " }), "name"],
        [() => client.subAccounts.create({ name: "x".repeat(201) }), "name"],
        [() => client.subAccounts.create({ name: "Neg", creditLimit: -5 }), "creditLimit"],
        [() => client.subAccounts.create({ name: "Frac", creditLimit: 1.5 }), "creditLimit"],
        [() => client.subAccounts.create({ name: "Bogus", bogus: true } as never), ""],
        [() => client.subAccounts.list({ limit: 1000 }), "limit"],
        [() => client.messages.send({ to: "not a number", text: "hi" }), "to"],
      ];
      for (const [call, field] of cases) {
        const error = await rejection(call());
        expect(error).toBeInstanceOf(BadRequestError);
        expect(error.error).toMatchObject({ code: "invalid_request", message: expect.any(String) });
        if (field) expect(error.error.details.field).toBe(field);
      }
    });

    it("a send over the credit limit is a 402 with details, and nothing is charged", async () => {
      const { subAccount } = await client.subAccounts.create({ name: "Capped", creditLimit: 1 });
      const subClient = sdk(gw, subAccount.apiKey!);
      const before = await client.balance.retrieve();
      const error = await rejection(subClient.messages.send({ to: "+447700900123", text: "Hello from London" }));
      expect(error).toBeInstanceOf(APIError);
      expect(error.status).toBe(402);
      expect(error.error).toMatchObject({
        code: "credit_limit_exceeded",
        details: { cost: 4, totalSpent: 0, creditLimit: 1, balance: before.balance },
      });
      expect(await subClient.balance.retrieve()).toMatchObject({ totalSpent: 0, balance: before.balance });
      expect((await subClient.messages.list()).items).toEqual([]);
    });
  });

  describe("raw HTTP: bad input is 400 invalid_request and writes nothing", () => {
    const countSubAccounts = () => gw.db.prisma.account.count({ where: { teamId, kind: "sub" } });

    async function post(path: string, body: string, headers: Record<string, string> = {}) {
      const response = await fetch(`${gw.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${mainKey}`, "content-type": "application/json", ...headers },
        body,
      });
      return { status: response.status, body: (await response.json()) as any };
    }

    it("malformed JSON", async () => {
      const before = await countSubAccounts();
      const response = await post("/v1/sub-accounts", '{"name": "Half", ');
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ code: "invalid_request", message: expect.stringMatching(/not valid JSON/) });
      expect(await countSubAccounts()).toBe(before);
    });

    it("unknown fields", async () => {
      const before = await countSubAccounts();
      const response = await post("/v1/sub-accounts", JSON.stringify({ name: "Extra", plan: "gold" }));
      expect(response.status).toBe(400);
      expect(response.body.code).toBe("invalid_request");
      expect(response.body.message).toMatch(/unknown field\(s\): plan/);
      expect(await countSubAccounts()).toBe(before);

      const send = await post("/v1/messages", JSON.stringify({ to: "+14155551234", text: "hi", fallbackEnabled: true }));
      expect(send.status).toBe(400);
      expect(send.body.message).toMatch(/fallbackEnabled/);
    });

    it("wrong types", async () => {
      const before = await countSubAccounts();
      for (const body of [{ name: 42 }, { name: "T", creditLimit: "100" }, { name: "T", metadata: [1, 2] }, [{ name: "T" }], "just a string", null]) {
        const response = await post("/v1/sub-accounts", JSON.stringify(body));
        expect(response.status, JSON.stringify(body)).toBe(400);
        expect(response.body).toMatchObject({ code: "invalid_request" });
      }
      const empty = await post("/v1/sub-accounts", "");
      expect(empty.status).toBe(400);
      expect(empty.body.code).toBe("invalid_request");
      const bad = await fetch(`${gw.url}/v1/sub-accounts?limit=abc`, { headers: { authorization: `Bearer ${mainKey}` } });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ code: "invalid_request", details: { field: "limit" } });
      const unknownParam = await fetch(`${gw.url}/v1/sub-accounts?colour=red`, { headers: { authorization: `Bearer ${mainKey}` } });
      expect(unknownParam.status).toBe(400);
      expect(await countSubAccounts()).toBe(before);
    });

    it("an oversized body (over MAX_BODY_BYTES) is refused without being read whole", async () => {
      const before = await countSubAccounts();
      const big = JSON.stringify({ name: "Huge", metadata: { blob: "x".repeat(2 * 1024 * 1024) } });
      const response = await post("/v1/sub-accounts", big);
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ code: "invalid_request", details: { maxBytes: 1_048_576 } });
      expect(await countSubAccounts()).toBe(before);

      // Without a content-length (chunked): reading stops past the limit.
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
          controller.enqueue(new TextEncoder().encode('{"name":"Chunked","metadata":{"blob":"'));
          for (let i = 0; i < 24; i += 1) controller.enqueue(chunk);
          controller.enqueue(new TextEncoder().encode('"}}'));
          controller.close();
        },
      });
      const chunked = await fetch(`${gw.url}/v1/sub-accounts`, {
        method: "POST",
        headers: { authorization: `Bearer ${mainKey}`, "content-type": "application/json" },
        body: stream,
        duplex: "half",
      } as RequestInit);
      expect(chunked.status).toBe(400);
      expect(await chunked.json()).toMatchObject({ code: "invalid_request" });
      expect(await countSubAccounts()).toBe(before);

      // The server still serves.
      expect((await client.balance.retrieve()).currency).toBe("USD");
    });

    it("unknown routes are a JSON 404; unexpected errors are a 500 internal_error with no internals", async () => {
      const missing = await fetch(`${gw.url}/v1/nothing-here`, { headers: { authorization: `Bearer ${mainKey}` } });
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ code: "not_found" });

      const balance = gw.gateway.services.balance;
      const original = balance.forActor;
      balance.forActor = async () => {
        throw new Error('SELECT "balance" FROM "Team" failed: secret internals');
      };
      try {
        const response = await fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${mainKey}` } });
        expect(response.status).toBe(500);
        const text = await response.text();
        expect(JSON.parse(text)).toEqual({ code: "internal_error", message: expect.any(String) });
        expect(text).not.toMatch(/SELECT|secret|Team/);
      } finally {
        balance.forActor = original;
      }
    });
  });

  it("/v1/openapi.json is derived from the route table and lists every route the SDK calls", async () => {
    const response = await fetch(`${gw.url}/v1/openapi.json`);
    expect(response.status).toBe(200);
    const doc = (await response.json()) as any;
    expect(doc.openapi).toMatch(/^3\./);
    for (const route of allRoutes) {
      const operation = doc.paths[openApiPath(route.path)]?.[route.method.toLowerCase()];
      expect(operation, `${route.method} ${route.path}`).toMatchObject({ operationId: route.operationId });
    }
    const expected = [
      "post /v1/sub-accounts",
      "get /v1/sub-accounts",
      "get /v1/sub-accounts/{id}",
      "patch /v1/sub-accounts/{id}",
      "delete /v1/sub-accounts/{id}",
      "get /v1/sub-accounts/{id}/balance",
      "post /v1/sub-accounts/{id}/api-keys",
      "get /v1/sub-accounts/{id}/api-keys",
      "delete /v1/sub-accounts/{id}/api-keys/{keyId}",
      "get /v1/api-keys",
      "post /v1/api-keys",
      "patch /v1/api-keys/{keyId}",
      "post /v1/api-keys/{keyId}/roll",
      "delete /v1/api-keys/{keyId}",
      "get /v1/balance",
      "get /v1/me",
      "post /v1/messages",
      "get /v1/messages",
      "get /v1/messages/{id}",
      "get /v1/openapi.json",
      "get /v1/spend",
      "get /v1/spend/alerts",
      "patch /v1/team",
      "post /v1/webhook-endpoints",
      "get /v1/webhook-endpoints",
      "get /v1/webhook-endpoints/{id}",
      "patch /v1/webhook-endpoints/{id}",
      "delete /v1/webhook-endpoints/{id}",
      "post /v1/webhook-endpoints/{id}/rotate-secret",
      "get /v1/webhook-endpoints/{id}/deliveries",
      "post /v1/webhook-endpoints/{id}/events/{eventId}/redeliver",
    ];
    const listed = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops as object).map((method) => `${method} ${path}`));
    expect(listed.sort()).toEqual(expected.sort());

    const create = doc.paths["/v1/sub-accounts"].post;
    const bodySchema = create.requestBody.content["application/json"].schema;
    expect(bodySchema.required).toEqual(["name"]);
    expect(bodySchema.additionalProperties).toBe(false);
    expect(Object.keys(bodySchema.properties).sort()).toEqual(["alertThresholds", "budget", "creditLimit", "externalId", "metadata", "name"]);
    expect(create.responses["201"].content["application/json"].schema.properties.subAccount).toBeTruthy();
    expect(create.responses["403"]).toBeTruthy();
    const list = doc.paths["/v1/sub-accounts"].get;
    expect(list.parameters.map((p: any) => p.name)).toEqual(expect.arrayContaining(["limit", "cursor"]));
    expect(list.parameters.find((p: any) => p.name === "limit").schema).toMatchObject({ type: "integer", maximum: 100 });
    expect(doc.paths["/v1/messages"].post.responses["402"]).toBeTruthy();
  });
});
