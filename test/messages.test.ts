import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyError, startGateway, type GraphQLResponse, type TestGateway } from "./helpers/gateway.ts";

const FIELDS = `id to channel text status cost segments isTestMode idempotencyKey metadata accountId createdAt sentAt deliveredAt`;
const SEND = `mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { ${FIELDS} } }`;
const MESSAGE = `query Message($id: ID!) { message(id: $id) { ${FIELDS} } }`;
const MESSAGES = `query Messages($first: Int, $after: String, $subAccountId: ID) {
  messages(first: $first, after: $after, subAccountId: $subAccountId) {
    edges { cursor node { id accountId text } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const CREATE = `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`;
const CREATE_KEY = `mutation($id: ID!, $input: CreateSubAccountApiKeyInput) {
  createSubAccountApiKey(subAccountId: $id, input: $input) { key apiKey { id environment } }
}`;
const SUB_ACCOUNT = `query($id: ID!) { subAccount(id: $id) { totalSpent } }`;
const VIEWER = `{ viewer { isTestMode account { id } } balance { balance totalSpent } }`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `read` until `done` holds, failing after `timeoutMs` (a bound, not a measurement). */
async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not reached within ${timeoutMs} ms; last value ${JSON.stringify(value)}`);
    await sleep(20);
  }
}

async function subAccount(gw: TestGateway, mainKey: string, name = "Customer") {
  const created = await gw.gql(CREATE, { input: { name } }, mainKey);
  expect(created.errors).toBeUndefined();
  return { id: created.data.createSubAccount.subAccount.id as string, key: created.data.createSubAccount.apiKey as string };
}

async function teamBalance(gw: TestGateway, teamId: string): Promise<bigint> {
  return (await gw.db.prisma.team.findUniqueOrThrow({ where: { id: teamId } })).balance;
}

describe("sendMessage input validation", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.close());

  const base = { to: "+14155550100", text: "Hello" };
  const cases: { name: string; input: Record<string, unknown>; field: string }[] = [
    { name: "garbage `to`", input: { ...base, to: "not a destination" }, field: "to" },
    { name: "a phone number too short", input: { ...base, to: "+123" }, field: "to" },
    { name: "an email with spaces", input: { ...base, to: "ana smith@example.com" }, field: "to" },
    { name: "an email without a domain", input: { ...base, to: "ana@" }, field: "to" },
    { name: "an empty `to`", input: { ...base, to: "" }, field: "input.to" },
    { name: "channel SMS with an email address", input: { ...base, to: "ana@example.com", channel: "SMS" }, field: "to" },
    { name: "channel WHATSAPP with a chat id", input: { ...base, to: "123456789", channel: "WHATSAPP" }, field: "to" },
    { name: "channel TELEGRAM with a phone number", input: { ...base, to: "+14155550100", channel: "TELEGRAM" }, field: "to" },
    { name: "channel EMAIL with a chat id", input: { ...base, to: "123456789", channel: "EMAIL" }, field: "to" },
    { name: "an empty text", input: { ...base, text: "" }, field: "text" },
    { name: "a text of only spaces", input: { ...base, text: "   " }, field: "text" },
    { name: "a text over the SMS limit (1601 characters)", input: { ...base, text: "x".repeat(1601) }, field: "text" },
    { name: "a text over the Telegram limit (4097 characters)", input: { ...base, to: "123456789", text: "x".repeat(4097) }, field: "text" },
    { name: "a text with a control character", input: { ...base, text: "ring \u0007 the bell" }, field: "text" },
    { name: "a text with a NUL character", input: { ...base, text: "nul\u0000here" }, field: "text" },
    { name: "an idempotencyKey of 256 characters", input: { ...base, idempotencyKey: "k".repeat(256) }, field: "input.idempotencyKey" },
    { name: "an idempotencyKey with spaces", input: { ...base, idempotencyKey: "order 42" }, field: "input.idempotencyKey" },
    { name: "metadata as an array", input: { ...base, metadata: [1, 2, 3] }, field: "input.metadata" },
    { name: "metadata as a string", input: { ...base, metadata: "plan=pro" }, field: "input.metadata" },
  ];

  it.each(cases)("refuses $name with 400 invalid_request on $field and writes nothing", async ({ input, field }) => {
    const { teamId, mainKey } = await gw.createTeam({ balance: 1000 });
    const sub = await subAccount(gw, mainKey);
    for (const key of [mainKey, sub.key]) {
      const refused = await gw.gql(SEND, { input }, key);
      expect(refused.status).toBe(400);
      expect(refused.data ?? null).toBeNull();
      const error = onlyError(refused);
      expect(error.extensions.code).toBe("invalid_request");
      expect(error.extensions.details).toMatchObject({ field });
      expect(error.message).not.toMatch(/prisma|sqlite|select|insert/i);
    }
    expect(await gw.db.prisma.message.count({ where: { teamId } })).toBe(0);
    expect(await gw.db.prisma.ledgerEntry.count({ where: { teamId, kind: "charge" } })).toBe(0);
    expect(await teamBalance(gw, teamId)).toBe(1000n);
    expect((await gw.gql(SUB_ACCOUNT, { id: sub.id }, mainKey)).data.subAccount.totalSpent).toBe(0);
  });

  it("accepts the boundaries: 1600 SMS characters and a 255-character idempotencyKey", async () => {
    // Guards the cases above: the same inputs one step inside the limits are sent and charged.
    const { teamId, mainKey } = await gw.createTeam({ balance: 1000 });
    const sent = await gw.gql(SEND, { input: { ...base, text: "x".repeat(1600), idempotencyKey: "k".repeat(255), metadata: { order: 42 } } }, mainKey);
    expect(sent.errors).toBeUndefined();
    expect(sent.data.sendMessage).toMatchObject({ segments: 11, cost: 11, idempotencyKey: "k".repeat(255), metadata: { order: 42 } });
    expect(await teamBalance(gw, teamId)).toBe(1000n - 11n);
  });
});

