import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";

/** $100M in cents: more than GraphQL's 32-bit Int holds. */
const TEN_BILLION = 10_000_000_000;

describe("amounts of 10^10 cents round-trip unchanged", () => {
  let gw: TestGateway;
  let team: Awaited<ReturnType<TestGateway["createTeam"]>>;

  beforeAll(async () => {
    gw = await startGateway();
    team = await gw.createTeam({ balance: TEN_BILLION });
  });
  afterAll(async () => gw.close());

  it("a team balance of 10^10 cents is stored exactly and read back through GraphQL", async () => {
    const row = await gw.db.prisma.team.findUniqueOrThrow({ where: { id: team.teamId } });
    expect(row.balance).toBe(10_000_000_000n);
    const [raw] = await gw.db.prisma.$queryRaw<{ balance: bigint | number }[]>`SELECT balance FROM "Team" WHERE id = ${team.teamId}`;
    expect(BigInt(raw!.balance)).toBe(10_000_000_000n);

    const response = await gw.gql(`{ balance { balance currency isSubAccount } viewer { team { balance } } }`, {}, team.mainKey);
    expect(response.errors).toBeUndefined();
    expect(response.data.balance).toEqual({ balance: TEN_BILLION, currency: "USD", isSubAccount: false });
    expect(response.data.viewer.team.balance).toBe(TEN_BILLION);

    // The raw JSON carries the integer itself, not a string or a float in exponent form.
    const http = await fetch(`${gw.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${team.mainKey}` },
      body: JSON.stringify({ query: `{ balance { balance } }` }),
    });
    expect(await http.text()).toContain(`"balance":${TEN_BILLION}}`);
  });

  it("a creditLimit of 10^10 cents round-trips through createSubAccount and subAccount, and totalSpent of 10^10 reads back", async () => {
    const created = await gw.gql(
      `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id creditLimit totalSpent } } }`,
      { input: { name: "Big spender", creditLimit: TEN_BILLION } },
      team.mainKey,
    );
    expect(created.errors).toBeUndefined();
    const { subAccount, apiKey } = created.data.createSubAccount;
    expect(subAccount.creditLimit).toBe(TEN_BILLION);
    expect(subAccount.totalSpent).toBe(0);

    const stored = await gw.db.prisma.account.findUniqueOrThrow({ where: { id: subAccount.id } });
    expect(stored.creditLimit).toBe(10_000_000_000n);

    const read = await gw.gql(`query($id: ID!) { subAccount(id: $id) { creditLimit } }`, { id: subAccount.id }, team.mainKey);
    expect(read.data.subAccount.creditLimit).toBe(TEN_BILLION);

    // A lifetime totalSpent of 10^10 (set directly: charging that much is not this test's subject).
    await gw.db.prisma.account.update({ where: { id: subAccount.id }, data: { totalSpent: 10_000_000_000n } });
    const views = await gw.gql(
      `query($id: ID!) { subAccount(id: $id) { totalSpent creditLimit } subAccountBalance(id: $id) { balance totalSpent creditLimit remainingCredit } }`,
      { id: subAccount.id },
      team.mainKey,
    );
    expect(views.errors).toBeUndefined();
    expect(views.data.subAccount).toEqual({ totalSpent: TEN_BILLION, creditLimit: TEN_BILLION });
    expect(views.data.subAccountBalance).toEqual({ balance: TEN_BILLION, totalSpent: TEN_BILLION, creditLimit: TEN_BILLION, remainingCredit: 0 });

    const own = await gw.gql(`{ balance { balance totalSpent creditLimit isSubAccount } }`, {}, apiKey);
    expect(own.data.balance).toEqual({ balance: TEN_BILLION, totalSpent: TEN_BILLION, creditLimit: TEN_BILLION, isSubAccount: true });
  });

  it("updateSubAccount accepts a creditLimit above 10^10 and returns it unchanged", async () => {
    const created = await gw.gql(`mutation { createSubAccount(input: { name: "Raised" }) { subAccount { id creditLimit } } }`, {}, team.mainKey);
    const id = created.data.createSubAccount.subAccount.id;
    expect(created.data.createSubAccount.subAccount.creditLimit).toBeNull();
    const updated = await gw.gql(
      `mutation($id: ID!, $limit: Cents) { updateSubAccount(id: $id, input: { creditLimit: $limit }) { creditLimit } }`,
      { id, limit: 3 * TEN_BILLION },
      team.mainKey,
    );
    expect(updated.errors).toBeUndefined();
    expect(updated.data.updateSubAccount.creditLimit).toBe(3 * TEN_BILLION);
    expect((await gw.db.prisma.account.findUniqueOrThrow({ where: { id } })).creditLimit).toBe(30_000_000_000n);
  });
});
