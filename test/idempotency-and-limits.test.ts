import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyError, startGateway, type TestGateway } from "./helpers/gateway.ts";
import { createAgent, postJson } from "./helpers/http.ts";
import { SEND } from "./helpers/storm.ts";

const CREATE = `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateSubAccountInput!) { updateSubAccount(id: $id, input: $input) { id creditLimit totalSpent } }`;

describe("idempotency and credit limits", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.close());

  async function subAccount(mainKey: string, input: Record<string, unknown>) {
    const created = await gw.gql(CREATE, { input: { name: "Customer", ...input } }, mainKey);
    return { id: created.data.createSubAccount.subAccount.id as string, key: created.data.createSubAccount.apiKey as string };
  }

  it("ten racing requests with one idempotencyKey charge once and return the same message", async () => {
    const { teamId, mainKey } = await gw.createTeam({ balance: 1000 });
    const sub = await subAccount(mainKey, {});
    const agent = createAgent(16);
    const input = { to: "+447700900123", text: "Your order shipped", idempotencyKey: "order-42-shipped" };
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => postJson(`${gw.url}/graphql`, { query: SEND, variables: { input } }, { authorization: `Bearer ${sub.key}` }, agent)),
    );
    agent.destroy();
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    const ids = new Set(responses.map((r) => r.body.data.sendMessage.id));
    expect(ids.size).toBe(1);
    const messageId = [...ids][0];
    expect(await gw.db.prisma.message.count({ where: { accountId: sub.id } })).toBe(1);
    expect(await gw.db.prisma.ledgerEntry.count({ where: { accountId: sub.id, kind: "charge" } })).toBe(1);
    const team = await gw.db.prisma.team.findUniqueOrThrow({ where: { id: teamId } });
    expect(team.balance).toBe(1000n - 4n);

    // Later retries still return the original, and another key of the same account shares the scope.
    const retry = await gw.gql(SEND, { input }, sub.key);
    expect(retry.data.sendMessage.id).toBe(messageId);
    // The same key from another account is a different message.
    const other = await subAccount(mainKey, {});
    const elsewhere = await gw.gql(SEND, { input }, other.key);
    expect(elsewhere.data.sendMessage.id).not.toBe(messageId);
    expect((await gw.db.prisma.team.findUniqueOrThrow({ where: { id: teamId } })).balance).toBe(1000n - 8n);
  });

  it("refuses a send over the credit limit with 402 and the figures, and changes nothing", async () => {
    const { teamId, mainKey } = await gw.createTeam({ balance: 1000 });
    const sub = await subAccount(mainKey, { creditLimit: 5 });
    expect((await gw.gql(SEND, { input: { to: "+447700900123", text: "one" } }, sub.key)).status).toBe(200); // 4 cents
    const refused = await gw.gql(SEND, { input: { to: "+447700900123", text: "two" } }, sub.key);
    expect(refused.status).toBe(402);
    const error = onlyError(refused);
    expect(error.extensions.code).toBe("credit_limit_exceeded");
    expect(error.extensions.details).toEqual({ cost: 4, totalSpent: 4, creditLimit: 5, balance: 996 });
    expect(error.message).toMatch(/credit limit/);
    expect(await gw.db.prisma.message.count({ where: { accountId: sub.id } })).toBe(1);
    expect((await gw.db.prisma.team.findUniqueOrThrow({ where: { id: teamId } })).balance).toBe(996n);
    // A cheaper message still fits under the cap.
    expect((await gw.gql(SEND, { input: { to: "+14155550100", text: "fits" } }, sub.key)).status).toBe(200);
  });

  it("lowering a credit limit below totalSpent blocks the next send at once; raising it unblocks", async () => {
    const { mainKey } = await gw.createTeam({ balance: 1000 });
    const sub = await subAccount(mainKey, { creditLimit: 100 });
    for (let i = 0; i < 3; i += 1) expect((await gw.gql(SEND, { input: { to: "+447700900123", text: `m${i}` } }, sub.key)).status).toBe(200);
    const lowered = await gw.gql(UPDATE, { id: sub.id, input: { creditLimit: 10 } }, mainKey);
    expect(lowered.data.updateSubAccount).toMatchObject({ creditLimit: 10, totalSpent: 12 });
    const blocked = await gw.gql(SEND, { input: { to: "+14155550100", text: "cheap" } }, sub.key);
    expect(blocked.status).toBe(402);
    expect(onlyError(blocked).extensions).toMatchObject({ code: "credit_limit_exceeded", details: { cost: 1, totalSpent: 12, creditLimit: 10 } });
    const balanceView = await gw.gql(`{ balance { totalSpent creditLimit remainingCredit } }`, {}, sub.key);
    expect(balanceView.data.balance).toEqual({ totalSpent: 12, creditLimit: 10, remainingCredit: 0 });

    await gw.gql(UPDATE, { id: sub.id, input: { creditLimit: 13 } }, mainKey);
    expect((await gw.gql(SEND, { input: { to: "+14155550100", text: "cheap" } }, sub.key)).status).toBe(200);
    expect((await gw.gql(SEND, { input: { to: "+14155550100", text: "cheap" } }, sub.key)).status).toBe(402);
    // null (or 0) removes the limit altogether.
    await gw.gql(UPDATE, { id: sub.id, input: { creditLimit: 0 } }, mainKey);
    expect((await gw.gql(SEND, { input: { to: "+447700900123", text: "unlimited" } }, sub.key)).status).toBe(200);
  });

  it("refuses with insufficient_balance when the team balance does not cover the cost", async () => {
    const { mainKey } = await gw.createTeam({ balance: 3 });
    const sub = await subAccount(mainKey, {});
    const refused = await gw.gql(SEND, { input: { to: "+447700900123", text: "four cents" } }, sub.key);
    expect(refused.status).toBe(402);
    expect(onlyError(refused).extensions).toMatchObject({ code: "insufficient_balance", details: { cost: 4, totalSpent: 0, creditLimit: null, balance: 3 } });
    expect((await gw.gql(SEND, { input: { to: "+14155550100", text: "one cent" } }, sub.key)).status).toBe(200);
  });

  it("a suspended sub-account cannot send: its key stops authenticating", async () => {
    const { mainKey } = await gw.createTeam({ balance: 100 });
    const sub = await subAccount(mainKey, {});
    await gw.gql(UPDATE, { id: sub.id, input: { status: "INACTIVE" } }, mainKey);
    const refused = await gw.gql(SEND, { input: { to: "+14155550100", text: "hi" } }, sub.key);
    expect(refused.status).toBe(401);
    expect(await gw.db.prisma.message.count({ where: { accountId: sub.id } })).toBe(0);
  });

  it("the charge store refuses an inactive account even when authentication already passed", async () => {
    const { mainKey } = await gw.createTeam({ balance: 100 });
    const sub = await subAccount(mainKey, {});
    const { actor } = await gw.gateway.services.authenticate(sub.key);
    await gw.db.prisma.account.update({ where: { id: sub.id }, data: { status: "inactive" } });
    await expect(gw.gateway.services.messages.send(actor, { to: "+14155550100", text: "hi" })).rejects.toMatchObject({ code: "forbidden" });
    expect(await gw.db.prisma.message.count({ where: { accountId: sub.id } })).toBe(0);
  });

  it("the same idempotencyKey with another message is 409 conflict naming what differs, on GraphQL and REST; nothing is sent or charged", async () => {
    const { teamId, mainKey } = await gw.createTeam({ balance: 1000 });
    const sub = await subAccount(mainKey, {});
    const original = { to: "+14155550100", text: "Your code is 1234", idempotencyKey: "otp-1", metadata: { a: 1, b: [1, 2] } };
    const first = await gw.gql(SEND, { input: original }, sub.key);
    expect(first.status).toBe(200);
    // The same request, metadata keys in another order: the original, charged once.
    const retry = await gw.gql(SEND, { input: { ...original, metadata: { b: [1, 2], a: 1 } } }, sub.key);
    expect(retry.data.sendMessage.id).toBe(first.data.sendMessage.id);

    for (const [change, fields] of [
      [{ to: "+14155550199" }, ["to"]],
      [{ text: "Your code is 9999" }, ["text"]],
      [{ channel: "WHATSAPP" }, ["channel"]],
      [{ metadata: { a: 2, b: [1, 2] } }, ["metadata"]],
      [{ to: "+14155550199", text: "other", metadata: null }, ["to", "text", "metadata"]],
    ] as const) {
      const conflict = await gw.gql(SEND, { input: { ...original, ...change } }, sub.key);
      expect(conflict.status).toBe(409);
      const error = onlyError(conflict);
      expect(error.extensions.code).toBe("conflict");
      expect(error.extensions.details).toEqual({ field: "idempotencyKey", fields, messageId: first.data.sendMessage.id });
      expect(error.message).toMatch(new RegExp(fields.join(", ")));
    }
    const rest = await fetch(`${gw.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${sub.key}` },
      body: JSON.stringify({ ...original, text: "changed" }),
    });
    expect(rest.status).toBe(409);
    expect(await rest.json()).toMatchObject({ code: "conflict", details: { fields: ["text"] } });
    expect(await gw.db.prisma.message.count({ where: { accountId: sub.id } })).toBe(1);
    expect((await gw.db.prisma.team.findUniqueOrThrow({ where: { id: teamId } })).balance).toBe(999n);
  });

  it("two different messages racing with one idempotencyKey: one is sent, the other is 409 conflict, whichever wins", async () => {
    const { mainKey } = await gw.createTeam({ balance: 1000 });
    const sub = await subAccount(mainKey, {});
    const agent = createAgent(16);
    const inputs = Array.from({ length: 10 }, (_, i) => ({ to: "+14155550100", text: `variant ${i % 2}`, idempotencyKey: "race-1" }));
    const responses = await Promise.all(inputs.map((input) => postJson(`${gw.url}/graphql`, { query: SEND, variables: { input } }, { authorization: `Bearer ${sub.key}` }, agent)));
    agent.destroy();
    const stored = await gw.db.prisma.message.findMany({ where: { accountId: sub.id } });
    expect(stored).toHaveLength(1);
    for (const [index, response] of responses.entries()) {
      if (inputs[index]!.text === stored[0]!.text) expect(response.body.data.sendMessage.id).toBe(stored[0]!.id);
      else expect(response.body.errors[0].extensions).toMatchObject({ code: "conflict", details: { fields: ["text"] } });
    }
  });
});