describe("delivery status", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    // A slower carrier than the suite's 20 ms, so QUEUED is still observable right after the send.
    gw = await startGateway({ env: { DELIVERY_STEP_MS: "300" } });
  });
  afterAll(async () => gw.close());

  it("a message is QUEUED right after the send, then SENT and DELIVERED", async () => {
    const { mainKey } = await gw.createTeam({ balance: 1000 });
    const sent = await gw.gql(SEND, { input: { to: "+14155550100", text: "Your code is 123456" } }, mainKey);
    expect(sent.errors).toBeUndefined();
    const { id } = sent.data.sendMessage;
    expect(sent.data.sendMessage).toMatchObject({ status: "QUEUED", sentAt: null, deliveredAt: null });
    const first = await gw.gql(MESSAGE, { id }, mainKey);
    expect(first.data.message).toMatchObject({ id, status: "QUEUED", sentAt: null, deliveredAt: null });

    const seen: string[] = [];
    const read = async () => {
      const message = (await gw.gql(MESSAGE, { id }, mainKey)).data.message;
      if (seen.at(-1) !== message.status) seen.push(message.status);
      return message;
    };
    const moved = await waitFor(read, (message) => message.status !== "QUEUED");
    expect(["SENT", "DELIVERED"]).toContain(moved.status);
    expect(moved.sentAt).not.toBeNull();
    const delivered = await waitFor(read, (message) => message.status === "DELIVERED");
    expect(delivered.sentAt).not.toBeNull();
    expect(delivered.deliveredAt).not.toBeNull();
    expect(Date.parse(delivered.deliveredAt)).toBeGreaterThanOrEqual(Date.parse(delivered.sentAt));
    // Status only ever moves forward.
    const order = ["QUEUED", "SENT", "DELIVERED"];
    expect(seen.map((status) => order.indexOf(status))).toEqual(seen.map((status) => order.indexOf(status)).sort((a, b) => a - b));
    expect(seen.at(-1)).toBe("DELIVERED");
  });
});

