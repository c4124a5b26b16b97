import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyError, startGateway, type GraphQLResponse, type TestGateway } from "./helpers/gateway.ts";

const PAGE = `query Page($first: Int, $after: String, $last: Int, $status: SubAccountStatus, $externalId: String) {
  subAccounts(first: $first, after: $after, last: $last, status: $status, externalId: $externalId) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id status externalId } }
  }
}`;

interface Node {
  id: string;
  status: "ACTIVE" | "INACTIVE";
  externalId: string | null;
}

interface Connection {
  totalCount: number;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  edges: { cursor: string; node: Node }[];
}

const TOTAL = 250;
/** Every fifth one is inactive: 50. */
const isInactive = (i: number) => i % 5 === 0;
/** The first 30 share an external reference. */
const externalIdOf = (i: number) => (i < 30 ? "group_a" : `client_${i}`);

describe("subAccounts pagination and filters", () => {
  let gw: TestGateway;
  let mainKey: string;
  let allIds: string[];
  let otherTeamIds: string[];

  beforeAll(async () => {
    gw = await startGateway();
    const team = await gw.createTeam();
    mainKey = team.mainKey;
    await gw.db.prisma.account.createMany({
      data: Array.from({ length: TOTAL }, (_, i) => ({
        teamId: team.teamId,
        kind: "sub",
        name: `Client ${i}`,
        externalId: externalIdOf(i),
        status: isInactive(i) ? "inactive" : "active",
      })),
    });
    allIds = (await gw.db.prisma.account.findMany({ where: { teamId: team.teamId, kind: "sub" }, select: { id: true } })).map((r) => r.id);
    expect(allIds).toHaveLength(TOTAL);

    // Another team with sub-accounts that share the external reference: never listed for the first team.
    const other = await gw.createTeam({ name: "Other team" });
    await gw.db.prisma.account.createMany({
      data: Array.from({ length: 5 }, (_, i) => ({ teamId: other.teamId, kind: "sub", name: `Other ${i}`, externalId: "group_a" })),
    });
    otherTeamIds = (await gw.db.prisma.account.findMany({ where: { teamId: other.teamId, kind: "sub" }, select: { id: true } })).map((r) => r.id);
  });
  afterAll(async () => gw.close());

  /** Follows endCursor until hasNextPage is false; checks totalCount on every page. */
  async function pageThrough(first: number, filters: Record<string, unknown> = {}, expectedTotal?: number) {
    const nodes: Node[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const response: GraphQLResponse = await gw.gql(PAGE, { first, after, ...filters }, mainKey);
      expect(response.errors).toBeUndefined();
      const connection: Connection = response.data.subAccounts;
      if (expectedTotal !== undefined) expect(connection.totalCount).toBe(expectedTotal);
      expect(connection.edges.length).toBeLessThanOrEqual(first);
      nodes.push(...connection.edges.map((edge) => edge.node));
      pages += 1;
      expect(pages).toBeLessThan(1000);
      if (!connection.pageInfo.hasNextPage) break;
      expect(connection.edges.length).toBe(first);
      expect(connection.pageInfo.endCursor).toBe(connection.edges.at(-1)!.cursor);
      after = connection.pageInfo.endCursor;
    }
    return { nodes, pages };
  }

  it("pages through 250 sub-accounts 7 at a time: every id exactly once, in the same order twice", async () => {
    const first = await pageThrough(7, {}, TOTAL);
    const ids = first.nodes.map((n) => n.id);
    expect(ids).toHaveLength(TOTAL);
    expect(new Set(ids).size).toBe(TOTAL);
    expect([...ids].sort()).toEqual([...allIds].sort());
    expect(first.pages).toBe(Math.ceil(TOTAL / 7));
    for (const id of otherTeamIds) expect(ids).not.toContain(id);

    const second = await pageThrough(7, {}, TOTAL);
    expect(second.nodes.map((n) => n.id)).toEqual(ids);

    // A different page size walks the same order.
    const big = await pageThrough(100, {}, TOTAL);
    expect(big.nodes.map((n) => n.id)).toEqual(ids);
    expect(big.pages).toBe(3);
  });

  it("filters by status, with totalCount following the filter", async () => {
    const inactive = await pageThrough(7, { status: "INACTIVE" }, 50);
    expect(inactive.nodes).toHaveLength(50);
    expect(inactive.nodes.every((n) => n.status === "INACTIVE")).toBe(true);
    expect(new Set(inactive.nodes.map((n) => n.id)).size).toBe(50);

    const active = await pageThrough(50, { status: "ACTIVE" }, 200);
    expect(active.nodes).toHaveLength(200);
    expect(active.nodes.every((n) => n.status === "ACTIVE")).toBe(true);
  });

  it("filters by externalId, alone and with status, with totalCount following the filter", async () => {
    const group = await pageThrough(7, { externalId: "group_a" }, 30);
    expect(group.nodes).toHaveLength(30);
    expect(group.nodes.every((n) => n.externalId === "group_a")).toBe(true);
    for (const id of otherTeamIds) expect(group.nodes.map((n) => n.id)).not.toContain(id);

    const one = await gw.gql(PAGE, { first: 10, externalId: "client_123" }, mainKey);
    expect(one.data.subAccounts.totalCount).toBe(1);
    expect(one.data.subAccounts.edges.map((e: { node: Node }) => e.node.externalId)).toEqual(["client_123"]);
    expect(one.data.subAccounts.pageInfo.hasNextPage).toBe(false);

    const both = await pageThrough(7, { externalId: "group_a", status: "INACTIVE" }, 6);
    expect(both.nodes).toHaveLength(6);
    expect(both.nodes.every((n) => n.externalId === "group_a" && n.status === "INACTIVE")).toBe(true);

    const none = await gw.gql(PAGE, { first: 10, externalId: "nobody" }, mainKey);
    expect(none.data.subAccounts).toMatchObject({ totalCount: 0, edges: [], pageInfo: { hasNextPage: false } });
  });

  it.each([
    ["first: 101", { first: 101 }, "first"],
    ["first: 0", { first: 0 }, "first"],
    ["first: -1", { first: -1 }, "first"],
    // The connection also takes `last`: it must not be a way around the page-size limit.
    ["last: 101", { last: 101 }, "last"],
    ["last: 500", { last: 500 }, "last"],
    ["a garbage after cursor", { first: 5, after: "garbage" }, "after"],
    ["a base64 after cursor that is not ours", { first: 5, after: Buffer.from("hello world").toString("base64") }, "after"],
  ])("%s gives invalid_request (400) naming the field", async (_label, variables, field) => {
    const response = await gw.gql(PAGE, variables, mainKey);
    const error = onlyError(response);
    expect(response.status).toBe(400);
    expect(error.extensions.code).toBe("invalid_request");
    expect(error.message).toMatch(new RegExp(`\\b${field}\\b`));
    expect(response.data?.subAccounts ?? null).toBeNull();
  });

  it("accepts the bounds: first 1 and first 100", async () => {
    const one = await gw.gql(PAGE, { first: 1 }, mainKey);
    expect(one.errors).toBeUndefined();
    expect(one.data.subAccounts.edges).toHaveLength(1);
    const hundred = await gw.gql(PAGE, { first: 100 }, mainKey);
    expect(hundred.errors).toBeUndefined();
    expect(hundred.data.subAccounts.edges).toHaveLength(100);
  });
});
