import Database from "better-sqlite3";
import http from "node:http";
import { connect } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { sqliteFile } from "../src/db/client.ts";
import { QUERY_LIMITS } from "../src/graphql/plugins/queryLimits.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { onlyError, startGateway, type GraphQLResponse, type TestGateway } from "./helpers/gateway.ts";
import { SEND, SPEND } from "./helpers/storm.ts";
import { subscribeSse, subscribeWs } from "./helpers/subscriptions.ts";

/** `depth` nested inline fragments: each counts as a level (graphql-armor does not flatten fragments). */
function nested(depth: number, inner: string): string {
  return depth === 0 ? inner : `... on Balance { ${nested(depth - 1, inner)} }`;
}

const FULL_PAGE = `subAccounts(first: 100) { totalCount edges { cursor node { id name externalId status totalSpent creditLimit metadata createdAt updatedAt
  apiKeys { id name keyPrefix environment permissions createdAt lastUsedAt revokedAt } balance { balance currency isSubAccount totalSpent creditLimit } } }
  pageInfo { hasNextPage endCursor hasPreviousPage startCursor } }`;

function expectLimit(response: GraphQLResponse, limit: keyof typeof QUERY_LIMITS) {
  expect(response.status).toBe(400);
  expect(response.data ?? null).toBeNull();
  const errors = response.errors ?? [];
  const error = errors.find((e) => e.extensions.details?.limit === limit);
  expect(error, `an error naming ${limit} among ${JSON.stringify(errors)}`).toBeDefined();
  expect(error!.extensions.code).toBe("invalid_request");
  expect(error!.extensions.details).toEqual({ limit, max: QUERY_LIMITS[limit] });
  expect(error!.message).toMatch(/exceeds a limit of this API/);
  expect(errors.every((e) => e.extensions.code === "invalid_request")).toBe(true);
}

describe("query limits (graphql-armor): refused before anything runs", () => {
  let gw: TestGateway;
  let mainKey: string;
  let teamId: string;

  beforeAll(async () => {
    gw = await startGateway();
    ({ mainKey, teamId } = await gw.createTeam({ balance: 100_000 }));
  });
  afterAll(() => gw?.close());

  const subAccountCount = () => gw.db.prisma.account.count({ where: { teamId, kind: "sub" } });

  it(`a document nested deeper than ${QUERY_LIMITS.maxDepth} levels is 400 invalid_request; one at the limit runs`, async () => {
    expectLimit(await gw.gql(`{ balance { ${nested(QUERY_LIMITS.maxDepth, "balance")} } }`, {}, mainKey), "maxDepth");
    // The classic introspection depth attack.
    const ofType = (n: number): string => (n === 0 ? "name" : `ofType { ${ofType(n - 1)} }`);
    expectLimit(await gw.gql(`{ __type(name: "Query") { fields { type { ${ofType(QUERY_LIMITS.maxDepth)} } } } }`, {}, mainKey), "maxDepth");
    const atLimit = await gw.gql(`{ balance { ${nested(QUERY_LIMITS.maxDepth - 2, "balance")} } }`, {}, mainKey);
    expect(atLimit.status).toBe(200);
    expect(atLimit.data.balance.balance).toBe(100_000);
  });

  it(`a mutation with more than ${QUERY_LIMITS.maxAliases} aliases is refused and writes nothing`, async () => {
    const before = await subAccountCount();
    const fields = Array.from({ length: QUERY_LIMITS.maxAliases + 1 }, (_, i) => `a${i}: createSubAccount(input: { name: "Alias ${i}" }) { apiKey }`);
    expectLimit(await gw.gql(`mutation { ${fields.join(" ")} }`, {}, mainKey), "maxAliases");
    expect(await subAccountCount()).toBe(before);
  });

  it("a send nested past the depth limit is refused and charges nothing", async () => {
    const deepSend = `mutation { sendMessage(input: { to: "+14155550100", text: "hi" }) { id ${"... on Message { ".repeat(QUERY_LIMITS.maxDepth)} cost ${"} ".repeat(QUERY_LIMITS.maxDepth)} } }`;
    expectLimit(await gw.gql(deepSend, {}, mainKey), "maxDepth");
    expect(await gw.db.prisma.message.count({ where: { account: { teamId } } })).toBe(0);
    expect(Number((await gw.db.prisma.team.findUniqueOrThrow({ where: { id: teamId } })).balance)).toBe(100_000);
  });

  it(`an operation costing more than ${QUERY_LIMITS.maxCost} is refused; the largest page of the API is not`, async () => {
    const onePage = await gw.gql(`{ ${FULL_PAGE} }`, {}, mainKey);
    expect(onePage.status).toBe(200);
    expectLimit(await gw.gql(`{ first: ${FULL_PAGE} second: ${FULL_PAGE} }`, {}, mainKey), "maxCost");
  });

  it(`a document of more than ${QUERY_LIMITS.maxTokens} tokens is refused while parsing`, async () => {
    const response = await gw.gql(`{ balance { ${"balance ".repeat(QUERY_LIMITS.maxTokens)} } }`, {}, mainKey);
    const error = onlyError(response);
    expect(response.status).toBe(400);
    expect(error.extensions).toMatchObject({ code: "invalid_request", details: { limit: "maxTokens", max: QUERY_LIMITS.maxTokens } });
  });

  it(`more than ${QUERY_LIMITS.maxDirectives} directives are refused`, async () => {
    expectLimit(await gw.gql(`{ balance { ${"balance @include(if: true) ".repeat(QUERY_LIMITS.maxDirectives + 1)} } }`, {}, mainKey), "maxDirectives");
  });

  it("the limits apply to subscriptions over graphql-ws and SSE as well", async () => {
    const deep = `subscription { spendUpdated { ${"... on SpendUpdate { ".repeat(QUERY_LIMITS.maxDepth)} amount ${"} ".repeat(QUERY_LIMITS.maxDepth)} } }`;
    const ws = await subscribeWs(gw.url, mainKey, deep);
    await ws.ended;
    expect(ws.errors.map((e) => e.extensions?.code)).toContain("invalid_request");
    expect(ws.errors.some((e) => /depth limit/.test(e.message))).toBe(true);
    ws.close();
    const sse = await subscribeSse(gw.url, mainKey, deep);
    await sse.ended;
    expect(sse.status).toBe(400);
    expect(sse.errors.map((e) => e.extensions?.code)).toContain("invalid_request");
    // An ordinary subscription is still served.
    const fine = await subscribeWs(gw.url, mainKey, SPEND);
    expect(fine.isEnded()).toBe(false);
    fine.close();
  });
});