describe("test-mode keys", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.close());

  it("price a message but neither charge nor deliver it", async () => {
    const { teamId, mainKey } = await gw.createTeam({ balance: 1000 });
    const sub = await subAccount(gw, mainKey);
    const created = await gw.gql(CREATE_KEY, { id: sub.id, input: { environment: "TEST" } }, mainKey);
    expect(created.errors).toBeUndefined();
    expect(created.data.createSubAccountApiKey.apiKey.environment).toBe("TEST");
    const testKey: string = created.data.createSubAccountApiKey.key;
    expect(testKey).toMatch(/^zv_test_sub_[0-9A-Za-z]{32,}$/);

    const viewer = await gw.gql(VIEWER, {}, testKey);
    expect(viewer.errors).toBeUndefined();
    expect(viewer.data.viewer).toEqual({ isTestMode: true, account: { id: sub.id } });
    expect((await gw.gql(VIEWER, {}, sub.key)).data.viewer.isTestMode).toBe(false);

    const sent = await gw.gql(SEND, { input: { to: "+447700900123", text: "x".repeat(200) } }, testKey);
    expect(sent.status).toBe(200);
    expect(sent.errors).toBeUndefined();
    expect(sent.data.sendMessage).toMatchObject({ isTestMode: true, cost: 8, segments: 2, channel: "SMS", status: "QUEUED", accountId: sub.id });
    const testMessageId = sent.data.sendMessage.id;

    expect(await teamBalance(gw, teamId)).toBe(1000n);
    expect((await gw.gql(SUB_ACCOUNT, { id: sub.id }, mainKey)).data.subAccount.totalSpent).toBe(0);
    expect((await gw.gql(VIEWER, {}, testKey)).data.balance).toEqual({ balance: 1000, totalSpent: 0 });
    expect(await gw.db.prisma.ledgerEntry.count({ where: { teamId, kind: "charge" } })).toBe(0);
    // Still validated: a bad destination is refused as for a live key.
    const invalid = await gw.gql(SEND, { input: { to: "+99912345678", text: "hi" } }, testKey);
    expect(invalid.status).toBe(400);
    expect(onlyError(invalid).extensions.code).toBe("invalid_request");

    // A live message sent after it gets delivered; by then the test message has seen the same carrier steps.
    const live = await gw.gql(SEND, { input: { to: "+447700900123", text: "live" } }, sub.key);
    expect(live.data.sendMessage).toMatchObject({ isTestMode: false, cost: 4 });
    await waitFor(
      async () => (await gw.gql(MESSAGE, { id: live.data.sendMessage.id }, sub.key)).data.message.status,
      (status) => status === "DELIVERED",
    );
    await sleep(100); // five more carrier steps
    const stillQueued = await gw.gql(MESSAGE, { id: testMessageId }, testKey);
    expect(stillQueued.data.message).toMatchObject({ status: "QUEUED", sentAt: null, deliveredAt: null, isTestMode: true });
    // Only the live message was charged.
    expect(await teamBalance(gw, teamId)).toBe(996n);
    expect(await gw.db.prisma.ledgerEntry.count({ where: { teamId, kind: "charge" } })).toBe(1);
  });
});

