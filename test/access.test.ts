import { TEST_PROVIDER } from "./helpers/databases.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainError } from "../src/domain/errors.ts";
import { onlyError, startGateway, type GraphQLResponse, type TestGateway } from "./helpers/gateway.ts";

const CREATE = `mutation($input: CreateSubAccountInput!) {
  createSubAccount(input: $input) { apiKey subAccount { id apiKeys { id } } }
}`;

const ONE_MAIN_ACCOUNT_MESSAGE =
  "Team already has a main account. Create a sub-account instead, or create a new team for another main account.";

/** Every management operation, each with the variables it needs given a sub-account id and one of its key ids. */
function managementOperations(subAccountId: string, apiKeyId: string) {
  return {
    subAccount: { query: `query($id: ID!) { subAccount(id: $id) { id name } }`, variables: { id: subAccountId } },
    subAccounts: { query: `{ subAccounts(first: 10) { totalCount edges { node { id } } } }`, variables: {} },
    subAccountBalance: { query: `query($id: ID!) { subAccountBalance(id: $id) { balance totalSpent } }`, variables: { id: subAccountId } },
    createSubAccount: { query: CREATE, variables: { input: { name: "Nested" } } },
    updateSubAccount: {
      query: `mutation($id: ID!) { updateSubAccount(id: $id, input: { name: "Renamed", creditLimit: 5 }) { id name } }`,
      variables: { id: subAccountId },
    },
    deactivateSubAccount: { query: `mutation($id: ID!) { deactivateSubAccount(id: $id) { keysRevoked } }`, variables: { id: subAccountId } },
    createSubAccountApiKey: {
      query: `mutation($id: ID!) { createSubAccountApiKey(subAccountId: $id, input: { name: "extra" }) { key apiKey { id } } }`,
      variables: { id: subAccountId },
    },
    revokeSubAccountApiKey: {
      query: `mutation($id: ID!, $keyId: ID!) { revokeSubAccountApiKey(subAccountId: $id, apiKeyId: $keyId) { id revokedAt } }`,
      variables: { id: subAccountId, keyId: apiKeyId },
    },
  };
}

function expectError(response: GraphQLResponse, status: number, code: string) {
  const error = onlyError(response);
  expect({ status: response.status, code: error.extensions.code }).toEqual({ status, code });
  return error;
}

