import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REDIS_TEST_URL, TEST_PROVIDER } from "./helpers/databases.ts";
import { createTestDatabase, startGateway, type TestGateway } from "./helpers/gateway.ts";
import { gqlAt, redisPrefix, startInstance, type Instance } from "./helpers/instances.ts";
import { SPEND } from "./helpers/storm.ts";
import { subscribeWs } from "./helpers/subscriptions.ts";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const BALANCE = `{ balance { balance } }`;

/** Tight limits, so that a handful of requests goes over: 2 per second plus a reserve of 3. */
const TIGHT = { RATE_LIMIT_RPS: "2", RATE_LIMIT_BURST: "3" };
/** More requests than one second's allowance and the reserve together. */
const OVER_ALLOWANCE = 12;

async function graphql(url: string, key: string | null, query = BALANCE) {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as any };
}

function expectRateLimitedGraphQL(response: Awaited<ReturnType<typeof graphql>>) {
  expect(response.status).toBe(429);
  const seconds = Number(response.retryAfter);
  expect(Number.isInteger(seconds) && seconds >= 1, `Retry-After ${response.retryAfter}`).toBe(true);
  expect(response.body.errors).toHaveLength(1);
  expect(response.body.errors[0].extensions).toEqual({ code: "rate_limited", details: { retryAfterSeconds: seconds } });
  expect(response.body.errors[0].message).toMatch(/Too many requests.*Retry after/);
}

describe("per-key rate limiting", () => {
  let gw: TestGateway;
  let mainKey: string;
  let otherKey: string;

  beforeAll(async () => {
    gw = await startGateway({ env: TIGHT });
    mainKey = (await gw.createTeam()).mainKey;
    otherKey = (await gw.createTeam({ name: "Other team" })).mainKey;
  });
  afterAll(() => gw?.close());

  it("a key over its rate gets 429 rate_limited with Retry-After, while another key is still served", async () => {
    const burst = await Promise.all(Array.from({ length: OVER_ALLOWANCE }, () => graphql(gw.url, mainKey)));
    const limited = burst.filter((r) => r.status === 429);
    expect(burst.filter((r) => r.status === 200).length).toBeGreaterThan(0);
    expect(limited.length).toBeGreaterThan(0);
    limited.forEach(expectRateLimitedGraphQL);

    const other = await graphql(gw.url, otherKey);
    expect(other.status).toBe(200);
    expect(other.body.data.balance.balance).toBe(1_000_000);
  });

  it("REST /v1 answers a key over its rate 429 with { code, message, details } and Retry-After", async () => {
    const { mainKey: key } = await gw.createTeam({ name: "REST team" });
    const responses = await Promise.all(
      Array.from({ length: OVER_ALLOWANCE }, () => fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } })),
    );
    const limited = responses.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    const body = await limited[0]!.json();
    const seconds = Number(limited[0]!.headers.get("retry-after"));
    expect(seconds).toBeGreaterThanOrEqual(1);
    expect(body).toEqual({ code: "rate_limited", message: expect.stringMatching(/Retry after/), details: { retryAfterSeconds: seconds } });
  });

  it("graphql-ws: subscribe operations count against the key; one over the rate ends with rate_limited", async () => {
    const { mainKey: key } = await gw.createTeam({ name: "WebSocket team" });
    const client = createClient({
      url: gw.url.replace(/^http/, "ws") + "/graphql",
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${key}` },
      retryAttempts: 0,
      lazy: true,
    });
    const codes = await Promise.all(
      Array.from(
        { length: OVER_ALLOWANCE },
        () =>
          new Promise<string>((resolve) => {
            const dispose = client.subscribe(
              { query: SPEND },
              {
                next: (value) => resolve(String(value.errors?.[0]?.extensions?.code ?? "event")),
                error: (error) => resolve(Array.isArray(error) ? String(error[0]?.extensions?.code) : "socket error"),
                complete: () => resolve("complete"),
              },
            );
            // A subscription still open after its start is a served one.
            setTimeout(() => {
              resolve("open");
              dispose();
            }, 1500);
          }),
      ),
    );
    await client.dispose();
    expect(codes).toContain("rate_limited");
    expect(codes).toContain("open");
  });

  it("a new graphql-ws connection over the rate is closed with 4429", async () => {
    const { mainKey: key } = await gw.createTeam({ name: "Connections team" });
    const closes = await Promise.all(
      Array.from(
        { length: OVER_ALLOWANCE },
        () =>
          new Promise<number>((resolve) => {
            const socket = new WebSocket(gw.url.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
            socket.on("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${key}` } })));
            socket.on("message", (raw) => {
              if (JSON.parse(raw.toString()).type === "connection_ack") {
                socket.close(1000);
                resolve(200);
              }
            });
            socket.on("close", (code) => resolve(code));
            socket.on("error", () => {});
          }),
      ),
    );
    expect(closes).toContain(200);
    expect(closes).toContain(4429);
  });

  it("requests without a key are counted per client IP", async () => {
    const responses = await Promise.all(Array.from({ length: OVER_ALLOWANCE }, () => graphql(gw.url, null)));
    expect(responses.map((r) => r.status)).toContain(401);
    expect(responses.map((r) => r.status)).toContain(429);
  });
});