describe("reading messages", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.close());

  async function send(key: string, text: string): Promise<string> {
    const sent = await gw.gql(SEND, { input: { to: "+14155550100", text } }, key);
    expect(sent.errors).toBeUndefined();
    return sent.data.sendMessage.id;
  }

  async function allPages(key: string, first: number, subAccountId?: string) {
    const pages: { ids: string[]; hasNextPage: boolean }[] = [];
    let after: string | null = null;
    for (let guard = 0; guard < 20; guard += 1) {
      const response: GraphQLResponse = await gw.gql(MESSAGES, { first, after, subAccountId }, key);
      expect(response.errors).toBeUndefined();
      const { edges, pageInfo }: { edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } = response.data.messages;
      pages.push({ ids: edges.map((edge) => edge.node.id), hasNextPage: pageInfo.hasNextPage });
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor;
    }
    return pages;
  }

  it("lists the caller's own messages newest first, page by page", async () => {
    const { mainKey } = await gw.createTeam({ balance: 1000 });
    const sub = await subAccount(gw, mainKey);
    const ids: string[] = [];
    for (let i = 0; i < 12; i += 1) ids.push(await send(sub.key, `message ${i}`));
    const pages = await allPages(sub.key, 5);
    expect(pages.map((page) => page.ids.length)).toEqual([5, 5, 2]);
    expect(pages.map((page) => page.hasNextPage)).toEqual([true, true, false]);
    const listed = pages.flatMap((page) => page.ids);
    expect(new Set(listed).size).toBe(12);
    expect(listed).toEqual([...ids].reverse());

    const head = await gw.gql(MESSAGES, { first: 1 }, sub.key);
    expect(head.data.messages.edges[0].node).toMatchObject({ id: ids[11], text: "message 11", accountId: sub.id });
  });

  it("a sub-account key never sees another sub-account's messages", async () => {
    const { mainKey } = await gw.createTeam({ balance: 1000 });
    const alice = await subAccount(gw, mainKey, "Alice");
    const bob = await subAccount(gw, mainKey, "Bob");
    const aliceIds = [await send(alice.key, "for alice 1"), await send(alice.key, "for alice 2")];
    const bobId = await send(bob.key, "for bob");

    expect((await allPages(bob.key, 10)).flatMap((page) => page.ids)).toEqual([bobId]);
    expect((await allPages(alice.key, 10)).flatMap((page) => page.ids)).toEqual([...aliceIds].reverse());

    const foreign = await gw.gql(MESSAGE, { id: aliceIds[0] }, bob.key);
    expect(foreign.status).toBe(404);
    expect(foreign.data).toBeNull();
    expect(onlyError(foreign).extensions.code).toBe("not_found");
    expect(JSON.stringify(foreign)).not.toContain("for alice");

    const named = await gw.gql(MESSAGES, { first: 10, subAccountId: alice.id }, bob.key);
    expect(named.status).toBe(403);
    expect(named.data).toBeNull();
    expect(onlyError(named).extensions.code).toBe("forbidden");

    // The main key's own list holds only the main account's messages.
    const mainId = await send(mainKey, "from main");
    expect((await allPages(mainKey, 10)).flatMap((page) => page.ids)).toEqual([mainId]);
    // And a sub-account never sees the main account's.
    expect((await gw.gql(MESSAGE, { id: mainId }, alice.key)).status).toBe(404);
  });

  it("a main key reads its sub-accounts' messages; another team's main key gets not_found", async () => {
    const { mainKey } = await gw.createTeam({ balance: 1000 });
    const sub = await subAccount(gw, mainKey);
    const ids = [await send(sub.key, "one"), await send(sub.key, "two"), await send(sub.key, "three")];

    const read = await gw.gql(MESSAGE, { id: ids[1] }, mainKey);
    expect(read.errors).toBeUndefined();
    expect(read.data.message).toMatchObject({ id: ids[1], text: "two", accountId: sub.id });
    const pages = await allPages(mainKey, 2, sub.id);
    expect(pages.map((page) => page.ids.length)).toEqual([2, 1]);
    expect(pages.flatMap((page) => page.ids)).toEqual([...ids].reverse());

    const other = await gw.createTeam({ balance: 1000 });
    const stranger = await gw.gql(MESSAGE, { id: ids[1] }, other.mainKey);
    expect(stranger.status).toBe(404);
    expect(stranger.data).toBeNull();
    expect(onlyError(stranger).extensions.code).toBe("not_found");
    const strangerList = await gw.gql(MESSAGES, { first: 10, subAccountId: sub.id }, other.mainKey);
    expect(strangerList.status).toBe(404);
    expect(strangerList.data).toBeNull();
    expect(onlyError(strangerList).extensions.code).toBe("not_found");
    expect(JSON.stringify(strangerList)).not.toContain(ids[0]);
  });

  it("an unknown message id is not_found", async () => {
    const { mainKey } = await gw.createTeam({ balance: 1000 });
    const missing = await gw.gql(MESSAGE, { id: "m000000000000nosuchmessage" }, mainKey);
    expect(missing.status).toBe(404);
    expect(onlyError(missing).extensions.code).toBe("not_found");
  });
});

describe("main-account sends", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.close());

  it("are charged to the team balance with a ledger entry", async () => {
    const { teamId, mainAccountId, mainKey } = await gw.createTeam({ balance: 6 });
    const sent = await gw.gql(SEND, { input: { to: "+447700900123", text: "Hello from London" } }, mainKey);
    expect(sent.errors).toBeUndefined();
    expect(sent.data.sendMessage).toMatchObject({ cost: 4, accountId: mainAccountId, isTestMode: false });
    expect((await gw.gql(`{ balance { balance isSubAccount } }`, {}, mainKey)).data.balance).toEqual({ balance: 2, isSubAccount: false });
    const ledger = await gw.db.prisma.ledgerEntry.findMany({ where: { teamId, kind: "charge" } });
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({ accountId: mainAccountId, messageId: sent.data.sendMessage.id, amount: 4n });

    // And refused like any other account's once the balance does not cover them.
    const refused = await gw.gql(SEND, { input: { to: "+447700900123", text: "Hello again" } }, mainKey);
    expect(refused.status).toBe(402);
    expect(onlyError(refused).extensions).toMatchObject({ code: "insufficient_balance", details: { cost: 4, balance: 2 } });
    expect(await teamBalance(gw, teamId)).toBe(2n);
    expect(await gw.db.prisma.message.count({ where: { teamId } })).toBe(1);
  });
});