describe("access control", () => {
  let gw: TestGateway;
  let teamA: Awaited<ReturnType<TestGateway["createTeam"]>>;
  let teamB: Awaited<ReturnType<TestGateway["createTeam"]>>;
  let subA: { id: string; key: string; keyId: string };
  let subB: { id: string; key: string; keyId: string };

  async function createSub(mainKey: string, name: string) {
    const created = await gw.gql(CREATE, { input: { name, creditLimit: 1000 } }, mainKey);
    expect(created.errors).toBeUndefined();
    const { apiKey, subAccount } = created.data.createSubAccount;
    return { id: subAccount.id as string, key: apiKey as string, keyId: subAccount.apiKeys[0].id as string };
  }

  /** Everything a test might change about a sub-account and its keys, straight from the database. */
  async function snapshot(accountId: string) {
    const account = await gw.db.prisma.account.findUniqueOrThrow({
      where: { id: accountId },
      include: { apiKeys: { orderBy: { id: "asc" }, select: { id: true, revokedAt: true, name: true } } },
    });
    return JSON.stringify(account, (_k, v) => (typeof v === "bigint" ? String(v) : v));
  }

  beforeAll(async () => {
    gw = await startGateway();
    teamA = await gw.createTeam({ name: "Team A", balance: 10_000 });
    teamB = await gw.createTeam({ name: "Team B", balance: 20_000 });
    subA = await createSub(teamA.mainKey, "A's client");
    subB = await createSub(teamB.mainKey, "B's client");
  });
  afterAll(async () => gw.close());

  describe("a sub-account key is forbidden every management operation", () => {
    const names = Object.keys(managementOperations("x", "y"));
    it.each(names)("%s gives 403 forbidden and changes nothing", async (name) => {
      const before = await snapshot(subA.id);
      const countBefore = await gw.db.prisma.account.count({ where: { teamId: teamA.teamId } });
      const op = managementOperations(subA.id, subA.keyId)[name as keyof ReturnType<typeof managementOperations>];
      const response = await gw.gql(op.query, op.variables, subA.key);
      expectError(response, 403, "forbidden");
      expect(JSON.stringify(response.data ?? null)).not.toContain(subA.id);
      expect(await snapshot(subA.id)).toBe(before);
      expect(await gw.db.prisma.account.count({ where: { teamId: teamA.teamId } })).toBe(countBefore);
    });
  });

  describe("a main key cannot reach another team's sub-account", () => {
    const byId = Object.keys(managementOperations("x", "y")).filter((name) => !["subAccounts", "createSubAccount"].includes(name));
    it.each(byId)("%s with team B's id gives 404 not_found and leaves team B's data unchanged", async (name) => {
      const before = await snapshot(subB.id);
      const op = managementOperations(subB.id, subB.keyId)[name as keyof ReturnType<typeof managementOperations>];
      const response = await gw.gql(op.query, op.variables, teamA.mainKey);
      const error = expectError(response, 404, "not_found");
      expect(JSON.stringify(response.data ?? null)).not.toContain("B's client");
      expect(error.message).not.toContain("B's client");
      expect(await snapshot(subB.id)).toBe(before);
      // Team B's key still works: nothing was revoked or suspended.
      const own = await gw.gql(`{ balance { balance isSubAccount } }`, {}, subB.key);
      expect(own.data.balance).toEqual({ balance: 20_000, isSubAccount: true });
    });

    it("revoking team B's key id under team A's own sub-account gives not_found and the key still works", async () => {
      const response = await gw.gql(
        `mutation($id: ID!, $keyId: ID!) { revokeSubAccountApiKey(subAccountId: $id, apiKeyId: $keyId) { id } }`,
        { id: subA.id, keyId: subB.keyId },
        teamA.mainKey,
      );
      expectError(response, 404, "not_found");
      const own = await gw.gql(`{ viewer { account { id } } }`, {}, subB.key);
      expect(own.data.viewer.account.id).toBe(subB.id);
    });

    it("team B's sub-accounts do not appear in team A's list", async () => {
      const response = await gw.gql(`{ subAccounts(first: 100) { totalCount edges { node { id } } } }`, {}, teamA.mainKey);
      expect(response.errors).toBeUndefined();
      const ids = response.data.subAccounts.edges.map((edge: { node: { id: string } }) => edge.node.id);
      expect(ids).toContain(subA.id);
      expect(ids).not.toContain(subB.id);
      expect(response.data.subAccounts.totalCount).toBe(ids.length);
    });
  });

  describe("authentication", () => {
    const BALANCE = `{ balance { balance } }`;

    it("an unknown key gives 401 unauthorized", async () => {
      const unknown = `zv_live_${"A".repeat(40)}`;
      expectError(await gw.gql(BALANCE, {}, unknown), 401, "unauthorized");
      expectError(await gw.gql(BALANCE, {}, `zv_live_sub_${"b".repeat(40)}`), 401, "unauthorized");
    });

    it("a malformed key gives 401 unauthorized", async () => {
      for (const key of ["not-a-key", "zv_live_short", `zv_prod_${"a".repeat(40)}`, `${subA.key}!`]) {
        expectError(await gw.gql(BALANCE, {}, key), 401, "unauthorized");
      }
    });

    it("a non-Bearer Authorization header gives 401 unauthorized", async () => {
      const response = await fetch(`${gw.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", authorization: `Basic ${subA.key}` },
        body: JSON.stringify({ query: BALANCE }),
      });
      const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
      expect(response.status).toBe(401);
      expect(body.errors[0]!.extensions.code).toBe("unauthorized");
    });

    it("no Authorization header on balance gives 401 unauthorized", async () => {
      const response = await gw.gql(BALANCE);
      expectError(response, 401, "unauthorized");
      expect(response.data?.balance ?? null).toBeNull();
    });

    it("a key revoked with revokeSubAccountApiKey gives 401 unauthorized at once", async () => {
      const sub = await createSub(teamA.mainKey, "to revoke");
      expect((await gw.gql(BALANCE, {}, sub.key)).status).toBe(200);
      const revoked = await gw.gql(
        `mutation($id: ID!, $keyId: ID!) { revokeSubAccountApiKey(subAccountId: $id, apiKeyId: $keyId) { id revokedAt } }`,
        { id: sub.id, keyId: sub.keyId },
        teamA.mainKey,
      );
      expect(revoked.errors).toBeUndefined();
      expect(revoked.data.revokeSubAccountApiKey.id).toBe(sub.keyId);
      expect(revoked.data.revokeSubAccountApiKey.revokedAt).not.toBeNull();
      expectError(await gw.gql(BALANCE, {}, sub.key), 401, "unauthorized");
    });
  });

  describe("one main account per team", () => {
    it("the service refuses a second main account with invalid_request and the fixed message", async () => {
      const attempt = gw.gateway.services.teams.createMainAccount(teamA.teamId, "x");
      await expect(attempt).rejects.toBeInstanceOf(DomainError);
      await expect(attempt).rejects.toMatchObject({ code: "invalid_request", message: ONE_MAIN_ACCOUNT_MESSAGE });
      expect(await gw.db.prisma.account.count({ where: { teamId: teamA.teamId, kind: "main" } })).toBe(1);
    });

    it("the database refuses a direct insert of a second main account (Account_one_main_per_team)", async () => {
      await expect(gw.db.prisma.account.create({ data: { teamId: teamB.teamId, kind: "main", name: "Second main" } })).rejects.toThrow();
      await expect(
        gw.db.prisma.$executeRaw`INSERT INTO "Account" ("id", "teamId", "kind", "name", "updatedAt") VALUES ('second_main', ${teamB.teamId}, 'main', 'Second main', CURRENT_TIMESTAMP)`,
      ).rejects.toThrow(/UNIQUE constraint failed|Account_one_main_per_team|Unique constraint|duplicate key/i);
      expect(await gw.db.prisma.account.count({ where: { teamId: teamB.teamId, kind: "main" } })).toBe(1);
      // The index is the one the migration names.
      const indexes = await gw.db.prisma.$queryRawUnsafe<{ name: string }[]>(
        TEST_PROVIDER === "postgresql"
          ? `SELECT indexname AS name FROM pg_indexes WHERE indexname = 'Account_one_main_per_team'`
          : `SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'Account_one_main_per_team'`,
      );
      expect(indexes).toHaveLength(1);
      // A sub-account row for the same team is still accepted: the index only covers kind = 'main'.
      await gw.db.prisma.account.create({ data: { teamId: teamB.teamId, kind: "sub", name: "Direct sub" } });
    });
  });
});