describe("rate limiting switched off (RATE_LIMIT_RPS=0, as the benchmarks run)", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_RPS: "0", RATE_LIMIT_BURST: "1" } });
  });
  afterAll(() => gw?.close());

  it("serves every request", async () => {
    const { mainKey } = await gw.createTeam();
    const responses = await Promise.all(Array.from({ length: 50 }, () => graphql(gw.url, mainKey)));
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
  });
});

describe("no burst reserve (RATE_LIMIT_BURST=0, as the README allows)", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_RPS: "5", RATE_LIMIT_BURST: "0" } });
  });
  afterAll(() => gw?.close());

  it("starts, and serves exactly the sustained rate: the sixth request in a second is refused", async () => {
    const { mainKey } = await gw.createTeam();
    const responses = await Promise.all(Array.from({ length: 6 }, () => graphql(gw.url, mainKey)));
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 429]);
  });
});

// Two gateway processes on one PostgreSQL and one Redis, as in test/scale-out.test.ts.
describe.runIf(TEST_PROVIDER === "postgresql")("rate limits shared through Redis by two instances", () => {
  let database: { url: string; drop(): Promise<void> };
  let a: Instance;
  let b: Instance;
  let redis: Redis;
  const prefix = redisPrefix();

  beforeAll(async () => {
    database = await createTestDatabase();
    const env = { DATABASE_URL: database.url, REDIS_URL: REDIS_TEST_URL, REDIS_PREFIX: prefix, DEMO_TEAM: "true", RATE_LIMIT_RPS: "1", RATE_LIMIT_BURST: "3" };
    a = await startInstance(env);
    b = await startInstance(env);
    redis = new Redis(REDIS_TEST_URL);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    redis?.disconnect();
    await database?.drop();
  });

  it("a key's allowance is one across instances, counted in Redis under a hash of the key, never the key", async () => {
    const mainKey = (a.child.stdout + b.child.stdout).match(/zv_live_[0-9A-Za-z]{32,}/)![0];
    // 1 per second plus 3 in reserve: 4 in the first second, whichever instance serves them.
    // Counted per instance, each would serve 4 of these 8.
    const responses = await Promise.all(Array.from({ length: 8 }, (_, i) => gqlAt(i % 2 ? a.url : b.url, mainKey, BALANCE)));
    const served = responses.filter((r) => r.status === 200).length;
    expect(responses.filter((r) => r.status === 429).length).toBeGreaterThan(0);
    expect(served).toBeLessThan(8);

    const keys = await redis.keys(`${prefix}rate:*`);
    expect(keys.length).toBeGreaterThan(0);
    const secret = mainKey.slice("zv_live_".length);
    expect(keys.some((k) => k.includes(secret) || k.includes(mainKey))).toBe(false);
  });
});
