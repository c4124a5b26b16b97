import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { openDatabase } from "../src/db/client.ts";
import { createLogger } from "../src/logger.ts";
import { createGateway } from "../src/server.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { createTestDatabase, startGateway, type TestGateway } from "./helpers/gateway.ts";
import { PrivateRedis } from "./helpers/servers.ts";
import { SEND, SPEND } from "./helpers/storm.ts";
import { subscribeSse, subscribeWs } from "./helpers/subscriptions.ts";

/** The gateway's log lines, as JSON objects and as the raw text written. */
function capturedLogs() {
  const lines: string[] = [];
  return {
    lines,
    logger: createLogger("info", { write: (line: string) => void lines.push(line) }),
    get text() {
      return lines.join("");
    },
    get entries(): Record<string, any>[] {
      return lines.map((line) => JSON.parse(line));
    },
  };
}

async function metricValue(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const wanted = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`));
    if (wanted) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

describe("request logs", () => {
  const logs = capturedLogs();
  let gw: TestGateway;
  let mainKey: string;
  let subKey: string;

  beforeAll(async () => {
    gw = await startGateway({ logger: logs.logger });
    mainKey = (await gw.createTeam()).mainKey;
    const created = await gw.gql(`mutation { createSubAccount(input: { name: "Logged" }) { apiKey } }`, {}, mainKey);
    subKey = created.data.createSubAccount.apiKey;
  });
  afterAll(() => gw?.close());

  it("one line per request with its id, method, path, status, duration, operation and key id, echoing the id in x-request-id", async () => {
    const response = await fetch(`${gw.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${subKey}` },
      body: JSON.stringify({ query: `query MyBalance { balance { balance } }` }),
    });
    expect(response.status).toBe(200);
    const requestId = response.headers.get("x-request-id")!;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    await expect.poll(() => logs.entries.find((e) => e.requestId === requestId)).toBeDefined();
    const line = logs.entries.find((e) => e.requestId === requestId)!;
    expect(line).toMatchObject({ msg: "request", method: "POST", path: "/graphql", status: 200, operationName: "MyBalance", apiKeyId: expect.any(String), accountId: expect.any(String) });
    expect(line.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("a sane incoming x-request-id is kept; anything else is replaced", async () => {
    const kept = await fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${mainKey}`, "x-request-id": "lb-7f3a.42" } });
    expect(kept.headers.get("x-request-id")).toBe("lb-7f3a.42");
    await expect.poll(() => logs.entries.some((e) => e.requestId === "lb-7f3a.42" && e.path === "/v1/balance" && e.apiKeyId)).toBe(true);
    const replaced = await fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${mainKey}`, "x-request-id": "x".repeat(300) } });
    expect(replaced.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("never writes a key: not from headers, bad keys, REST, SSE or graphql-ws connectionParams", async () => {
    const requestLines = () => logs.entries.filter((e) => e.msg === "request").length;
    const before = requestLines();
    const badKey = `zv_live_${"Q".repeat(40)}`;
    await gw.gql(`{ balance { balance } }`, {}, badKey);
    await fetch(`${gw.url}/v1/me`, { headers: { authorization: `Bearer ${subKey}` } });
    await gw.gql(SEND, { input: { to: "+14155550100", text: "logged send" } }, subKey);
    await gw.gql(`{ thisFieldDoesNotExist }`, {}, mainKey);
    const ws = await subscribeWs(gw.url, subKey, SPEND);
    const sse = await subscribeSse(gw.url, mainKey, SPEND);
    ws.close();
    sse.close();
    // The sub-account creation above returned a key in its response body: that is not logged either.
    // Four requests and the SSE stream, logged once it ends.
    await expect.poll(requestLines).toBe(before + 5);
    await expect.poll(() => logs.entries.some((e) => e.msg === "subscribe" && e.transport === "graphql-ws" && e.operationName === "Spend" && e.apiKeyId)).toBe(true);
    for (const key of [mainKey, subKey, badKey]) {
      expect(logs.text).not.toContain(key);
      expect(logs.text).not.toContain(key.slice(-32));
    }
    expect(logs.text.toLowerCase()).not.toContain("bearer");
  });
});

describe("health and readiness", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw?.close());

  it("/healthz is 200 while the process runs; /readyz is 200 with the database reachable", async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { database: "up" } });
  });
});

describe.runIf(TEST_PROVIDER === "postgresql")("readiness when a dependency is down (PostgreSQL and a private Redis)", () => {
  let redis: PrivateRedis;
  let gw: TestGateway;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    gw = await startGateway({ env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await gw?.close();
    await redis?.stop();
  });

  it("/readyz is 503 naming Redis while it is stopped, 200 once it is back", async () => {
    await expect.poll(async () => (await fetch(`${gw.url}/readyz`)).status, { timeout: 10_000 }).toBe(200);
    expect((await (await fetch(`${gw.url}/readyz`)).json()).checks).toEqual({ database: "up", redis: "up" });
    await redis.stop();
    const down = await fetch(`${gw.url}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: "unavailable", checks: { database: "up", redis: "down" } });
    // Liveness is not readiness: the process is fine.
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    await redis.resume();
    await expect.poll(async () => (await fetch(`${gw.url}/readyz`)).status, { timeout: 15_000 }).toBe(200);
  });

  it("/readyz is 503 naming the database when it is gone", async () => {
    const database = await createTestDatabase();
    const db = openDatabase(database.url);
    const gateway = createGateway({ config: loadConfig({ DATABASE_URL: database.url, LOG_LEVEL: "silent" }), db, logger: createLogger("silent") });
    const url = await gateway.listen(0, "127.0.0.1");
    try {
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      await database.drop();
      const down = await fetch(`${url}/readyz`);
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({ status: "unavailable", checks: { database: "down" } });
    } finally {
      await gateway.close();
      await db.close();
    }
  });
});