/** Sends headers announcing (or streaming) a large body, then only part of it; resolves with the response once it arrives. */
function partialUpload(url: string, options: { chunked: boolean; declaredBytes: number; sendBytes: number; headers?: Record<string, string> }) {
  return new Promise<{ status: number; body: any; sentBytes: number }>((resolve, reject) => {
    let sentBytes = 0;
    const request = http.request(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        ...(options.chunked ? { "transfer-encoding": "chunked" } : { "content-length": String(options.declaredBytes) }),
        ...options.headers,
      },
    });
    request.on("error", reject);
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")), sentBytes });
        request.destroy();
      });
    });
    const chunk = Buffer.alloc(64 * 1024, "x");
    request.write('{"query":"mutation { createSubAccount(input: { name: \\"');
    const pump = () => {
      // Never more than `sendBytes`, and never the end of the body: only an early answer can settle this.
      while (sentBytes < options.sendBytes) {
        sentBytes += chunk.length;
        if (!request.write(chunk)) {
          request.once("drain", pump);
          return;
        }
      }
    };
    pump();
  });
}

describe("request size and time limits", () => {
  let gw: TestGateway;
  let mainKey: string;
  let teamId: string;
  const TEN_MB = 10 * 1024 * 1024;

  beforeAll(async () => {
    gw = await startGateway({ env: { REQUEST_TIMEOUT_MS: "1000" } });
    ({ mainKey, teamId } = await gw.createTeam());
  });
  afterAll(() => gw?.close());

  for (const path of ["/graphql", "/v1/sub-accounts"]) {
    it(`a 10 MB body to ${path} is refused on its Content-Length, answered though the client sent only 256 KB of it`, async () => {
      const answer = await partialUpload(`${gw.url}${path}`, { chunked: false, declaredBytes: TEN_MB, sendBytes: 256 * 1024, headers: { authorization: `Bearer ${mainKey}` } });
      expect(answer.status).toBe(400);
      const error = path === "/graphql" ? answer.body.errors[0].extensions : answer.body;
      expect(error).toMatchObject({ code: "invalid_request", details: { maxBytes: 1_048_576 } });
      expect(path === "/graphql" ? answer.body.errors[0].message : answer.body.message).toMatch(/too large: the limit is 1048576 bytes/);
    });

    it(`a chunked body to ${path} is cut off past MAX_BODY_BYTES and answered before the client ends it`, async () => {
      // 3 MB sent of a body that never ends: the server must answer on its own.
      const answer = await partialUpload(`${gw.url}${path}`, { chunked: true, declaredBytes: 0, sendBytes: 3 * 1024 * 1024, headers: { authorization: `Bearer ${mainKey}` } });
      expect(answer.status).toBe(400);
      const error = path === "/graphql" ? answer.body.errors[0].extensions : answer.body;
      expect(error).toMatchObject({ code: "invalid_request" });
    });
  }

  it("nothing was created by the refused uploads, and the server still serves", async () => {
    expect(await gw.db.prisma.account.count({ where: { teamId, kind: "sub" } })).toBe(0);
    expect((await gw.gql(`{ balance { balance } }`, {}, mainKey)).status).toBe(200);
  });

  it("subscriptions outlive REQUEST_TIMEOUT_MS on both transports", async () => {
    const { mainKey: key } = await gw.createTeam({ name: "Long-lived" });
    const created = await gw.gql(`mutation { createSubAccount(input: { name: "Listener" }) { apiKey } }`, {}, key);
    const subKey = created.data.createSubAccount.apiKey;
    const ws = await subscribeWs(gw.url, key, SPEND);
    const sse = await subscribeSse(gw.url, key, SPEND);
    // Three times the timeout, then a charge: both streams are still there to carry it.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect((await gw.gql(SEND, { input: { to: "+14155550100", text: "still listening" } }, subKey)).status).toBe(200);
    expect(await ws.waitFor(1)).toHaveLength(1);
    expect(await sse.waitFor(1)).toHaveLength(1);
    expect(ws.errors.concat(sse.errors)).toEqual([]);
    ws.close();
    sse.close();
  });

  it("a client that never finishes its headers (slowloris) is answered 408 and disconnected after REQUEST_TIMEOUT_MS", async () => {
    const port = Number(new URL(gw.url).port);
    const socket = connect(port, "127.0.0.1");
    let received = "";
    socket.on("data", (chunk) => (received += chunk.toString()));
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => {});
    socket.write("POST /graphql HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 408/);
  });
});

