import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse, validate } from "graphql";
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ConfigError, loadConfig } from "../src/config.ts";
import { sha256Hex } from "../src/domain/trustedDocuments.ts";
import { gatewayDashboardDocuments } from "../src/graphql/dashboardDocuments.ts";
import { GRAPHIQL_EXAMPLE, GRAPHIQL_HEADER } from "../src/graphql/graphiql.ts";
import { schema } from "../src/graphql/schema/index.ts";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";
import { Child, ROOT, TSX, childEnv, freePort } from "./helpers/process.ts";

/**
 * README.md, "Trusted documents": TRUSTED_DOCUMENTS names the manifest a
 * frontend's build writes (GraphQL Code Generator's client preset); then only
 * its documents run, sent by hash, over HTTP, SSE and graphql-ws; anything
 * else is 400 invalid_request saying what to send. The manifest here is the
 * one the example frontend's build wrote (examples/trusted-documents/).
 */
const MANIFEST = path.join(ROOT, "examples", "trusted-documents", "src", "gql", "persisted-documents.json");
const manifest = JSON.parse(readFileSync(MANIFEST, "utf8")) as Record<string, string>;

/** The manifest's id ("sha256:<hex>") of the operation named `name`. */
function idOf(name: string): string {
  const id = Object.keys(manifest).find((key) => new RegExp(`^(query|mutation|subscription) ${name}\\b`).test(manifest[key]!));
  if (!id) throw new Error(`no ${name} in the example manifest`);
  return id;
}
const hexOf = (name: string) => idOf(name).replace(/^sha256:/, "");

const SEND_INPUT = { to: "+447700900123", text: "hello" };

interface Body {
  data?: any;
  errors?: { message: string; extensions: { code: string; details?: any } }[];
}

async function post(url: string, body: unknown, key?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Body }> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Body };
}

/** The one error of a refused request, with its status. */
async function refusal(url: string, body: unknown, key?: string, headers: Record<string, string> = {}) {
  const { status, body: answer } = await post(url, body, key, headers);
  expect(answer.data ?? null).toBeNull();
  expect(answer.errors).toHaveLength(1);
  return { status, code: answer.errors![0]!.extensions.code, message: answer.errors![0]!.message };
}

