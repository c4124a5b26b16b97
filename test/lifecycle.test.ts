import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyError, startGateway, type GraphQLResponse, type TestGateway } from "./helpers/gateway.ts";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const DAY_MS = 86_400_000;
const GRACE_MS = 14 * DAY_MS;

const CREATE = `mutation($input: CreateSubAccountInput!) {
  createSubAccount(input: $input) { apiKey subAccount { id apiKeys { id } } }
}`;
const CREATE_KEY = `mutation($id: ID!) { createSubAccountApiKey(subAccountId: $id, input: { name: "extra" }) { key apiKey { id revokedAt } } }`;
const DEACTIVATE = `mutation($id: ID!) {
  deactivateSubAccount(id: $id) {
    keysRevoked message deletionScheduledAt
    subAccount { id status deletionScheduledAt apiKeys { id revokedAt } }
  }
}`;
const SET_STATUS = `mutation($id: ID!, $status: SubAccountStatus!) {
  updateSubAccount(id: $id, input: { status: $status }) { id status deletionScheduledAt }
}`;
const GET = `query($id: ID!) { subAccount(id: $id) { id status deletionScheduledAt } }`;
/** What a sub-account key does first: read its own balance. */
const OWN_BALANCE = `{ balance { isSubAccount totalSpent } }`;

function expectError(response: GraphQLResponse, status: number, code: string) {
  const error = onlyError(response);
  expect({ status: response.status, code: error.extensions.code }).toEqual({ status, code });
}