describe.runIf(TEST_PROVIDER === "postgresql")("execution timeout (PostgreSQL: a row lock holds the charge)", () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway({ env: { REQUEST_TIMEOUT_MS: "1000" } });
  });
  afterAll(() => gw?.close());

  it("a send stuck longer than REQUEST_TIMEOUT_MS is answered with a retryable internal_error, over GraphQL and REST", async () => {
    const { mainKey, teamId } = await gw.createTeam();
    const locker = new pg.Client({ connectionString: gw.databaseUrl });
    await locker.connect();
    try {
      await locker.query("BEGIN");
      await locker.query(`SELECT 1 FROM "Team" WHERE "id" = $1 FOR UPDATE`, [teamId]);
      const graphql = await gw.gql(SEND, { input: { to: "+14155550100", text: "stuck", idempotencyKey: "stuck-1" } }, mainKey);
      const error = onlyError(graphql);
      expect(graphql.status).toBe(500);
      expect(error.extensions).toMatchObject({ code: "internal_error", details: { retryable: true } });
      expect(error.message).toMatch(/took longer than 1000 ms/);
      const rest = await fetch(`${gw.url}/v1/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${mainKey}`, "content-type": "application/json" },
        body: JSON.stringify({ to: "+14155550100", text: "stuck", idempotencyKey: "stuck-2" }),
      });
      expect(rest.status).toBe(500);
      expect(await rest.json()).toMatchObject({ code: "internal_error", details: { retryable: true } });
    } finally {
      await locker.query("ROLLBACK");
      await locker.end();
    }
  });
});

describe(`execution timeout with several mutations in one document (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway({ env: { REQUEST_TIMEOUT_MS: "1000", RATE_LIMIT_RPS: "0" } });
  });
  afterAll(() => gw?.close());

  /** Holds every write to the team's charges until released: its row locked (PostgreSQL), the database's write lock (SQLite). */
  async function holdCharges(teamId: string): Promise<() => Promise<void>> {
    if (TEST_PROVIDER === "postgresql") {
      const locker = new pg.Client({ connectionString: gw.databaseUrl });
      await locker.connect();
      await locker.query("BEGIN");
      await locker.query(`SELECT 1 FROM "Team" WHERE "id" = $1 FOR UPDATE`, [teamId]);
      return async () => {
        await locker.query("ROLLBACK");
        await locker.end();
      };
    }
    const locker = new Database(sqliteFile(gw.databaseUrl));
    locker.exec("BEGIN IMMEDIATE");
    return async () => {
      locker.exec("ROLLBACK");
      locker.close();
    };
  }

  it("the first mutation stuck past the deadline: the answer comes at the deadline and the mutations after it are never started", async () => {
    const { mainKey, teamId } = await gw.createTeam();
    const TWO_SENDS = `mutation($first: SendMessageInput!, $second: SendMessageInput!) {
      first: sendMessage(input: $first) { id }
      second: sendMessage(input: $second) { id }
    }`;
    const release = await holdCharges(teamId);
    let answer: GraphQLResponse;
    try {
      answer = await gw.gql(TWO_SENDS, { first: { to: "+14155550100", text: "one", idempotencyKey: "first-of-two" }, second: { to: "+14155550100", text: "two", idempotencyKey: "second-of-two" } }, mainKey);
    } finally {
      await release();
    }
    expect(answer.status).toBe(500);
    expect(onlyError(answer).extensions).toMatchObject({ code: "internal_error", details: { retryable: true } });
    // The first charge goes through once the lock is free; the second is never started.
    await vi.waitFor(async () => expect(await gw.db.prisma.message.count({ where: { idempotencyKey: "first-of-two" } })).toBe(1), { timeout: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await gw.db.prisma.message.count({ where: { idempotencyKey: "second-of-two" } })).toBe(0);
  });

  it("a document of one mutation, answered in time, is charged once", async () => {
    const { mainKey } = await gw.createTeam();
    const answer = await gw.gql(SEND, { input: { to: "+14155550100", text: "alone", idempotencyKey: "alone-1" } }, mainKey);
    expect(answer.errors).toBeUndefined();
    expect(await gw.db.prisma.message.count({ where: { idempotencyKey: "alone-1" } })).toBe(1);
  });
});
