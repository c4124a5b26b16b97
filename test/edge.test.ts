import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "node:http";
import WebSocket from "ws";
import { pathnameOf } from "../src/edge/requestLog.ts";
import { onlyError, startGateway, type TestGateway } from "./helpers/gateway.ts";

/**
 * The edge every surface shares (src/edge): what a client that gets something
 * wrong is told, the same on GraphQL and REST, and on graphql-ws the same as
 * over HTTP.
 */

/** The frames a raw graphql-transport-ws client receives for one operation, until it ends. */
async function wsFrames(url: string, connectionParams: Record<string, unknown> | undefined, query: string): Promise<any[]> {
  const socket = new WebSocket(url.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
  const frames: any[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no end within 5 s: ${JSON.stringify(frames)}`)), 5_000);
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.close();
      resolve(frames);
    };
    socket.on("open", () => socket.send(JSON.stringify({ type: "connection_init", ...(connectionParams ? { payload: connectionParams } : {}) })));
    socket.on("message", (raw) => {
      const frame = JSON.parse(raw.toString());
      if (frame.type === "connection_ack") return void socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query } }));
      frames.push(frame);
      if (frame.type === "error" || frame.type === "complete") finish();
    });
    socket.on("close", (code) => {
      if (!finished) frames.push({ closed: code });
      finish();
    });
    socket.on("error", reject);
  });
}

describe("the edge", () => {
  let gw: TestGateway;
  let mainKey: string;

  beforeAll(async () => {
    gw = await startGateway();
    ({ mainKey } = await gw.createTeam());
  });
  afterAll(() => gw?.close());

  const post = (path: string, headers: Record<string, string>, body: string) => fetch(`${gw.url}${path}`, { method: "POST", headers, body });

  it("an Authorization header holding a key without `Bearer ` says the scheme is missing, on GraphQL and REST", async () => {
    const graphql = await post("/graphql", { "content-type": "application/json", authorization: mainKey }, JSON.stringify({ query: "{ balance { balance } }" }));
    expect(graphql.status).toBe(401);
    const error = onlyError({ status: graphql.status, ...((await graphql.json()) as any) });
    expect(error.extensions.code).toBe("unauthorized");
    expect(error.message).toMatch(/missing its scheme.*Bearer/);
    expect(error.message).not.toContain(mainKey);

    const rest = await fetch(`${gw.url}/v1/balance`, { headers: { authorization: mainKey } });
    expect(rest.status).toBe(401);
    const body = (await rest.json()) as any;
    expect(body).toMatchObject({ code: "unauthorized", message: expect.stringMatching(/missing its scheme/) });
    expect(JSON.stringify(body)).not.toContain(mainKey);

    const basic = await fetch(`${gw.url}/v1/balance`, { headers: { authorization: "Basic dXNlcjpwYXNz" } });
    expect(((await basic.json()) as any).message).toMatch(/Only Bearer authentication is supported \(got Basic\)/);
  });

  it("a POST without Content-Type is told which content type to send, on GraphQL and REST", async () => {
    const query = JSON.stringify({ query: "{ balance { balance } }" });
    const graphql = await fetch(`${gw.url}/graphql`, { method: "POST", headers: { authorization: `Bearer ${mainKey}` }, body: new Blob([query]) });
    expect(graphql.status).toBe(400);
    const error = ((await graphql.json()) as any).errors[0];
    expect(error.extensions.code).toBe("invalid_request");
    expect(error.message).toMatch(/no Content-Type.*Content-Type: application\/json/);

    const rest = await fetch(`${gw.url}/v1/sub-accounts`, { method: "POST", headers: { authorization: `Bearer ${mainKey}` }, body: new Blob([JSON.stringify({ name: "x" })]) });
    expect(rest.status).toBe(400);
    expect(await rest.json()).toMatchObject({ code: "invalid_request", message: expect.stringMatching(/Content-Type: application\/json/) });
  });

  it("REST refuses a JSON body sent as text/plain, saying which type to send, and creates nothing", async () => {
    const before = await gw.db.prisma.account.count();
    const response = await post("/v1/sub-accounts", { "content-type": "text/plain", authorization: `Bearer ${mainKey}` }, JSON.stringify({ name: "Plain" }));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_request", message: expect.stringMatching(/Content-Type: application\/json \(got "text\/plain"\)/) });
    expect(await gw.db.prisma.account.count()).toBe(before);
  });

  it("REST: a known path with the wrong method is 405 with an Allow header; an unknown path is 404", async () => {
    const wrong = await fetch(`${gw.url}/v1/balance`, { method: "DELETE", headers: { authorization: `Bearer ${mainKey}` } });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET");
    expect(await wrong.json()).toMatchObject({ code: "invalid_request", message: expect.stringMatching(/does not accept DELETE; use GET/) });

    const both = await fetch(`${gw.url}/v1/sub-accounts/abc`, { method: "POST", headers: { authorization: `Bearer ${mainKey}` } });
    expect(both.status).toBe(405);
    expect(both.headers.get("allow")).toBe("GET, PATCH, DELETE");

    const unknown = await fetch(`${gw.url}/v1/nothing-here`, { headers: { authorization: `Bearer ${mainKey}` } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: "not_found", message: expect.stringMatching(/openapi\.json/) });
  });

  it("a malformed cursor is 400 invalid_request naming the argument, on REST as on GraphQL", async () => {
    // Not base64url JSON; a number where an id goes ([1]); an object ({}); an id that is no id (["a b"]).
    for (const cursor of ["not-a-cursor", "WzFd", "e30", "WyJhIGIiXQ", "%%%"]) {
      const rest = await fetch(`${gw.url}/v1/messages?cursor=${encodeURIComponent(cursor)}`, { headers: { authorization: `Bearer ${mainKey}` } });
      expect(rest.status).toBe(400);
      expect(await rest.json()).toMatchObject({ code: "invalid_request", details: { field: "cursor" } });

      const graphql = await gw.gql(`query($after: String) { subAccounts(first: 5, after: $after) { totalCount } }`, { after: cursor }, mainKey);
      expect(graphql.status).toBe(400);
      expect(onlyError(graphql).extensions).toMatchObject({ code: "invalid_request", details: { field: "after" } });
    }
  });

  it("unknown paths outside /graphql and /v1 are a coded 404 saying where the API is", async () => {
    const response = await fetch(`${gw.url}/api/graphql`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "not_found", message: expect.stringMatching(/GraphQL is at \/graphql/) });
  });

  it("graphql-ws: no key and a wrong key end the same way, with the extensions of an HTTP error", async () => {
    const query = "subscription { spendUpdated { amount } }";
    const missing = await wsFrames(gw.url, undefined, query);
    const wrong = await wsFrames(gw.url, { authorization: "Bearer zv_live_0000000000000000000000000000000000000000" }, query);
    const http = onlyError(await gw.gql("{ balance { balance } }", {}, "zv_live_0000000000000000000000000000000000000000"));
    for (const frames of [missing, wrong]) {
      expect(frames).toHaveLength(1);
      expect(frames[0].type).toBe("error");
      expect(frames[0].payload).toHaveLength(1);
      expect(Object.keys(frames[0].payload[0].extensions)).toEqual(Object.keys(http.extensions));
      expect(frames[0].payload[0].extensions.code).toBe("unauthorized");
    }
    expect(missing[0].payload[0].message).toMatch(/connectionParams/);
    expect(wrong[0].payload[0].message).toBe(http.message);
  });

  it("graphql-ws errors raised while streaming carry the same extensions as HTTP's (no internal `http` field)", async () => {
    const frames = await wsFrames(gw.url, { authorization: `Bearer ${mainKey}` }, `subscription { spendUpdated(subAccountId: "nope") { amount } }`);
    const error = frames.find((frame) => frame.type === "error" || frame.type === "next");
    const errors = error.type === "error" ? error.payload : error.payload.errors;
    expect(errors[0].extensions).toEqual({ code: "not_found", details: { id: "nope" } });
  });
});

describe("the edge's request path", () => {
  it("is what the URL parser gives for every request target, plain or not", () => {
    const targets = [
      "/graphql", "/graphql?query=%7B__typename%7D", "/", "/?x=1", "/v1/sub-accounts", "/v1/sub-accounts/sa_01ABC/", "/v1/sub-accounts/sa_01ABC?limit=5",
      "//evil.example/graphql", "/a/../graphql", "/./graphql", "/graph%71l", "/graphql#frag", "/v1\\sub-accounts", "/x y", "/ünï", "/a//b", "/favicon.ico", "",
      "*", "/graphql?", "/readyz", "/metrics?name[]=x",
    ];
    for (const target of targets) expect([target, pathnameOf(target)]).toEqual([target, new URL(target, "http://gateway.invalid").pathname]);
  });

  it("a path the parser normalises reaches the route it names: /v1/%2E%2E/graphql is GraphQL", async () => {
    const gateway = await startGateway();
    try {
      // node:http sends the path as written (fetch would normalise it first).
      const { port } = new URL(gateway.url);
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path: "/v1/%2E%2E/graphql", method: "POST", headers: { "content-type": "application/json" } }, (res) => {
          let body = "";
          res.on("data", (chunk: Buffer) => (body += chunk.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end(JSON.stringify({ query: "{ __typename }" }));
      });
      expect(answer).toEqual({ status: 200, body: JSON.stringify({ data: { __typename: "Query" } }) });
    } finally {
      await gateway.close();
    }
  });
});