describe("sub-account lifecycle", () => {
  let gw: TestGateway;
  let team: Awaited<ReturnType<TestGateway["createTeam"]>>;

  beforeAll(async () => {
    gw = await startGateway();
    team = await gw.createTeam({ balance: 100_000 });
  });
  afterAll(async () => gw.close());

  async function createSub(name: string) {
    const created = await gw.gql(CREATE, { input: { name } }, team.mainKey);
    expect(created.errors).toBeUndefined();
    return { id: created.data.createSubAccount.subAccount.id as string, key: created.data.createSubAccount.apiKey as string };
  }

  async function createKey(subAccountId: string) {
    const created = await gw.gql(CREATE_KEY, { id: subAccountId }, team.mainKey);
    expect(created.errors).toBeUndefined();
    return created.data.createSubAccountApiKey.key as string;
  }

  async function expectKeyWorks(key: string) {
    const response = await gw.gql(OWN_BALANCE, {}, key);
    expect(response.errors).toBeUndefined();
    expect(response.status).toBe(200);
    expect(response.data.balance.isSubAccount).toBe(true);
  }

  async function expectKeyRefused(key: string) {
    expectError(await gw.gql(OWN_BALANCE, {}, key), 401, "unauthorized");
  }

  async function deactivate(id: string) {
    const response = await gw.gql(DEACTIVATE, { id }, team.mainKey);
    expect(response.errors).toBeUndefined();
    return response.data.deactivateSubAccount;
  }

  it("deactivation revokes every key at once, returns the count, a message and the deletion date 14 days later", async () => {
    const sub = await createSub("Deactivated client");
    const keys = [sub.key, await createKey(sub.id), await createKey(sub.id)];
    for (const key of keys) await expectKeyWorks(key);

    const now = gw.clock.now();
    const result = await deactivate(sub.id);
    const expectedDeletion = new Date(now.getTime() + GRACE_MS).toISOString();
    expect(result.keysRevoked).toBe(3);
    expect(result.deletionScheduledAt).toBe(expectedDeletion);
    expect(typeof result.message).toBe("string");
    expect(result.message).toContain("3");
    expect(result.message).toContain(expectedDeletion);
    expect(result.subAccount).toMatchObject({ id: sub.id, status: "INACTIVE", deletionScheduledAt: expectedDeletion });
    expect(result.subAccount.apiKeys).toHaveLength(3);
    for (const apiKey of result.subAccount.apiKeys) expect(apiKey.revokedAt).toBe(now.toISOString());

    for (const key of keys) await expectKeyRefused(key);
    // Still readable by the main key during the grace period.
    const read = await gw.gql(GET, { id: sub.id }, team.mainKey);
    expect(read.data.subAccount).toEqual({ id: sub.id, status: "INACTIVE", deletionScheduledAt: expectedDeletion });
  });

  it("suspending makes the keys unauthorized and reactivating restores them, without scheduling a deletion", async () => {
    const sub = await createSub("Suspended client");
    const second = await createKey(sub.id);
    await expectKeyWorks(sub.key);

    const suspended = await gw.gql(SET_STATUS, { id: sub.id, status: "INACTIVE" }, team.mainKey);
    expect(suspended.errors).toBeUndefined();
    expect(suspended.data.updateSubAccount).toEqual({ id: sub.id, status: "INACTIVE", deletionScheduledAt: null });
    await expectKeyRefused(sub.key);
    await expectKeyRefused(second);

    // A suspension is not a deactivation: the purge leaves it alone, however long it lasts.
    expect(await gw.gateway.services.accounts.purgeExpired(new Date(gw.clock.now().getTime() + 365 * DAY_MS))).not.toContain(sub.id);

    const reactivated = await gw.gql(SET_STATUS, { id: sub.id, status: "ACTIVE" }, team.mainKey);
    expect(reactivated.errors).toBeUndefined();
    expect(reactivated.data.updateSubAccount.status).toBe("ACTIVE");
    await expectKeyWorks(sub.key);
    await expectKeyWorks(second);
  });

  it("a deactivated sub-account reactivated within 14 days keeps its old keys revoked and accepts new ones, and is not purged", async () => {
    const sub = await createSub("Returning client");
    const oldSecond = await createKey(sub.id);
    const deactivatedAt = gw.clock.now();
    await deactivate(sub.id);

    gw.clock.set(new Date(deactivatedAt.getTime() + 13 * DAY_MS));
    const reactivated = await gw.gql(SET_STATUS, { id: sub.id, status: "ACTIVE" }, team.mainKey);
    expect(reactivated.errors).toBeUndefined();
    expect(reactivated.data.updateSubAccount).toEqual({ id: sub.id, status: "ACTIVE", deletionScheduledAt: null });

    await expectKeyRefused(sub.key);
    await expectKeyRefused(oldSecond);
    const fresh = await createKey(sub.id);
    await expectKeyWorks(fresh);

    // The scheduled deletion was cancelled: past the original date, the purge keeps it.
    gw.clock.set(new Date(deactivatedAt.getTime() + GRACE_MS + DAY_MS));
    expect(await gw.gateway.services.accounts.purgeExpired()).not.toContain(sub.id);
    expect((await gw.gql(GET, { id: sub.id }, team.mainKey)).data.subAccount.status).toBe("ACTIVE");
    await expectKeyWorks(fresh);
  });

  it("the purge keeps a deactivated sub-account until 14 days have passed, then removes it, its keys and messages, but not the ledger", async () => {
    const keep = await createSub("Active neighbour");
    const sub = await createSub("Leaving client");
    await createKey(sub.id);
    // Messages and charges of the sub-account (sendMessage is exercised elsewhere; rows are what the purge sees).
    for (const [i, cost] of [250, 4_000].entries()) {
      const message = await gw.db.prisma.message.create({
        data: { teamId: team.teamId, accountId: sub.id, to: "+14155550100", channel: "sms", text: `hello ${i}`, cost: BigInt(cost) },
      });
      await gw.db.prisma.ledgerEntry.create({
        data: {
          teamId: team.teamId,
          accountId: sub.id,
          messageId: message.id,
          kind: "charge",
          amount: BigInt(cost),
          balanceAfter: 1000n,
          totalSpentAfter: BigInt(cost),
        },
      });
    }
    const ledgerBefore = await gw.db.prisma.ledgerEntry.findMany({ where: { accountId: sub.id }, orderBy: { id: "asc" } });
    expect(ledgerBefore).toHaveLength(2);

    const deactivatedAt = gw.clock.now();
    const result = await deactivate(sub.id);
    expect(result.keysRevoked).toBe(2);

    gw.clock.set(new Date(deactivatedAt.getTime() + GRACE_MS - 1000));
    expect(await gw.gateway.services.accounts.purgeExpired()).not.toContain(sub.id);
    expect((await gw.gql(GET, { id: sub.id }, team.mainKey)).data.subAccount.id).toBe(sub.id);
    expect(await gw.db.prisma.apiKey.count({ where: { accountId: sub.id } })).toBe(2);
    expect(await gw.db.prisma.message.count({ where: { accountId: sub.id } })).toBe(2);

    gw.clock.set(new Date(deactivatedAt.getTime() + GRACE_MS));
    const purged = await gw.gateway.services.accounts.purgeExpired();
    expect(purged).toContain(sub.id);
    expect(purged).not.toContain(keep.id);

    expectError(await gw.gql(GET, { id: sub.id }, team.mainKey), 404, "not_found");
    expectError(await gw.gql(`query($id: ID!) { subAccountBalance(id: $id) { balance } }`, { id: sub.id }, team.mainKey), 404, "not_found");
    expect(await gw.db.prisma.account.count({ where: { id: sub.id } })).toBe(0);
    expect(await gw.db.prisma.apiKey.count({ where: { accountId: sub.id } })).toBe(0);
    expect(await gw.db.prisma.message.count({ where: { accountId: sub.id } })).toBe(0);
    expect(await gw.db.prisma.ledgerEntry.findMany({ where: { accountId: sub.id }, orderBy: { id: "asc" } })).toEqual(ledgerBefore);

    // The neighbour and the team are untouched.
    expect((await gw.gql(GET, { id: keep.id }, team.mainKey)).data.subAccount.status).toBe("ACTIVE");
    await expectKeyWorks(keep.key);
  });

  it("`npm run admin -- purge [--now <ISO>]` purges from the command line what is past its grace period and prints the ids as JSON", async () => {
    const sub = await createSub("CLI-purged client");
    await deactivate(sub.id);
    // The CLI purges by the real clock (a --now in the future is refused): move the scheduled
    // deletion into the past, as if the 14 days had gone by.
    const deletionAt = new Date(Date.now() - 60_000);
    await gw.db.prisma.account.update({ where: { id: sub.id }, data: { deletionScheduledAt: deletionAt } });

    const purge = async (...args: string[]) => {
      const { stdout } = await run("npx", ["tsx", "src/cli/admin.ts", "purge", ...args, "--json"], {
        cwd: root,
        env: { ...process.env, DATABASE_URL: gw.databaseUrl, LOG_LEVEL: "silent" },
      });
      return JSON.parse(stdout.trim().split("\n").pop()!) as { purged: string[] };
    };

    // As of a second before the deletion date (a past --now): kept.
    const early = await purge("--now", new Date(deletionAt.getTime() - 1000).toISOString());
    expect(Array.isArray(early.purged)).toBe(true);
    expect(early.purged).not.toContain(sub.id);
    expect((await gw.gql(GET, { id: sub.id }, team.mainKey)).data.subAccount.id).toBe(sub.id);

    // As of now, past it: removed.
    const late = await purge();
    expect(late.purged).toContain(sub.id);
    expectError(await gw.gql(GET, { id: sub.id }, team.mainKey), 404, "not_found");
  }, 180_000); // two CLI processes, each starting tsx and checking migrations
});
