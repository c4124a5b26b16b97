import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyError, startGateway, type GraphQLResponse, type TestGateway } from "./helpers/gateway.ts";
import { parseDateTime } from "../src/domain/validation.ts";

/**
 * Every bad input is refused over real HTTP with 400 invalid_request naming the
 * field at fault (extensions.details.field), and leaves the database exactly as
 * it was. No response leaks a stack trace, SQL or the ORM.
 */

const CREATE = `mutation Create($input: CreateSubAccountInput!) {
  createSubAccount(input: $input) { apiKey subAccount { id name externalId creditLimit metadata } }
}`;
const UPDATE = `mutation Update($id: ID!, $input: UpdateSubAccountInput!) {
  updateSubAccount(id: $id, input: $input) { id name externalId status creditLimit metadata }
}`;
const GET = `query Get($id: ID!) { subAccount(id: $id) { id name } }`;
const BALANCE_OF = `query BalanceOf($id: ID!) { subAccountBalance(id: $id) { balance totalSpent } }`;
const DEACTIVATE = `mutation Deactivate($id: ID!) { deactivateSubAccount(id: $id) { keysRevoked } }`;
const REVOKE = `mutation Revoke($subAccountId: ID!, $apiKeyId: ID!) {
  revokeSubAccountApiKey(subAccountId: $subAccountId, apiKeyId: $apiKeyId) { id revokedAt }
}`;
const CREATE_KEY = `mutation CreateKey($subAccountId: ID!) { createSubAccountApiKey(subAccountId: $subAccountId) { key } }`;

const OVER_16KB = { blob: "x".repeat(16 * 1024) };
/** JSON.stringify({ blob: "..." }) is the string plus 11 bytes: exactly 16384 bytes. */
const EXACTLY_16KB = { blob: "x".repeat(16 * 1024 - 11) };

/** The create-time bad values: [what, input, the field named in details]. */
const BAD_CREATE: [string, Record<string, unknown>, string][] = [
  ["an empty name", { name: "" }, "input.name"],
  ["a name of spaces only", { name: "   " }, "input.name"],
  ["a name of 201 characters after trimming", { name: `  ${"n".repeat(201)}  ` }, "input.name"],
  ["no name at all", {}, "input.name"],
  ["an externalId of 256 characters", { name: "Client", externalId: "e".repeat(256) }, "input.externalId"],
  ["a negative creditLimit", { name: "Client", creditLimit: -1 }, "input.creditLimit"],
  ["a fractional creditLimit", { name: "Client", creditLimit: 1.5 }, "input.creditLimit"],
  ["a creditLimit sent as a string", { name: "Client", creditLimit: "100" }, "input.creditLimit"],
  ["a creditLimit of 2^53 (not exactly representable)", { name: "Client", creditLimit: 2 ** 53 }, "input.creditLimit"],
  ["metadata that is an array", { name: "Client", metadata: [{ plan: "pro" }] }, "input.metadata"],
  ["metadata that is a string", { name: "Client", metadata: "plan=pro" }, "input.metadata"],
  ["metadata over 16 KB", { name: "Client", metadata: OVER_16KB }, "input.metadata"],
  ["an unknown input field", { name: "Client", nickname: "ABC" }, "input.nickname"],
];

/** The update-time bad values; each is also tried together with a valid change. */
const BAD_UPDATE: [string, Record<string, unknown>, string][] = [
  ["an empty name", { name: "" }, "input.name"],
  ["a name of spaces only", { name: "   " }, "input.name"],
  ["a name of 201 characters", { name: "n".repeat(201) }, "input.name"],
  ["a null name", { name: null }, "input.name"],
  ["an externalId of 256 characters", { externalId: "e".repeat(256) }, "input.externalId"],
  ["a negative creditLimit", { creditLimit: -1 }, "input.creditLimit"],
  ["a fractional creditLimit", { creditLimit: 1.5 }, "input.creditLimit"],
  ["a creditLimit sent as a string", { creditLimit: "100" }, "input.creditLimit"],
  ["a creditLimit of 2^53", { creditLimit: 2 ** 53 }, "input.creditLimit"],
  ["metadata that is an array", { metadata: ["pro"] }, "input.metadata"],
  ["metadata that is a string", { metadata: "pro" }, "input.metadata"],
  ["metadata over 16 KB", { metadata: OVER_16KB }, "input.metadata"],
  ["a null status", { status: null }, "input.status"],
  ["an unknown status", { status: "bogus" }, "input.status"],
  ["an unknown input field", { nickname: "ABC" }, "input.nickname"],
];

