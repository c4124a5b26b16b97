import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyError, startGateway, type TestGateway } from "./helpers/gateway.ts";

const INTROSPECTION = `{ __schema { queryType { name } } }`;
const TYPE_INTROSPECTION = `{ __type(name: "SubAccount") { fields { name } } }`;

function openGraphiQL(url: string) {
  return fetch(`${url}/graphql`, { headers: { accept: "text/html" } });
}

function preflight(url: string, path: string, origin: string) {
  return fetch(`${url}${path}`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
  });
}

describe("NODE_ENV=production", () => {
  let gw: TestGateway;
  let mainKey: string;

  beforeAll(async () => {
    gw = await startGateway({ env: { NODE_ENV: "production", SECRETS_KEY: "ab".repeat(32), CORS_ORIGINS: "https://app.example.com, https://admin.example.com" } });
    mainKey = (await gw.createTeam()).mainKey;
  });
  afterAll(() => gw?.close());

  it("introspection is refused with 400 invalid_request; ordinary queries are served", async () => {
    for (const query of [INTROSPECTION, TYPE_INTROSPECTION]) {
      const response = await gw.gql(query, {}, mainKey);
      expect(response.status).toBe(400);
      expect(response.data ?? null).toBeNull();
      expect(response.errors!.map((e) => e.extensions.code)).toEqual(response.errors!.map(() => "invalid_request"));
      expect(response.errors![0]!.message).toMatch(/introspection has been disabled.*"__(schema|type)"/);
    }
    expect((await gw.gql(`{ balance { balance } }`, {}, mainKey)).status).toBe(200);
  });

  it("GraphiQL is not served: a browser opening /graphql is told it is off in production", async () => {
    const page = await openGraphiQL(gw.url);
    expect(page.headers.get("content-type") ?? "").not.toMatch(/text\/html/);
    expect(page.status).toBe(404);
    const body = (await page.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(body.errors[0]!.extensions.code).toBe("not_found");
    expect(body.errors[0]!.message).toMatch(/GraphiQL is off in production/);
  });

  it("an unknown field is refused without suggesting the schema's field names", async () => {
    const response = await gw.gql(`{ balance { balanc } }`, {}, mainKey);
    expect(response.status).toBe(400);
    expect(onlyError(response).message).not.toMatch(/Did you mean/);
  });

  it("CORS: a preflight from a listed origin is allowed, on /graphql and /v1; any other origin is refused", async () => {
    for (const path of ["/graphql", "/v1/sub-accounts"]) {
      const allowed = await preflight(gw.url, path, "https://app.example.com");
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
      expect(allowed.headers.get("access-control-allow-methods")).toMatch(/POST/);
      expect(allowed.headers.get("access-control-allow-headers")).toMatch(/authorization/);
      expect(allowed.headers.get("access-control-allow-credentials")).toBeNull();

      const refused = await preflight(gw.url, path, "https://evil.example.net");
      expect(refused.status).toBe(403);
      expect(refused.headers.get("access-control-allow-origin")).toBeNull();
      // Answered in the shape of the surface asked: GraphQL's errors[], REST's { code, message }.
      const body = (await refused.json()) as any;
      const error = path === "/graphql" ? { code: body.errors[0].extensions.code, message: body.errors[0].message } : body;
      expect(error).toMatchObject({ code: "forbidden", message: expect.stringMatching(/CORS_ORIGINS/) });
    }
  });

  it("CORS: the actual request from a listed origin carries the allow header; from another origin it does not", async () => {
    const headers = { "content-type": "application/json", authorization: `Bearer ${mainKey}` };
    const body = JSON.stringify({ query: `{ balance { balance } }` });
    const fromApp = await fetch(`${gw.url}/graphql`, { method: "POST", headers: { ...headers, origin: "https://admin.example.com" }, body });
    expect(fromApp.headers.get("access-control-allow-origin")).toBe("https://admin.example.com");
    expect(fromApp.headers.get("access-control-expose-headers")).toMatch(/x-request-id/);
    const fromElsewhere = await fetch(`${gw.url}/v1/balance`, { headers: { ...headers, origin: "https://evil.example.net" } });
    expect(fromElsewhere.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("NODE_ENV=production without CORS_ORIGINS", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { NODE_ENV: "production", SECRETS_KEY: "ab".repeat(32) } });
  });
  afterAll(() => gw?.close());

  it("allows no cross-origin caller", async () => {
    const response = await preflight(gw.url, "/graphql", "https://app.example.com");
    expect(response.status).toBe(403);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("NODE_ENV=development (the default)", () => {
  let gw: TestGateway;
  let mainKey: string;

  beforeAll(async () => {
    gw = await startGateway({ env: { NODE_ENV: "development" } });
    mainKey = (await gw.createTeam()).mainKey;
  });
  afterAll(() => gw?.close());

  it("introspection works, so GraphiQL can document the schema", async () => {
    const response = await gw.gql(INTROSPECTION, {}, mainKey);
    expect(response.status).toBe(200);
    expect(response.data.__schema.queryType.name).toBe("Query");
  });

  it("an unknown field is refused with a suggestion", async () => {
    const response = await gw.gql(`{ balance { balanc } }`, {}, mainKey);
    expect(response.status).toBe(400);
    expect(onlyError(response).message).toMatch(/Did you mean "balance"/);
  });

  it("GraphiQL is served at /graphql with the example operation", async () => {
    const page = await openGraphiQL(gw.url);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/CreateSubAccount/);
  });

  it("CORS: any origin may call (no credentials are involved: keys travel in a header)", async () => {
    const response = await preflight(gw.url, "/v1/balance", "http://localhost:5173");
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("configuration of the limits", () => {
  it("a malformed CORS_ORIGINS or RATE_LIMIT_RPS stops the start with a clear message", async () => {
    const { loadConfig } = await import("../src/config.ts");
    expect(() => loadConfig({ CORS_ORIGINS: "app.example.com/path" })).toThrow(/CORS_ORIGINS="app.example.com\/path": must be \*/);
    expect(() => loadConfig({ RATE_LIMIT_RPS: "-1" })).toThrow(/RATE_LIMIT_RPS/);
    expect(() => loadConfig({ REQUEST_TIMEOUT_MS: "10" })).toThrow(/REQUEST_TIMEOUT_MS/);
    expect(loadConfig({}).RATE_LIMIT_RPS).toBe(100);
    expect(loadConfig({}).RATE_LIMIT_BURST).toBe(200);
    expect(loadConfig({}).REQUEST_TIMEOUT_MS).toBe(30_000);
  });
});
