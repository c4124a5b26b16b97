import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";

/**
 * An SDK or a browser reuses one keep-alive connection for its requests: an
 * answer sent before the request's body was read must not leave the next
 * request on that connection reset.
 */
describe("refused requests and the client's keep-alive connection", () => {
  let gw: TestGateway;
  let mainKey: string;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  beforeAll(async () => {
    gw = await startGateway();
    ({ mainKey } = await gw.createTeam());
  });
  afterAll(async () => {
    agent.destroy();
    await gw.close();
  });

  function post(path: string, headers: Record<string, string>, body: string) {
    return new Promise<{ status: number; body: any }>((resolve, reject) => {
      const { hostname, port } = new URL(gw.url);
      const request = http.request(
        { host: hostname, port, path, method: "POST", agent, headers: { "content-length": String(Buffer.byteLength(body)), ...headers } },
        (response) => {
          let text = "";
          response.on("data", (chunk) => (text += chunk));
          response.on("end", () => resolve({ status: response.statusCode!, body: JSON.parse(text) }));
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  }

  const viewer = () => post("/graphql", { "content-type": "application/json", authorization: `Bearer ${mainKey}` }, JSON.stringify({ query: "{ viewer { isTestMode } }" }));

  it("a REST call refused before its body is read, then the next request on the same connection", async () => {
    for (let round = 0; round < 3; round += 1) {
      const refused = await post("/v1/messages", { "content-type": "application/json", authorization: "Bearer zv_live_sub_zkSMuaJJfxNS4dOOrL50FI2dfvtOKDxTiNYAxjws" }, JSON.stringify({ to: "+14155550100", text: "hi" }));
      expect(refused).toMatchObject({ status: 401, body: { code: "unauthorized" } });
      expect(await viewer()).toEqual({ status: 200, body: { data: { viewer: { isTestMode: false } } } });
    }
  });

  it("a GraphQL body that is not JSON gets a coded 400, and the connection goes on working", async () => {
    const refused = await post("/graphql", { "content-type": "text/plain", authorization: `Bearer ${mainKey}` }, "{ viewer { isTestMode } }");
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0].extensions.code).toBe("invalid_request");
    expect(refused.body.errors[0].message).toMatch(/Content-Type: application\/json/);
    expect(await viewer()).toEqual({ status: 200, body: { data: { viewer: { isTestMode: false } } } });
  });
});