const MALFORMED_IDS: [string, string][] = [
  ["an empty id", ""],
  ["an id of 65 characters", "c".repeat(65)],
  ["an id containing a space", "cm abc123"],
  ["an id containing a double quote", 'cm"abc123'],
  ["an id containing a single quote", "cm'abc' OR '1'='1"],
];

function expectNoLeak(response: GraphQLResponse): void {
  const text = JSON.stringify(response);
  expect(text).not.toContain("at /");
  expect(text).not.toMatch(/\bSELECT\b/i);
  expect(text).not.toMatch(/\b(INSERT|UPDATE)\s+(INTO\s+)?["`]?\w+["`]?\s/);
  expect(text).not.toMatch(/prisma/i);
  expect(text).not.toMatch(/sqlite/i);
}

/** 400, one error, invalid_request, details naming `field`, nothing leaked. */
function expectInvalid(response: GraphQLResponse, field: string): void {
  expectNoLeak(response);
  const error = onlyError(response);
  expect({ status: response.status, code: error.extensions.code, field: error.extensions.details?.field }).toEqual({
    status: 400,
    code: "invalid_request",
    field,
  });
  expect(error.message.length).toBeGreaterThan(10);
}

describe("invalid input is refused with 400 invalid_request and changes nothing", () => {
  let gw: TestGateway;
  let mainKey: string;
  let teamId: string;
  let target: { id: string; key: string; keyId: string };

  const ORIGINAL = { name: "Original client", externalId: "orig-1", creditLimit: 5000, metadata: { plan: "basic" } };

  /** Everything a bad request could touch: row counts, the team, and the target sub-account with its keys. */
  async function snapshot() {
    const prisma = gw.db.prisma;
    const [accounts, apiKeys, ledger, team, subAccount, keys] = await Promise.all([
      prisma.account.count(),
      prisma.apiKey.count(),
      prisma.ledgerEntry.count(),
      prisma.team.findUniqueOrThrow({ where: { id: teamId } }),
      prisma.account.findUniqueOrThrow({ where: { id: target.id } }),
      prisma.apiKey.findMany({ where: { accountId: target.id }, orderBy: { id: "asc" }, select: { id: true, revokedAt: true, keyHash: true } }),
    ]);
    return { accounts, apiKeys, ledger, team, subAccount, keys };
  }

  /** Runs `request`, expects it refused naming `field`, and the database unchanged. */
  async function refusedAndUnchanged(request: () => Promise<GraphQLResponse>, field: string): Promise<void> {
    const before = await snapshot();
    const response = await request();
    expectInvalid(response, field);
    expect(await snapshot()).toEqual(before);
  }

  beforeAll(async () => {
    gw = await startGateway();
    ({ mainKey, teamId } = await gw.createTeam({ balance: 100_000 }));
    const created = await gw.gql(`${CREATE}`, { input: ORIGINAL }, mainKey);
    expect(created.errors).toBeUndefined();
    const id = created.data.createSubAccount.subAccount.id as string;
    const key = await gw.db.prisma.apiKey.findFirstOrThrow({ where: { accountId: id } });
    target = { id, key: created.data.createSubAccount.apiKey, keyId: key.id };
  });
  afterAll(async () => gw?.close());

  describe("createSubAccount", () => {
    it.each(BAD_CREATE)("refuses %s", async (_what, input, field) => {
      await refusedAndUnchanged(() => gw.gql(CREATE, { input }, mainKey), field);
    });

    it.each([
      ["creditLimit as a string literal", `{ name: "Client", creditLimit: "100" }`, "input.creditLimit"],
      ["a negative creditLimit literal", `{ name: "Client", creditLimit: -1 }`, "input.creditLimit"],
      ["metadata as a list literal", `{ name: "Client", metadata: [1, 2] }`, "input.metadata"],
      ["metadata as a string literal", `{ name: "Client", metadata: "pro" }`, "input.metadata"],
      ["an unknown field in the literal", `{ name: "Client", nickname: "ABC" }`, "input.nickname"],
      ["an empty name literal", `{ name: "   " }`, "input.name"],
    ])("refuses %s written inline in the query", async (_what, literal, field) => {
      await refusedAndUnchanged(() => gw.gql(`mutation { createSubAccount(input: ${literal}) { apiKey } }`, {}, mainKey), field);
    });

    it("accepts a name of 200 characters inside surrounding spaces and stores it trimmed", async () => {
      const name = "N".repeat(200);
      const response = await gw.gql(CREATE, { input: { name: `   ${name}\t ` } }, mainKey);
      expect(response.status).toBe(200);
      expect(response.errors).toBeUndefined();
      expect(response.data.createSubAccount.subAccount.name).toBe(name);
      const row = await gw.db.prisma.account.findUniqueOrThrow({ where: { id: response.data.createSubAccount.subAccount.id } });
      expect(row.name).toBe(name);
    });

    it("counts characters as a person does (code points): 200 emoji make a valid name, 201 do not, nor 256 in an externalId", async () => {
      const emoji = (count: number) => "\u{1F680}".repeat(count); // two UTF-16 units each
      const accepted = await gw.gql(CREATE, { input: { name: emoji(200), externalId: emoji(255) } }, mainKey);
      expect(accepted.errors).toBeUndefined();
      expect(accepted.data.createSubAccount.subAccount.name).toBe(emoji(200));
      await refusedAndUnchanged(() => gw.gql(CREATE, { input: { name: emoji(201) } }, mainKey), "input.name");
      await refusedAndUnchanged(() => gw.gql(CREATE, { input: { name: "Client", externalId: emoji(256) } }, mainKey), "input.externalId");
      const rest = await fetch(`${gw.url}/v1/sub-accounts`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${mainKey}` },
        body: JSON.stringify({ name: emoji(200) }),
      });
      expect(rest.status).toBe(201);
    });

    it("accepts the largest values of each limit: externalId of 255, creditLimit 2^53-1, metadata of exactly 16 KB", async () => {
      const response = await gw.gql(
        CREATE,
        { input: { name: "At the limits", externalId: "e".repeat(255), creditLimit: Number.MAX_SAFE_INTEGER, metadata: EXACTLY_16KB } },
        mainKey,
      );
      expect(response.errors).toBeUndefined();
      expect(response.data.createSubAccount.subAccount).toMatchObject({
        externalId: "e".repeat(255),
        creditLimit: Number.MAX_SAFE_INTEGER,
        metadata: EXACTLY_16KB,
      });
    });
  });

  describe("updateSubAccount", () => {
    it.each(BAD_UPDATE)("refuses %s", async (_what, input, field) => {
      await refusedAndUnchanged(() => gw.gql(UPDATE, { id: target.id, input }, mainKey), field);
    });

    it.each(BAD_UPDATE)("refuses %s sent together with valid changes, applying none of them", async (_what, input, field) => {
      const valid = { name: "Renamed", externalId: "changed", creditLimit: 1, metadata: { plan: "changed" }, status: "INACTIVE" };
      const mixed = { ...valid, ...input };
      await refusedAndUnchanged(() => gw.gql(UPDATE, { id: target.id, input: mixed }, mainKey), field);
    });

    it("leaves the sub-account usable after refused updates: same values over the API, and its key still authenticates", async () => {
      const reread = await gw.gql(
        `query($id: ID!) { subAccount(id: $id) { name externalId status creditLimit metadata } }`,
        { id: target.id },
        mainKey,
      );
      expect(reread.data.subAccount).toEqual({ ...ORIGINAL, status: "ACTIVE" });
      const own = await gw.gql(`{ balance { isSubAccount creditLimit } }`, {}, target.key);
      expect(own.status).toBe(200);
      expect(own.data.balance).toEqual({ isSubAccount: true, creditLimit: 5000 });
    });
  });

  describe("malformed ids", () => {
    it.each(MALFORMED_IDS)("subAccount refuses %s", async (_what, id) => {
      await refusedAndUnchanged(() => gw.gql(GET, { id }, mainKey), "id");
    });

    it.each(MALFORMED_IDS)("subAccountBalance refuses %s", async (_what, id) => {
      await refusedAndUnchanged(() => gw.gql(BALANCE_OF, { id }, mainKey), "id");
    });

    it.each(MALFORMED_IDS)("updateSubAccount refuses %s", async (_what, id) => {
      await refusedAndUnchanged(() => gw.gql(UPDATE, { id, input: { name: "Renamed" } }, mainKey), "id");
    });

    it.each(MALFORMED_IDS)("deactivateSubAccount refuses %s", async (_what, id) => {
      await refusedAndUnchanged(() => gw.gql(DEACTIVATE, { id }, mainKey), "id");
    });

    it.each(MALFORMED_IDS)("revokeSubAccountApiKey refuses %s as subAccountId", async (_what, id) => {
      await refusedAndUnchanged(() => gw.gql(REVOKE, { subAccountId: id, apiKeyId: target.keyId }, mainKey), "subAccountId");
    });

    it.each(MALFORMED_IDS)("revokeSubAccountApiKey refuses %s as apiKeyId", async (_what, id) => {
      await refusedAndUnchanged(() => gw.gql(REVOKE, { subAccountId: target.id, apiKeyId: id }, mainKey), "apiKeyId");
    });

    it.each(MALFORMED_IDS)("createSubAccountApiKey refuses %s as subAccountId", async (_what, id) => {
      await refusedAndUnchanged(() => gw.gql(CREATE_KEY, { subAccountId: id }, mainKey), "subAccountId");
    });

    it("the target's key still works after all of the above", async () => {
      const own = await gw.gql(`{ viewer { account { id } } }`, {}, target.key);
      expect(own.data.viewer.account.id).toBe(target.id);
    });
  });

  describe("malformed GraphQL", () => {
    it("a syntax error is 400 invalid_request and runs nothing", async () => {
      const before = await snapshot();
      const response = await gw.gql(`mutation { createSubAccount(input: { name: "Half" }) { apiKey `, {}, mainKey);
      expectNoLeak(response);
      const error = onlyError(response);
      expect({ status: response.status, code: error.extensions.code }).toEqual({ status: 400, code: "invalid_request" });
      expect(error.message).toMatch(/Syntax Error/);
      expect(await snapshot()).toEqual(before);
    });

    it("selecting an unknown field is 400 invalid_request naming it, and runs nothing", async () => {
      await refusedAndUnchanged(
        () => gw.gql(`mutation { createSubAccount(input: { name: "Never" }) { apiKey password } }`, {}, mainKey),
        "password",
      );
    });

    it("an unknown field in a query is 400 invalid_request naming it", async () => {
      expectInvalid(await gw.gql(`{ balance { balance secretBalance } }`, {}, mainKey), "secretBalance");
    });

    it("an unknown argument is 400 invalid_request naming it", async () => {
      expectInvalid(await gw.gql(`{ subAccounts(first: 5, orderBy: "name") { totalCount } }`, {}, mainKey), "orderBy");
    });

    it("a missing required variable is 400 invalid_request naming it", async () => {
      expectInvalid(await gw.gql(GET, {}, mainKey), "id");
    });

    it("a request body over MAX_BODY_BYTES (1 MiB by default) is 400 invalid_request and runs nothing", async () => {
      const before = await snapshot();
      const response = await gw.gql(CREATE, { input: { name: "Huge", metadata: { blob: "x".repeat(1_100_000) } } }, mainKey);
      expectNoLeak(response);
      const error = onlyError(response);
      expect({ status: response.status, code: error.extensions.code }).toEqual({ status: 400, code: "invalid_request" });
      expect(error.message).toMatch(/too large/i);
      expect(await snapshot()).toEqual(before);
    });
  });
});

