import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";
import { SEND, SPEND } from "./helpers/storm.ts";
import { subscribeSse, subscribeWs } from "./helpers/subscriptions.ts";

const CREATE = `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`;
/** README.md, "Live spend": a revoked or suspended key's open subscriptions end with an error within one second. */
const END_WITHIN_MS = 1000;

function endsWithin(ended: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([ended.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
}

describe("spendUpdated subscriptions", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  // Each test counts the subscriptions it opens: the previous test's must be gone first.
  beforeEach(async () => {
    await expect.poll(() => gw.gateway.services.openSubscriptions, { timeout: 5_000 }).toBe(0);
  });
  afterAll(async () => gw.close());

  async function team() {
    const { mainKey } = await gw.createTeam({ balance: 10_000 });
    const make = async (name: string) => {
      const created = await gw.gql(CREATE, { input: { name, creditLimit: 10 } }, mainKey);
      return { id: created.data.createSubAccount.subAccount.id as string, key: created.data.createSubAccount.apiKey as string };
    };
    return { mainKey, a: await make("A"), b: await make("B") };
  }

  it("delivers the documented fields after each charge", async () => {
    const { mainKey, a } = await team();
    const ws = await subscribeWs(gw.url, mainKey, SPEND, { id: a.id });
    await gw.untilSubscriptions(1);
    const sent = await gw.gql(SEND, { input: { to: "+447700900123", text: "hello" } }, a.key);
    const [event] = await ws.waitFor(1);
    expect(event.spendUpdated).toMatchObject({
      subAccount: { id: a.id, totalSpent: 4, creditLimit: 10, status: "ACTIVE" },
      amount: 4,
      messageId: sent.data.sendMessage.id,
      teamBalance: 10_000 - 4,
      remainingCredit: 6,
      limitReached: false,
      sequence: 1,
    });
    expect(new Date(event.spendUpdated.chargedAt).getTime()).not.toBeNaN();
    await gw.gql(SEND, { input: { to: "+447700900123", text: "again" } }, a.key);
    await gw.gql(SEND, { input: { to: "+14155550100", text: "a" } }, a.key);
    await gw.gql(SEND, { input: { to: "+14155550100", text: "b" } }, a.key);
    const events = await ws.waitFor(4);
    expect(events[3].spendUpdated).toMatchObject({ remainingCredit: 0, limitReached: true, sequence: 4 });
    ws.close();
  });

  it("subscribers of one charge with different selections and filters each get exactly their own selection", async () => {
    const { mainKey, a, b } = await team();
    const narrow = `subscription { spendUpdated { amount messageId } }`;
    const aliased = `subscription($id: ID) { spendUpdated(subAccountId: $id) { spent: subAccount { totalSpent } sequence } }`;
    const before = gw.gateway.services.openSubscriptions;
    const [full, slim, slimTwin, onlyA, onlyB] = await Promise.all([
      subscribeWs(gw.url, mainKey, SPEND),
      subscribeWs(gw.url, mainKey, narrow),
      subscribeSse(gw.url, mainKey, narrow),
      subscribeWs(gw.url, a.key, aliased, { id: a.id }),
      subscribeWs(gw.url, mainKey, aliased, { id: b.id }),
    ]);
    await expect.poll(() => gw.gateway.services.openSubscriptions).toBe(before + 5);
    const sent = await gw.gql(SEND, { input: { to: "+447700900123", text: "hello" } }, a.key);
    const messageId = sent.data.sendMessage.id;
    expect((await full.waitFor(1))[0].spendUpdated).toMatchObject({ messageId, amount: 4, subAccount: { id: a.id, totalSpent: 4 } });
    expect((await slim.waitFor(1))[0]).toEqual({ spendUpdated: { amount: 4, messageId } });
    expect((await slimTwin.waitFor(1))[0]).toEqual({ spendUpdated: { amount: 4, messageId } });
    expect((await onlyA.waitFor(1))[0]).toEqual({ spendUpdated: { spent: { totalSpent: 4 }, sequence: 1 } });
    await gw.gql(SEND, { input: { to: "+447700900123", text: "hello" } }, b.key);
    expect((await onlyB.waitFor(1))[0]).toEqual({ spendUpdated: { spent: { totalSpent: 4 }, sequence: 1 } });
    expect(onlyA.events).toHaveLength(1);
    for (const subscription of [full, slim, slimTwin, onlyA, onlyB]) subscription.close();
  });

  it("a subscriber that leaves is released by the server at once, with no event needed to notice", async () => {
    const { mainKey } = await team();
    const before = gw.gateway.services.openSubscriptions;
    const subscribers = await Promise.all(Array.from({ length: 5 }, () => subscribeWs(gw.url, mainKey, SPEND)));
    await expect.poll(() => gw.gateway.services.openSubscriptions).toBe(before + 5);
    for (const subscriber of subscribers) subscriber.close();
    await expect.poll(() => gw.gateway.services.openSubscriptions, { timeout: END_WITHIN_MS }).toBe(before);
  });

  it("a main key can follow one sub-account; a sub-account key only its own", async () => {
    const { mainKey, a, b } = await team();
    const mainOnB = await subscribeWs(gw.url, mainKey, SPEND, { id: b.id });
    const ownA = await subscribeSse(gw.url, a.key, SPEND);
    await gw.untilSubscriptions(2);
    await gw.gql(SEND, { input: { to: "+14155550100", text: "from a" } }, a.key);
    await gw.gql(SEND, { input: { to: "+14155550100", text: "from b" } }, b.key);
    const [bEvent] = await mainOnB.waitFor(1);
    const [aEvent] = await ownA.waitFor(1);
    expect(bEvent.spendUpdated.subAccount.id).toBe(b.id);
    expect(aEvent.spendUpdated.subAccount.id).toBe(a.id);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(mainOnB.events).toHaveLength(1);
    expect(ownA.events).toHaveLength(1);
    mainOnB.close();
    ownA.close();
  });

  it("a sub-account key cannot subscribe to another sub-account's spend, over either transport", async () => {
    const { a, b } = await team();
    const ws = await subscribeWs(gw.url, a.key, SPEND, { id: b.id });
    await ws.ended;
    expect(ws.errors.map((e) => e.extensions?.code)).toEqual(["forbidden"]);
    const sse = await subscribeSse(gw.url, a.key, SPEND, { id: b.id });
    await sse.ended;
    expect(sse.errors.map((e) => e.extensions?.code)).toEqual(["forbidden"]);
    expect([...ws.events, ...sse.events]).toEqual([]);
  });

  it("another team's sub-account is not_found for a main key; no key or a bad key is unauthorized", async () => {
    const first = await team();
    const second = await team();
    const ws = await subscribeWs(gw.url, second.mainKey, SPEND, { id: first.a.id });
    await ws.ended;
    expect(ws.errors.map((e) => e.extensions?.code)).toEqual(["not_found"]);
    const bad = await subscribeWs(gw.url, "zv_live_sub_" + "x".repeat(40), SPEND);
    await bad.ended;
    expect(bad.errors.map((e) => e.extensions?.code)).toEqual(["unauthorized"]);
    const sse = await subscribeSse(gw.url, "zv_live_" + "y".repeat(40), SPEND);
    expect(sse.status).toBe(401);
  });

  it("revoking a key ends its open subscriptions with an error within one second, on both transports", async () => {
    const { mainKey, a } = await team();
    const created = await gw.gql(
      `mutation($id: ID!) { createSubAccountApiKey(subAccountId: $id, input: { name: "dashboard" }) { key apiKey { id } } }`,
      { id: a.id },
      mainKey,
    );
    const { key, apiKey } = created.data.createSubAccountApiKey;
    const ws = await subscribeWs(gw.url, key, SPEND);
    const sse = await subscribeSse(gw.url, key, SPEND);
    const untouched = await subscribeWs(gw.url, a.key, SPEND);
    await gw.untilSubscriptions(3);
    await gw.gql(`mutation($s: ID!, $k: ID!) { revokeSubAccountApiKey(subAccountId: $s, apiKeyId: $k) { revokedAt } }`, { s: a.id, k: apiKey.id }, mainKey);
    expect(await endsWithin(ws.ended, END_WITHIN_MS)).toBe(true);
    expect(await endsWithin(sse.ended, END_WITHIN_MS)).toBe(true);
    expect(ws.errors.map((e) => e.extensions?.code)).toEqual(["unauthorized"]);
    expect(sse.errors.map((e) => e.extensions?.code)).toEqual(["unauthorized"]);
    // The account's other key keeps its subscription.
    expect(untouched.isEnded()).toBe(false);
    await gw.gql(SEND, { input: { to: "+14155550100", text: "still here" } }, a.key);
    await untouched.waitFor(1);
    untouched.close();
  });

  it("suspending or deactivating a sub-account ends its keys' subscriptions; the main key's stays open", async () => {
    const { mainKey, a, b } = await team();
    const aStream = await subscribeWs(gw.url, a.key, SPEND);
    const bStream = await subscribeSse(gw.url, b.key, SPEND);
    const mainStream = await subscribeWs(gw.url, mainKey, SPEND);
    await gw.untilSubscriptions(3);
    await gw.gql(`mutation($id: ID!) { updateSubAccount(id: $id, input: { status: INACTIVE }) { status } }`, { id: a.id }, mainKey);
    await gw.gql(`mutation($id: ID!) { deactivateSubAccount(id: $id) { keysRevoked } }`, { id: b.id }, mainKey);
    expect(await endsWithin(aStream.ended, END_WITHIN_MS)).toBe(true);
    expect(await endsWithin(bStream.ended, END_WITHIN_MS)).toBe(true);
    expect(aStream.errors.map((e) => e.extensions?.code)).toEqual(["unauthorized"]);
    expect(bStream.errors.map((e) => e.extensions?.code)).toEqual(["unauthorized"]);
    expect(mainStream.isEnded()).toBe(false);
    mainStream.close();
  });
});