describe("Prometheus metrics at /metrics", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw?.close());

  it("count requests, charges and rejections by code", async () => {
    const { mainKey } = await gw.createTeam({ balance: 1 });
    const before = {
      charges: await metricValue(gw.url, "gateway_charges_total"),
      insufficient: await metricValue(gw.url, "gateway_rejections_total", { code: "insufficient_balance" }),
      unauthorized: await metricValue(gw.url, "gateway_rejections_total", { code: "unauthorized" }),
      restNotFound: await metricValue(gw.url, "gateway_rejections_total", { code: "not_found" }),
      ok: await metricValue(gw.url, "gateway_http_requests_total", { route: "/graphql", method: "POST", status: "200" }),
    };
    expect((await gw.gql(SEND, { input: { to: "+14155550100", text: "charged" } }, mainKey)).status).toBe(200);
    expect((await gw.gql(SEND, { input: { to: "+14155550100", text: "no money left" } }, mainKey)).status).toBe(402);
    expect((await gw.gql(`{ balance { balance } }`, {}, "zv_live_unknownunknownunknownunknown12")).status).toBe(401);
    expect((await fetch(`${gw.url}/v1/sub-accounts/nope`, { headers: { authorization: `Bearer ${mainKey}` } })).status).toBe(404);

    expect(await metricValue(gw.url, "gateway_charges_total")).toBe(before.charges + 1);
    expect(await metricValue(gw.url, "gateway_charged_cents_total")).toBeGreaterThanOrEqual(1);
    expect(await metricValue(gw.url, "gateway_rejections_total", { code: "insufficient_balance" })).toBe(before.insufficient + 1);
    expect(await metricValue(gw.url, "gateway_rejections_total", { code: "unauthorized" })).toBe(before.unauthorized + 1);
    expect(await metricValue(gw.url, "gateway_rejections_total", { code: "not_found" })).toBe(before.restNotFound + 1);
    await expect.poll(() => metricValue(gw.url, "gateway_http_requests_total", { route: "/graphql", method: "POST", status: "200" })).toBe(before.ok + 1);
    expect(await metricValue(gw.url, "gateway_http_request_duration_seconds_count", { route: "/graphql" })).toBeGreaterThan(0);
    // Default process metrics are there too.
    expect(await metricValue(gw.url, "process_cpu_seconds_total")).toBeGreaterThan(0);
  });

  it("gauge open subscriptions over graphql-ws and SSE", async () => {
    const { mainKey } = await gw.createTeam();
    expect(await metricValue(gw.url, "gateway_open_subscriptions")).toBe(0);
    const ws = await subscribeWs(gw.url, mainKey, SPEND);
    await expect.poll(() => metricValue(gw.url, "gateway_open_subscriptions")).toBe(1);
    expect(await metricValue(gw.url, "gateway_websocket_connections")).toBe(1);
    const sse = await subscribeSse(gw.url, mainKey, SPEND);
    await expect.poll(() => metricValue(gw.url, "gateway_open_subscriptions")).toBe(2);
    ws.close();
    sse.close();
    await expect.poll(() => metricValue(gw.url, "gateway_open_subscriptions")).toBe(0);
    await expect.poll(() => metricValue(gw.url, "gateway_websocket_connections")).toBe(0);
  });
});
