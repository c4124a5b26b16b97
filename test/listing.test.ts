import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";

/**
 * The subAccounts listing (src/db/subAccountListing.ts: the page, its keys,
 * the total and the team in one statement) over real HTTP: every field of
 * every node is what `subAccount(id)` (the Prisma path) answers for the same
 * sub-account, paging and filters give every matching sub-account once, and a
 * request costs at most 3 SQL statements, authentication included.
 */

const FULL = `fragment Full on SubAccount {
  id name externalId status totalSpent chargeSequence creditLimit metadata alertThresholds deletionScheduledAt createdAt updatedAt
  apiKeys { id name environment keyPrefix permissions createdAt lastUsedAt revokedAt expiresAt }
  budget { amount period spent periodStart resetsAt remaining }
  balance { balance currency isSubAccount totalSpent creditLimit remainingCredit budget { amount period spent remaining } }
}`;

const LIST = `query List($first: Int, $after: String, $status: SubAccountStatus, $externalId: String) {
  subAccounts(first: $first, after: $after, status: $status, externalId: $externalId) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { ...Full } }
  }
}
${FULL}`;

const ONE = `query One($id: ID!) { subAccount(id: $id) { ...Full } }
${FULL}`;

/** The bench's listing (bench/queries.ts). */
const BENCH_LISTING = `{ subAccounts(first: 100) { totalCount edges { node { id name totalSpent creditLimit apiKeys { id } balance { balance totalSpent creditLimit remainingCredit } } } } }`;

const CREATE = `mutation Create($input: CreateSubAccountInput!) { createSubAccount(input: $input) { subAccount { id } } }`;
const ADD_KEY = `mutation Key($id: ID!, $input: CreateSubAccountApiKeyInput) { createSubAccountApiKey(subAccountId: $id, input: $input) { apiKey { id } } }`;

interface Page {
  totalCount: number;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  edges: { cursor: string; node: { id: string; status: string; externalId: string | null } }[];
}

const SUB_ACCOUNTS = 9;

