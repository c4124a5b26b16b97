import { createHash, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";

const LIST = `query List($first: Int!) {
  subAccounts(first: $first) {
    totalCount
    edges { node { id name apiKeys { id keyPrefix } balance { balance totalSpent creditLimit } } }
  }
}`;

const SUB_ACCOUNTS = 100;

describe("subAccounts with apiKeys and balance: no N+1", () => {
  let gw: TestGateway;
  let mainKey: string;

  beforeAll(async () => {
    gw = await startGateway();
    const team = await gw.createTeam({ balance: 777_000 });
    mainKey = team.mainKey;
    await gw.db.prisma.account.createMany({
      data: Array.from({ length: SUB_ACCOUNTS }, (_, i) => ({
        teamId: team.teamId,
        kind: "sub",
        name: `Client ${i}`,
        totalSpent: BigInt(i),
        creditLimit: i % 2 === 0 ? null : BigInt(1000 + i),
      })),
    });
    const accounts = await gw.db.prisma.account.findMany({ where: { teamId: team.teamId, kind: "sub" }, select: { id: true } });
    await gw.db.prisma.apiKey.createMany({
      data: accounts.flatMap((account) =>
        [0, 1].map((n) => ({
          accountId: account.id,
          name: `key ${n}`,
          environment: "live",
          keyPrefix: `zv_live_sub_${n}`,
          keyHash: createHash("sha256").update(randomUUID()).digest("hex"),
          permissions: [],
        })),
      ),
    });

    // The first use of a key refreshes its lastUsedAt in the background; let that land before counting.
    await gw.gql(`{ viewer { isTestMode } }`, {}, mainKey);
    await vi.waitFor(async () => {
      const key = await gw.db.prisma.apiKey.findFirstOrThrow({ where: { account: { teamId: team.teamId, kind: "main" } } });
      if (!key.lastUsedAt) throw new Error("lastUsedAt not refreshed yet");
    });
  });
  afterAll(async () => gw.close());

  /** Authentication's own statements: the key's read (none while this instance's key cache holds it) and its lastUsedAt. */
  const isAuthentication = (sql: string) => /"keyHash"\s*=/.test(sql) || /SET\s+"lastUsedAt"/.test(sql);

  async function countStatements(first: number) {
    gw.sql.reset();
    const response = await gw.gql(LIST, { first }, mainKey);
    // Whether the key cache still holds the key depends on the time since the last request: counted apart.
    const statements = gw.sql.statements.filter((sql) => !isAuthentication(sql));
    const count = statements.length;
    expect(response.errors).toBeUndefined();
    const { totalCount, edges } = response.data.subAccounts;
    expect(totalCount).toBe(SUB_ACCOUNTS);
    expect(edges).toHaveLength(first);
    for (const { node } of edges) {
      expect(node.apiKeys).toHaveLength(2);
      const i = Number(node.name.replace("Client ", ""));
      expect(node.balance).toEqual({ balance: 777_000, totalSpent: i, creditLimit: i % 2 === 0 ? null : 1000 + i });
    }
    return { count, statements };
  }

  it("sends the same number of SQL statements for 10 and for 100 sub-accounts", async () => {
    const ten = await countStatements(10);
    const hundred = await countStatements(100);
    console.log(
      `SQL statements for subAccounts(first: N) with apiKeys and balance: N=10 -> ${ten.count}, N=100 -> ${hundred.count}\n` +
        hundred.statements.map((s) => `  ${s.slice(0, 160)}`).join("\n"),
    );
    expect(hundred.count).toBe(ten.count);
    // The team, the page, its keys and the total in one (src/db/subAccountListing.ts).
    expect(hundred.count).toBe(1);
  });
});