/** A team with a sub-account, made through REST (untouched by trusted documents). */
async function teamWithSubAccount(gw: TestGateway) {
  const { mainKey } = await gw.createTeam({ balance: 10_000 });
  const response = await fetch(`${gw.url}/v1/sub-accounts`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${mainKey}` },
    body: JSON.stringify({ name: "Client ABC", creditLimit: 1000 }),
  });
  const { subAccount } = (await response.json()) as { subAccount: { id: string; apiKey: string } };
  return { mainKey, subId: subAccount.id, subKey: subAccount.apiKey };
}

/** A graphql-ws subscription sent as `payload` (text or hash), collecting data and errors. */
async function subscribeWsPayload(url: string, key: string, payload: Record<string, unknown>) {
  const client = createClient({
    url: `${url.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${key}` },
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => {},
  });
  const events: any[] = [];
  const errors: { message: string; extensions?: { code?: string } }[] = [];
  await new Promise<void>((resolve) => client.on("connected", () => resolve()));
  const dispose = client.subscribe(payload as never, {
    next: (value) => void (value.data ? events.push(value.data) : errors.push(...((value.errors ?? []) as never[]))),
    error: (error) => void errors.push(...(Array.isArray(error) ? error : [{ message: String(error) }])),
    complete: () => {},
  });
  return {
    events,
    errors,
    close: () => {
      dispose();
      void client.dispose();
    },
  };
}

/** A GraphQL-over-SSE subscription sent as `body`; resolves with the response's status and, for a stream, its events. */
async function subscribeSseBody(url: string, key: string, body: Record<string, unknown>) {
  const controller = new AbortController();
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  let text = "";
  void (async () => {
    try {
      for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) text += chunk;
    } catch {
      // Aborted by close().
    }
  })();
  return { status: response.status, text: () => text, close: () => controller.abort() };
}

describe("TRUSTED_DOCUMENTS is read and checked when the gateway starts", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "trusted-documents-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function manifestFile(name: string, content: string): string {
    const file = path.join(dir, name);
    writeFileSync(file, content);
    return file;
  }

  function refusedWith(file: string): string {
    try {
      loadConfig({ TRUSTED_DOCUMENTS: file });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`${file} was accepted`);
  }

  it("loads the manifest the client preset wrote, keyed by sha256:<hex>, and accepts bare hex keys too", () => {
    const loaded = loadConfig({ TRUSTED_DOCUMENTS: MANIFEST }).TRUSTED_DOCUMENTS!;
    expect(loaded.documents.size).toBe(Object.keys(manifest).length);
    expect(loaded.documents.get(hexOf("TeamOverview"))).toBe(manifest[idOf("TeamOverview")]);
    const document = "query Bare { viewer { isTestMode } }";
    const bare = manifestFile("bare.json", JSON.stringify({ [sha256Hex(document)]: document }));
    expect(loadConfig({ TRUSTED_DOCUMENTS: bare }).TRUSTED_DOCUMENTS!.documents.get(sha256Hex(document))).toBe(document);
  });

  it("refuses a missing or malformed manifest with a message naming the variable and what to fix", () => {
    const document = "query A { viewer { isTestMode } }";
    const cases: [string, RegExp][] = [
      [path.join(dir, "missing.json"), /cannot read the file \(ENOENT\)/],
      [manifestFile("not-json.json", "{ nope"), /is not JSON/],
      [manifestFile("array.json", JSON.stringify([document])), /must be a JSON object of \{ "sha256:<hash>": "<document>" \}/],
      [manifestFile("empty.json", "{}"), /lists no document/],
      [manifestFile("sha1.json", JSON.stringify({ ["a".repeat(40)]: document })), /SHA-1 key.*hashAlgorithm: "sha256"/],
      [manifestFile("not-a-hash.json", JSON.stringify({ TeamOverview: document })), /not a SHA-256 hash/],
      [manifestFile("not-text.json", JSON.stringify({ [`sha256:${sha256Hex(document)}`]: { query: document } })), /other than a GraphQL document/],
      [manifestFile("edited.json", JSON.stringify({ [`sha256:${sha256Hex(document)}`]: `${document} ` })), /whose SHA-256 is not that key/],
    ];
    for (const [file, reason] of cases) {
      const message = refusedWith(file);
      expect(message).toContain(`TRUSTED_DOCUMENTS=${JSON.stringify(file)}`);
      expect(message).toMatch(reason);
    }
  });

  it("npm start stops with that message instead of serving", async () => {
    const port = await freePort();
    const child = new Child(TSX, ["src/main.ts"], childEnv({ PORT: String(port), DATABASE_URL: `file:${path.join(dir, "gateway.db")}`, TRUSTED_DOCUMENTS: path.join(dir, "missing.json") }));
    const finished = await child.waitForExit(60_000);
    expect(finished.code).toBe(1);
    expect(finished.stderr).toMatch(/TRUSTED_DOCUMENTS=".*missing\.json": cannot read the file/);
    expect(finished.stdout).not.toMatch(/zv_live_/);
  });

  it("the example frontend's documents are valid against the schema this gateway serves", () => {
    for (const document of Object.values(manifest)) expect(validate(schema, parse(document)).map((error) => error.message)).toEqual([]);
  });
});

describe("with TRUSTED_DOCUMENTS, outside production", () => {
  let gw: TestGateway;
  let team: Awaited<ReturnType<typeof teamWithSubAccount>>;
  beforeAll(async () => {
    gw = await startGateway({ env: { TRUSTED_DOCUMENTS: MANIFEST } });
    team = await teamWithSubAccount(gw);
  });
  afterAll(() => gw?.close());

  it("runs a listed query sent by hash, as documentId or as extensions.persistedQuery.sha256Hash", async () => {
    for (const body of [
      { documentId: idOf("TeamOverview") },
      { documentId: hexOf("TeamOverview") },
      { extensions: { persistedQuery: { version: 1, sha256Hash: hexOf("TeamOverview") } } },
    ]) {
      const { status, body: answer } = await post(gw.url, body, team.mainKey);
      expect(answer.errors).toBeUndefined();
      expect(status).toBe(200);
      expect(answer.data.viewer.team).toEqual({ name: "Test team", balance: 10_000, currency: "USD" });
      expect(answer.data.subAccounts.edges.map((edge: any) => edge.node.id)).toEqual([team.subId]);
    }
  });

  it("runs a listed mutation sent by hash, with its variables: the charge happens", async () => {
    const { status, body } = await post(gw.url, { documentId: idOf("SendMessage"), variables: { input: SEND_INPUT } }, team.subKey);
    expect(body.errors).toBeUndefined();
    expect(status).toBe(200);
    expect(body.data.sendMessage).toMatchObject({ cost: 4, status: "QUEUED" });
  });

  it("refuses any document sent as text, even a listed one, with 400 invalid_request saying to send the hash", async () => {
    for (const query of [manifest[idOf("TeamOverview")]!, "{ balance { balance } }"]) {
      const refused = await refusal(gw.url, { query }, team.mainKey);
      expect(refused).toMatchObject({ status: 400, code: "invalid_request" });
      expect(refused.message).toMatch(/trusted documents only.*documentId.*extensions\.persistedQuery\.sha256Hash/);
    }
    // Text and hash together: the text is still refused.
    const both = await refusal(gw.url, { query: "{ balance { balance } }", documentId: idOf("TeamOverview") }, team.mainKey);
    expect(both).toMatchObject({ status: 400, code: "invalid_request" });
  });

  it("refuses an unknown or malformed hash, and a request naming no document, with 400 invalid_request", async () => {
    const unknown = await refusal(gw.url, { documentId: `sha256:${sha256Hex("query Other { balance { balance } }")}` }, team.mainKey);
    expect(unknown).toMatchObject({ status: 400, code: "invalid_request" });
    expect(unknown.message).toMatch(/No trusted document has the id "sha256:[0-9a-f]{64}".*TRUSTED_DOCUMENTS/);
    expect(await refusal(gw.url, { documentId: "TeamOverview" }, team.mainKey)).toMatchObject({ status: 400, code: "invalid_request" });
    const none = await refusal(gw.url, { variables: {} }, team.mainKey);
    expect(none).toMatchObject({ status: 400, code: "invalid_request" });
    expect(none.message).toMatch(/No document to run/);
  });

  it("graphql-ws: a listed subscription sent by hash receives the charge; text and unknown hashes are refused", async () => {
    const listed = await subscribeWsPayload(gw.url, team.mainKey, { query: "", extensions: { persistedQuery: { version: 1, sha256Hash: hexOf("SpendUpdates") } } });
    const byDocumentId = await subscribeWsPayload(gw.url, team.mainKey, { query: "", documentId: idOf("SpendUpdates") });
    await gw.untilSubscriptions(2);
    const sent = await post(gw.url, { documentId: idOf("SendMessage"), variables: { input: SEND_INPUT } }, team.subKey);
    expect(sent.status).toBe(200);
    await expect.poll(() => listed.events.length + byDocumentId.events.length, { timeout: 5_000 }).toBe(2);
    expect(listed.events[0].spendUpdated).toMatchObject({ amount: 4, subAccount: { id: team.subId } });
    expect(byDocumentId.events[0]).toEqual(listed.events[0]);
    expect([...listed.errors, ...byDocumentId.errors]).toEqual([]);
    listed.close();
    byDocumentId.close();

    const text = await subscribeWsPayload(gw.url, team.mainKey, { query: manifest[idOf("SpendUpdates")]! });
    const unknown = await subscribeWsPayload(gw.url, team.mainKey, { query: "", documentId: `sha256:${"0".repeat(64)}` });
    await expect.poll(() => text.errors.length + unknown.errors.length, { timeout: 5_000 }).toBe(2);
    expect(text.errors[0]).toMatchObject({ extensions: { code: "invalid_request" } });
    expect(text.errors[0]!.message).toMatch(/trusted documents only/);
    expect(unknown.errors[0]).toMatchObject({ extensions: { code: "invalid_request" } });
    expect(unknown.errors[0]!.message).toMatch(/No trusted document/);
    text.close();
    unknown.close();
  });

  it("SSE: a listed subscription sent by hash receives the charge; its text is refused with 400", async () => {
    const stream = await subscribeSseBody(gw.url, team.mainKey, { documentId: idOf("SpendUpdates") });
    expect(stream.status).toBe(200);
    await gw.untilSubscriptions(1);
    await post(gw.url, { documentId: idOf("SendMessage"), variables: { input: SEND_INPUT } }, team.subKey);
    await expect.poll(() => stream.text(), { timeout: 5_000 }).toMatch(/"spendUpdated":\{"amount":4,/);
    stream.close();
    const text = await subscribeSseBody(gw.url, team.mainKey, { query: manifest[idOf("SpendUpdates")]! });
    expect(text.status).toBe(400);
    await expect.poll(() => text.text()).toMatch(/invalid_request/);
    text.close();
  });

  it("GraphiQL still works: the page is served, and its requests (GRAPHIQL_HEADER) may send any document", async () => {
    const page = await fetch(`${gw.url}/graphql`, { headers: { accept: "text/html" } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(JSON.stringify(GRAPHIQL_EXAMPLE).slice(1, -1));
    const fromGraphiQL = { [GRAPHIQL_HEADER]: "1" };
    const introspection = await post(gw.url, { query: "{ __schema { queryType { name } } }" }, undefined, fromGraphiQL);
    expect(introspection).toEqual({ status: 200, body: { data: { __schema: { queryType: { name: "Query" } } } } });
    const query = await post(gw.url, { query: "{ viewer { team { name } } }" }, team.mainKey, fromGraphiQL);
    expect(query.body).toEqual({ data: { viewer: { team: { name: "Test team" } } } });
    // Without the page's header, the same request is refused.
    expect(await refusal(gw.url, { query: "{ viewer { team { name } } }" }, team.mainKey)).toMatchObject({ status: 400, code: "invalid_request" });
  });

  it("the dashboard's own documents run by hash beside the manifest's", async () => {
    const state = gatewayDashboardDocuments().find((document) => document.name === "DashboardState")!;
    const { status, body } = await post(gw.url, { extensions: { persistedQuery: { version: 1, sha256Hash: state.hash } } }, team.mainKey);
    expect(body.errors).toBeUndefined();
    expect(status).toBe(200);
    expect(body.data.subAccounts.totalCount).toBe(1);
  });
});

describe("with TRUSTED_DOCUMENTS in production", () => {
  let gw: TestGateway;
  let team: Awaited<ReturnType<typeof teamWithSubAccount>>;
  beforeAll(async () => {
    gw = await startGateway({ env: { NODE_ENV: "production", TRUSTED_DOCUMENTS: MANIFEST, SECRETS_KEY: "0".repeat(64) } });
    team = await teamWithSubAccount(gw);
  });
  afterAll(() => gw?.close());

  it("listed documents run by hash; GraphiQL's header grants nothing and the page is off", async () => {
    const listed = await post(gw.url, { documentId: idOf("TeamOverview") }, team.mainKey);
    expect(listed.status).toBe(200);
    expect(listed.body.data.viewer.team.name).toBe("Test team");
    const refused = await refusal(gw.url, { query: "{ viewer { team { name } } }" }, team.mainKey, { [GRAPHIQL_HEADER]: "1" });
    expect(refused).toMatchObject({ status: 400, code: "invalid_request" });
    expect((await fetch(`${gw.url}/graphql`, { headers: { accept: "text/html" } })).status).toBe(404);
  });
});

describe("without TRUSTED_DOCUMENTS", () => {
  let gw: TestGateway;
  let team: Awaited<ReturnType<typeof teamWithSubAccount>>;
  beforeAll(async () => {
    gw = await startGateway();
    team = await teamWithSubAccount(gw);
  });
  afterAll(() => gw?.close());

  it("documents sent as text run as always; the dashboard's run by hash; an unknown hash asks for the text", async () => {
    expect((await post(gw.url, { query: "{ viewer { team { name } } }" }, team.mainKey)).body).toEqual({ data: { viewer: { team: { name: "Test team" } } } });
    const state = gatewayDashboardDocuments().find((document) => document.name === "DashboardState")!;
    expect((await post(gw.url, { documentId: `sha256:${state.hash}` }, team.mainKey)).body.data.viewer.team.name).toBe("Test team");
    const unknown = await refusal(gw.url, { documentId: idOf("TeamOverview") }, team.mainKey);
    expect(unknown).toMatchObject({ status: 400, code: "invalid_request" });
    expect(unknown.message).toMatch(/send the GraphQL document's text in query/);
  });

  it("graphql-ws takes text, or a known hash with an empty query", async () => {
    const spend = gatewayDashboardDocuments().find((document) => document.name === "DashboardSpend")!;
    const byHash = await subscribeWsPayload(gw.url, team.mainKey, { query: "", extensions: { persistedQuery: { version: 1, sha256Hash: spend.hash } } });
    const byText = await subscribeWsPayload(gw.url, team.mainKey, { query: "subscription { spendUpdated { amount } }" });
    await gw.untilSubscriptions(2);
    await post(gw.url, { query: "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }", variables: { input: SEND_INPUT } }, team.subKey);
    await expect.poll(() => byHash.events.length + byText.events.length, { timeout: 5_000 }).toBe(2);
    expect(byHash.events[0].spendUpdated).toMatchObject({ amount: 4, subAccount: { id: team.subId, totalSpent: 4 } });
    expect(byText.events[0]).toEqual({ spendUpdated: { amount: 4 } });
    byHash.close();
    byText.close();
  });
});
