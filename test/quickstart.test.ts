import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";

const CREATE = `mutation Create($input: CreateSubAccountInput!) {
  createSubAccount(input: $input) {
    apiKey
    subAccount { id name externalId status totalSpent creditLimit metadata createdAt apiKeys { id keyPrefix environment revokedAt } }
  }
}`;

describe("the seeds' quick start over GraphQL", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.close());

  it("creates a sub-account whose key is returned once and reads its own balance", async () => {
    const { mainKey } = await gw.createTeam({ balance: 50_000 });
    const created = await gw.gql(
      CREATE,
      { input: { name: "Client ABC", externalId: "client_123", creditLimit: 100000, metadata: { plan: "enterprise", region: "us-east" } } },
      mainKey,
    );
    expect(created.status).toBe(200);
    expect(created.errors).toBeUndefined();
    const { apiKey, subAccount } = created.data.createSubAccount;
    expect(apiKey).toMatch(/^zv_live_sub_[0-9A-Za-z]{32,}$/);
    expect(subAccount).toMatchObject({
      name: "Client ABC",
      externalId: "client_123",
      status: "ACTIVE",
      totalSpent: 0,
      creditLimit: 100000,
      metadata: { plan: "enterprise", region: "us-east" },
    });
    expect(apiKey.startsWith(subAccount.apiKeys[0].keyPrefix)).toBe(true);

    const balance = await gw.gql(`{ balance { balance currency isSubAccount totalSpent creditLimit remainingCredit } viewer { isTestMode account { id isSubAccount } } }`, {}, apiKey);
    expect(balance.errors).toBeUndefined();
    expect(balance.data.balance).toEqual({ balance: 50_000, currency: "USD", isSubAccount: true, totalSpent: 0, creditLimit: 100000, remainingCredit: 100000 });
    expect(balance.data.viewer).toEqual({ isTestMode: false, account: { id: subAccount.id, isSubAccount: true } });

    // The key is nowhere after its creation: not through the API, not in the database.
    const reread = await gw.gql(`query($id: ID!) { subAccount(id: $id) { id apiKeys { keyPrefix } } }`, { id: subAccount.id }, mainKey);
    expect(JSON.stringify(reread)).not.toContain(apiKey);
    const rows = await gw.db.prisma.apiKey.findMany();
    expect(JSON.stringify(rows, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain(apiKey);
  });

  it("shows the main key's view of the balance", async () => {
    const { mainKey } = await gw.createTeam({ balance: 1234 });
    const response = await gw.gql(`{ balance { balance currency isSubAccount totalSpent creditLimit } }`, {}, mainKey);
    expect(response.data.balance).toEqual({ balance: 1234, currency: "USD", isSubAccount: false, totalSpent: null, creditLimit: null });
  });
});