describe("the subAccounts listing over HTTP", () => {
  let gw: TestGateway;
  let mainKey: string;
  let ids: string[];
  let otherTeamId: string;

  beforeAll(async () => {
    gw = await startGateway();
    const team = await gw.createTeam({ balance: 123_456 });
    mainKey = team.mainKey;
    ids = [];
    for (let i = 0; i < SUB_ACCOUNTS; i += 1) {
      const input = {
        name: `Client ${i}`,
        externalId: i % 3 === 0 ? "group_a" : `client_${i}`,
        creditLimit: i % 2 === 0 ? null : 10_000 + i,
        budget: i % 4 === 1 ? { amount: 5_000, period: ["DAY", "WEEK", "MONTH"][i % 3] } : null,
        alertThresholds: i % 4 === 2 ? [50, 90] : null,
        metadata: i % 2 === 1 ? { plan: "enterprise", seats: i, nested: { ok: true, list: [1, "two", null] } } : null,
      };
      const created = await gw.gql<{ createSubAccount: { subAccount: { id: string } } }>(CREATE, { input }, mainKey);
      expect(created.errors).toBeUndefined();
      ids.push(created.data.createSubAccount.subAccount.id);
    }
    ids.sort();
    // Keys beyond the first: scoped, expiring, revoked.
    const scoped = await gw.gql<{ createSubAccountApiKey: { apiKey: { id: string } } }>(
      ADD_KEY,
      { id: ids[1], input: { name: "scoped", permissions: ["balance:read"], expiresAt: "2099-01-02T03:04:05.678Z" } },
      mainKey,
    );
    expect(scoped.errors).toBeUndefined();
    const revoked = await gw.gql<{ createSubAccountApiKey: { apiKey: { id: string } } }>(ADD_KEY, { id: ids[1], input: { name: "to revoke" } }, mainKey);
    await gw.gql(`mutation($s: ID!, $k: ID!) { revokeSubAccountApiKey(subAccountId: $s, apiKeyId: $k) { id } }`, { s: ids[1], k: revoked.data.createSubAccountApiKey.apiKey.id }, mainKey);
    await gw.db.prisma.apiKey.updateMany({ where: { accountId: ids[2] }, data: { lastUsedAt: new Date("2026-01-02T03:04:05.006Z") } });
    // Spending, and two suspended.
    await gw.db.prisma.account.update({ where: { id: ids[3]! }, data: { totalSpent: 10_020n, chargeCount: 7 } });
    await gw.db.prisma.account.update({ where: { id: ids[5]! }, data: { totalSpent: 300n, chargeCount: 2, periodSpent: 300n, periodStart: gw.clock.now() } });
    for (const id of [ids[4], ids[6]]) {
      const suspended = await gw.gql(`mutation($id: ID!) { updateSubAccount(id: $id, input: { status: INACTIVE }) { id } }`, { id }, mainKey);
      expect(suspended.errors).toBeUndefined();
    }
    // Another team's sub-accounts, one with the same external reference: never listed.
    const other = await gw.createTeam({ name: "Other team" });
    otherTeamId = other.teamId;
    await gw.gql(CREATE, { input: { name: "Other", externalId: "group_a" } }, other.mainKey);
  });
  afterAll(async () => gw.close());

  async function list(variables: Record<string, unknown>): Promise<Page> {
    const response = await gw.gql<{ subAccounts: Page }>(LIST, variables, mainKey);
    expect(response.errors).toBeUndefined();
    return response.data.subAccounts;
  }

  async function all(variables: Record<string, unknown>, first: number) {
    const nodes: Page["edges"][number]["node"][] = [];
    const totals = new Set<number>();
    let after: string | null = null;
    for (let pages = 0; pages < 20; pages += 1) {
      const page: Page = await list({ ...variables, first, after });
      totals.add(page.totalCount);
      nodes.push(...page.edges.map((edge) => edge.node));
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
      if (!page.pageInfo.hasNextPage) return { nodes, totals: [...totals] };
      after = page.pageInfo.endCursor;
    }
    throw new Error("more pages than sub-accounts");
  }

  it("answers every field of every node as subAccount(id) does", async () => {
    const page = await list({ first: 100 });
    expect(page.totalCount).toBe(SUB_ACCOUNTS);
    expect(page.edges.map((edge) => edge.node.id)).toEqual(ids);
    for (const { node } of page.edges) {
      const one = await gw.gql<{ subAccount: unknown }>(ONE, { id: node.id }, mainKey);
      expect(one.errors).toBeUndefined();
      expect(node).toEqual(one.data.subAccount);
    }
    const keyed = page.edges.find((edge) => edge.node.id === ids[1])!.node as unknown as { apiKeys: { name: string; permissions: string[]; expiresAt: string | null; revokedAt: string | null }[] };
    expect(keyed.apiKeys).toHaveLength(3);
    expect(keyed.apiKeys.find((key) => key.name === "scoped")).toMatchObject({ permissions: ["balance:read"], expiresAt: "2099-01-02T03:04:05.678Z", revokedAt: null });
    expect(keyed.apiKeys.find((key) => key.name === "to revoke")!.revokedAt).not.toBeNull();
  });

  it("pages through every sub-account once, in id order, with the same totalCount on every page", async () => {
    for (const first of [1, 2, 4, 9, 100]) {
      const { nodes, totals } = await all({}, first);
      expect(nodes.map((node) => node.id)).toEqual(ids);
      expect(totals).toEqual([SUB_ACCOUNTS]);
    }
  });

  it("filters by status and externalId, on every page and in totalCount; never another team's", async () => {
    const inactive = await all({ status: "INACTIVE" }, 1);
    expect(inactive.nodes.map((node) => node.id)).toEqual([ids[4], ids[6]]);
    expect(inactive.totals).toEqual([2]);
    const active = await all({ status: "ACTIVE" }, 3);
    expect(active.nodes).toHaveLength(SUB_ACCOUNTS - 2);
    expect(active.totals).toEqual([SUB_ACCOUNTS - 2]);
    const group = await all({ externalId: "group_a" }, 2);
    expect(group.nodes.every((node) => node.externalId === "group_a")).toBe(true);
    expect(group.nodes).toHaveLength(3);
    expect(group.totals).toEqual([3]);
    const others = await gw.db.prisma.account.findMany({ where: { teamId: otherTeamId }, select: { id: true } });
    const listed = new Set((await all({}, 100)).nodes.map((node) => node.id));
    for (const { id } of others) expect(listed.has(id)).toBe(false);
    expect(await list({ externalId: "nobody" })).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] });
  });

  it("an empty last page still answers totalCount", async () => {
    const page = await list({ first: 100, after: (await list({ first: SUB_ACCOUNTS })).pageInfo.endCursor });
    expect(page).toEqual({ totalCount: SUB_ACCOUNTS, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] });
  });

  it("reports errors in queries with their code, place in the document and path, as graphql-js does", async () => {
    const badCursor = await gw.gql(`query { subAccounts(first: 2, after: "nope") { totalCount } }`, {}, mainKey);
    expect(badCursor.errors).toHaveLength(1);
    expect(Object.keys(badCursor.errors![0]!).sort()).toEqual(["extensions", "locations", "message", "path"]);
    expect(badCursor.errors![0]).toMatchObject({ path: ["subAccounts"], locations: [{ line: 1, column: 9 }], extensions: { code: "invalid_request", details: { field: "after" } } });
    const unknown = await gw.gql(`query One($id: ID!) {\n  subAccount(id: $id) { id }\n}`, { id: "cnotasubaccount000000000" }, mainKey);
    expect(unknown.errors![0]).toMatchObject({ path: ["subAccount"], locations: [{ line: 2, column: 3 }], extensions: { code: "not_found" } });
    const badVariable = await gw.gql(LIST, { first: "ten" }, mainKey);
    expect(badVariable.status).toBe(400);
    expect(badVariable.errors![0]).toMatchObject({ extensions: { code: "invalid_request", details: { field: "first" } } });
  });

  it("answers the bench's listing in at most 3 SQL statements, authentication included, cold key or not", async () => {
    // A key never used: its read, its lastUsedAt touch (in the background) and the listing.
    const team = await gw.createTeam({ name: "Counted" });
    for (let i = 0; i < 3; i += 1) await gw.gql(CREATE, { input: { name: `Counted ${i}` } }, team.mainKey);
    const counts: number[] = [];
    for (let request = 0; request < 3; request += 1) {
      gw.sql.reset();
      const response = await gw.gql<{ subAccounts: { totalCount: number; edges: unknown[] } }>(BENCH_LISTING, {}, team.mainKey);
      expect(response.errors).toBeUndefined();
      expect(response.data.subAccounts.totalCount).toBe(3);
      // The touch of lastUsedAt is sent in the background: let it land in this request's count (as bench/sql-counter.ts does).
      await new Promise((resolve) => setTimeout(resolve, 200));
      counts.push(gw.sql.count);
    }
    const key = await gw.db.prisma.apiKey.findFirstOrThrow({ where: { account: { teamId: team.teamId, kind: "main" } }, select: { lastUsedAt: true } });
    expect(key.lastUsedAt).not.toBeNull();
    for (const count of counts) expect(count).toBeLessThanOrEqual(3);
  });
});