describe("date-times: ISO-8601 read strictly, naming one instant whatever the server's time zone, in the years 0001 to 9999", () => {
  let gw: TestGateway;
  let mainKey: string;
  let teamId: string;
  beforeAll(async () => {
    gw = await startGateway();
    ({ mainKey, teamId } = await gw.createTeam());
  });
  afterAll(() => gw?.close());

  const YEAR_10000 = ["+010000-01-01T00:00:00.000Z", 253_402_300_800_000];
  const keyCount = () => gw.db.prisma.apiKey.count({ where: { account: { teamId } } });

  it("a key expiring in the year 10000, over REST (a string or epoch milliseconds) and GraphQL: 400 naming expiresAt, no key", async () => {
    const before = await keyCount();
    for (const expiresAt of YEAR_10000) {
      const response = await fetch(`${gw.url}/v1/api-keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${mainKey}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "Far", expiresAt }),
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ code: "invalid_request", message: expect.stringMatching(/expiresAt.*0001 to 9999/) });
    }
    const graphql = await gw.gql(`mutation($input: CreateApiKeyInput) { createApiKey(input: $input) { key } }`, { input: { expiresAt: YEAR_10000[0] } }, mainKey);
    expect(onlyError(graphql).extensions).toMatchObject({ code: "invalid_request", details: { field: "input.expiresAt" } });
    expect(await keyCount()).toBe(before);
    // The last second of 9999 is still a date every store keeps.
    const edge = await gw.gql(`mutation($input: CreateApiKeyInput) { createApiKey(input: $input) { apiKey { expiresAt } } }`, { input: { expiresAt: "9999-12-31T23:59:59.999Z" } }, mainKey);
    expect(edge.data.createApiKey.apiKey.expiresAt).toBe("9999-12-31T23:59:59.999Z");
  });

  it("message filters and a spend report reaching the year 10000: 400 naming the argument", async () => {
    const messages = await gw.gql(`query($since: DateTime) { messages(since: $since) { edges { node { id } } } }`, { since: YEAR_10000[0] }, mainKey);
    expect(onlyError(messages).extensions).toMatchObject({ code: "invalid_request", details: { field: "since" } });
    const report = await gw.gql(`query($from: DateTime!, $to: DateTime!) { spendReport(from: $from, to: $to) { total { amount } } }`, { from: "9999-12-31T00:00:00Z", to: "+010000-01-01T00:00:00Z" }, mainKey);
    expect(onlyError(report).extensions).toMatchObject({ code: "invalid_request", details: { field: "to" } });
  });

  it("parseDateTime: dates, times, fractions and offsets; nothing JavaScript's lenient parser would make up", () => {
    const read = (text: string) => parseDateTime(text)?.toISOString() ?? null;
    expect(read("2026-11-01")).toBe("2026-11-01T00:00:00.000Z");
    expect(read("2026-11-01T10:30Z")).toBe("2026-11-01T10:30:00.000Z");
    expect(read("2026-11-01T10:30:00+01:00")).toBe("2026-11-01T09:30:00.000Z");
    expect(read("2026-11-01T10:30:00-0530")).toBe("2026-11-01T16:00:00.000Z");
    expect(read("2026-11-01t10:30:00.123456z")).toBe("2026-11-01T10:30:00.123Z");
    const zone = process.env.TZ;
    process.env.TZ = "Pacific/Auckland"; // Node applies it at once; JavaScript's own parser would read 10:30 there
    try {
      expect(read("2026-11-01 10:30")).toBe("2026-11-01T10:30:00.000Z"); // no offset: UTC, never the server's zone
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
    expect(read("2024-02-29")).toBe("2024-02-29T00:00:00.000Z");
    expect(read("0050-06-01")).toBe("0050-06-01T00:00:00.000Z"); // not 1950
    expect(read("+010000-01-01T00:00:00Z")).toBe("+010000-01-01T00:00:00.000Z"); // parsed, so that its range is named
    for (const bad of ["foo 1", "1", "2026", "Nov 1 2026", "2026-02-29", "2026-02-30", "2026-13-01", "2026-11-01T24:00:00Z", "2026-11-01T10:60Z", "2026-11-01T10:30:60Z", "2026-11-01T10:30:00+24:00", "2026-11-01T10:30:00Z junk", "+275761-01-01", ""]) {
      expect(read(bad), bad).toBeNull();
    }
  });

  const createKeyOverRest = (expiresAt: unknown) =>
    fetch(`${gw.url}/v1/api-keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${mainKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "Dated", expiresAt }),
    });

  it("REST: an impossible or made-up expiresAt (Feb 30th, 'foo 1', true, [2099]) is 400 naming expiresAt, and no key is made", async () => {
    const before = await keyCount();
    for (const expiresAt of ["2099-02-30T00:00:00Z", "foo 1", "2099-01-01T25:00:00Z", true, [2099], { year: 2099 }, 1.5]) {
      const response = await createKeyOverRest(expiresAt);
      expect(response.status, JSON.stringify(expiresAt)).toBe(400);
      expect(await response.json()).toMatchObject({ code: "invalid_request", message: expect.stringMatching(/expiresAt.*ISO-8601/) });
    }
    expect(await keyCount()).toBe(before);
  });

  it("REST (answering epoch milliseconds) and GraphQL (answering UTC): an offset is honoured; epoch milliseconds are taken over REST", async () => {
    const withOffset = await createKeyOverRest("2099-01-02T04:04:05.678+01:00");
    expect(withOffset.status).toBe(201);
    expect((await withOffset.json()).apiKey.expiresAt).toBe(Date.parse("2099-01-02T03:04:05.678Z"));
    const epoch = await createKeyOverRest(Date.parse("2099-03-04T05:06:07.000Z"));
    expect((await epoch.json()).apiKey.expiresAt).toBe(Date.parse("2099-03-04T05:06:07.000Z"));
    const graphql = await gw.gql(`mutation { createApiKey(input: { expiresAt: "2099-05-06T07:08:09-02:00" }) { apiKey { expiresAt } } }`, {}, mainKey);
    expect(graphql.data.createApiKey.apiKey.expiresAt).toBe("2099-05-06T09:08:09.000Z");
  });

  it("GraphQL and REST message filters: Feb 30th is 400 invalid_request, never read as March 2nd", async () => {
    const variable = await gw.gql(`query($since: DateTime) { messages(since: $since) { edges { node { id } } } }`, { since: "2026-02-30T00:00:00Z" }, mainKey);
    expect(variable.status).toBe(400);
    expect(onlyError(variable).extensions.code).toBe("invalid_request");
    expect(onlyError(variable).message).toMatch(/ISO-8601/);
    const literal = await gw.gql(`{ messages(since: "foo 1") { edges { node { id } } } }`, {}, mainKey);
    expect(literal.status).toBe(400);
    expect(onlyError(literal).extensions.code).toBe("invalid_request");
    expect(onlyError(literal).message).toMatch(/ISO-8601/);
    const rest = await fetch(`${gw.url}/v1/messages?since=2026-02-30`, { headers: { authorization: `Bearer ${mainKey}` } });
    expect(rest.status).toBe(400);
    expect(await rest.json()).toMatchObject({ code: "invalid_request", message: expect.stringMatching(/since.*ISO-8601/) });
  });
});
