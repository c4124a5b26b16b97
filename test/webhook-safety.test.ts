import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSecretsKey } from "../src/domain/secretsKey.ts";
import { createLogger } from "../src/logger.ts";
import { WebhookDispatcher } from "../src/services/webhooks/dispatcher.ts";
import { SecretBox, resolveSecretsKey } from "../src/services/webhooks/secrets.ts";
import { systemResolver, type ResolvedAddress, type Resolver } from "../src/services/webhooks/urlSafety.ts";
import { exponentialBackoff } from "../src/domain/webhooks.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { onlyError, startGateway, type TestGateway } from "./helpers/gateway.ts";
import { waitUntil } from "./helpers/process.ts";
import { WebhookReceiver } from "./helpers/webhookReceiver.ts";
import { CREATE_ENDPOINT, DELIVERIES, ENDPOINT_FIELDS, SECRETS_KEY, WEBHOOK_ENV } from "./helpers/webhooks.ts";

/**
 * Safety of webhooks (README.md, "Webhooks", safety): in production, URLs to
 * private, loopback and link-local addresses are refused when set and again at
 * delivery, after resolving the name (DNS rebinding); signing secrets are
 * stored encrypted and never appear again: not in the database, the logs, or
 * any later response.
 */

const PUBLIC_IP = "93.184.216.34";

/** A resolver the test steers: names it knows, else the system's (localhost really resolves). */
function steeredResolver(table: Map<string, string[]>): Resolver {
  return async (hostname) => {
    const addresses = table.get(hostname);
    if (!addresses) return systemResolver(hostname);
    if (addresses.length === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return addresses.map((address): ResolvedAddress => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
}

describe(`webhook URLs in production (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;
  let mainKey: string;
  const dns = new Map<string, string[]>([
    ["public.example.test", [PUBLIC_IP]],
    ["private.example.test", ["10.0.0.5"]],
    ["mixed.example.test", [PUBLIC_IP, "192.168.1.1"]],
    ["metadata.example.test", ["169.254.169.254"]],
    ["nowhere.example.test", []],
    ["rebind.example.test", [PUBLIC_IP]],
  ]);

  beforeAll(async () => {
    gw = await startGateway({ env: { ...WEBHOOK_ENV, NODE_ENV: "production" }, webhookResolver: steeredResolver(dns) });
    mainKey = (await gw.createTeam({ name: "Production team" })).mainKey;
  });
  afterAll(async () => gw?.close());

  const refusedAtCreation = [
    "https://127.0.0.1/hook",
    "https://127.10.20.30/hook",
    "https://10.1.2.3/hook",
    "https://172.16.0.1/hook",
    "https://192.168.0.10/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://0.0.0.0/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:a9fe:a9fe]/hook",
    "https://[fd12:3456::1]/hook",
    "https://[fe80::1]/hook",
    "https://localhost/hook",
    "https://private.example.test/hook",
    "https://metadata.example.test/hook",
    "https://mixed.example.test/hook",
    "https://nowhere.example.test/hook",
    "http://public.example.test/hook",
  ];

  it.each(refusedAtCreation)("refuses %s at creation (GraphQL and REST), writing nothing", async (url) => {
    const before = await gw.db.prisma.webhookEndpoint.count();
    const response = await gw.gql(CREATE_ENDPOINT, { input: { url } }, mainKey);
    const error = onlyError(response);
    expect({ status: response.status, code: error.extensions.code, field: error.extensions.details.field }).toEqual({ status: 400, code: "invalid_request", field: "input.url" });
    expect(error.message).toMatch(url.startsWith("http:") ? /https/ : /(private|loopback|link-local|unspecified|unique local|does not resolve)/);
    const rest = await fetch(`${gw.url}/v1/webhook-endpoints`, {
      method: "POST",
      headers: { authorization: `Bearer ${mainKey}`, "content-type": "application/json" },
      body: JSON.stringify({ url }),
    });
    expect(rest.status).toBe(400);
    expect(await rest.json()).toMatchObject({ code: "invalid_request", details: { field: "url" } });
    expect(await gw.db.prisma.webhookEndpoint.count()).toBe(before);
  });

  it("accepts public https URLs, and refuses changing one to a private address", async () => {
    for (const url of [`https://${PUBLIC_IP}/hook`, "https://public.example.test/hook"]) {
      expect((await gw.gql(CREATE_ENDPOINT, { input: { url } }, mainKey)).errors).toBeUndefined();
    }
    const created = await gw.gql(CREATE_ENDPOINT, { input: { url: "https://public.example.test/other" } }, mainKey);
    const id = created.data.createWebhookEndpoint.endpoint.id;
    const update = await gw.gql(`mutation($id: ID!, $url: String!) { updateWebhookEndpoint(id: $id, input: { url: $url }) { url } }`, { id, url: "https://[::1]/x" }, mainKey);
    expect(onlyError(update).extensions).toMatchObject({ code: "invalid_request", details: { field: "input.url" } });
    expect((await gw.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id } })).url).toBe("https://public.example.test/other");
  });

  it("refuses at delivery a name that resolved to a public address when set and to a private one now (DNS rebinding), without connecting", async () => {
    const team = await gw.createTeam({ name: "Rebinding team" });
    const created = await gw.gql(CREATE_ENDPOINT, { input: { url: "https://rebind.example.test/hook", events: ["TEAM_TOPPED_UP"] } }, team.mainKey);
    expect(created.errors).toBeUndefined();
    const id = created.data.createWebhookEndpoint.endpoint.id;
    dns.set("rebind.example.test", ["127.0.0.1"]);
    await gw.gateway.services.teams.topUp(team.teamId, 100);
    const attempts = await waitUntil("the refused attempt", 10_000, async () => {
      const edges = (await gw.gql(DELIVERIES, { id }, team.mainKey)).data.webhookDeliveries.edges;
      return edges.length > 0 ? edges : undefined;
    });
    expect(attempts[0].node).toMatchObject({
      outcome: "FAILED",
      httpStatus: null,
      error: "rebind.example.test resolves to 127.0.0.1, a loopback address: webhooks are not delivered there (WEBHOOK_ALLOW_PRIVATE_URLS).",
    });
    expect(attempts[0].node.durationMs).toBeLessThan(100);
  });
});

describe(`webhook addresses checked at delivery (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    // Private URLs allowed (not production): the endpoints can be created, then a dispatcher that refuses them runs.
    gw = await startGateway({ env: WEBHOOK_ENV });
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await gw?.close();
    await receiver?.close();
  });

  it("a dispatcher with private addresses disallowed refuses every private target, by IP or by name, and connects to none", async () => {
    await gw.gateway.services.webhooks.dispatcher.stop();
    const team = await gw.createTeam({ name: "Private targets" });
    const port = receiver.port;
    const urls = [
      `http://127.0.0.1:${port}/a`,
      `http://localhost:${port}/b`,
      `http://[::ffff:127.0.0.1]:${port}/c`,
      `http://internal.example.test:${port}/d`,
      "http://10.0.0.1/e",
      "http://169.254.169.254/latest/meta-data/",
      "http://[::1]/g",
    ];
    const ids: string[] = [];
    for (const url of urls) {
      const created = await gw.gql(CREATE_ENDPOINT, { input: { url, events: ["TEAM_TOPPED_UP"] } }, team.mainKey);
      expect(created.errors).toBeUndefined();
      ids.push(created.data.createWebhookEndpoint.endpoint.id);
    }
    const box = new SecretBox(parseSecretsKey(SECRETS_KEY)!);
    const strict = new WebhookDispatcher({
      store: gw.db.webhooks,
      clock: gw.clock,
      secretsFor: (delivery) => [box.open(delivery.secretCiphertext, delivery.endpointId)],
      policy: { allowPrivate: false, resolve: steeredResolver(new Map([["internal.example.test", ["127.0.0.1"]]])) },
      timeoutMs: 400,
      leaseMs: 1500,
      pollMs: 50,
      schedule: exponentialBackoff(100),
      onEndpointFailing: async () => {},
      onError: (error) => {
        throw error;
      },
    });
    await gw.gateway.services.teams.topUp(team.teamId, 100);
    strict.start();
    await waitUntil("an attempt to every endpoint", 10_000, async () => ((await gw.db.prisma.webhookAttempt.count({ where: { endpointId: { in: ids } } })) >= ids.length ? true : undefined));
    await strict.stop();
    expect(receiver.received).toHaveLength(0);
    const attempts = await gw.db.prisma.webhookAttempt.findMany({ where: { endpointId: { in: ids } } });
    for (const attempt of attempts) {
      expect(attempt).toMatchObject({ outcome: "failed", httpStatus: null });
      expect(attempt.error).toMatch(/(loopback|private|link-local).*webhooks are not delivered there/);
    }

    // The same deliveries with private addresses allowed (the gateway's own dispatcher here): the checked address is the one connected to.
    for (const id of ids.slice(4)) await gw.gql(`mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }`, { id }, team.mainKey);
    const lenient = new WebhookDispatcher({
      store: gw.db.webhooks,
      clock: gw.clock,
      secretsFor: (delivery) => [box.open(delivery.secretCiphertext, delivery.endpointId)],
      policy: { allowPrivate: true, resolve: steeredResolver(new Map([["internal.example.test", ["127.0.0.1"]]])) },
      timeoutMs: 400,
      leaseMs: 1500,
      pollMs: 50,
      schedule: exponentialBackoff(100),
      onEndpointFailing: async () => {},
      onError: () => {},
    });
    gw.clock.advance(60_000);
    lenient.start();
    await waitUntil("deliveries to the four local endpoints", 10_000, () => (new Set(receiver.received.map((r) => r.path)).size === 4 ? true : undefined));
    await lenient.stop();
    expect(receiver.received.find((r) => r.path === "/d")!.headers.host).toBe(`internal.example.test:${port}`);
  });
});

describe(`webhook signing secrets (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;
  let receiver: WebhookReceiver;
  const logLines: string[] = [];

  beforeAll(async () => {
    gw = await startGateway({ env: WEBHOOK_ENV, logger: createLogger("trace", { write: (line: string) => void logLines.push(line) }) });
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await gw?.close();
    await receiver?.close();
  });

  it("are stored encrypted, never logged, and never in a later response or delivery", async () => {
    const team = await gw.createTeam({ name: "Secret team" });
    const created = await gw.gql(CREATE_ENDPOINT, { input: { url: `${receiver.url}/s`, events: ["TEAM_TOPPED_UP"] } }, team.mainKey);
    const { secret, endpoint } = created.data.createWebhookEndpoint;
    const rotated = (await gw.gql(`mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`, { id: endpoint.id }, team.mainKey)).data.rotateWebhookSecret.secret;
    const secrets = [secret, rotated, secret.slice("whsec_".length), rotated.slice("whsec_".length)];

    // At rest: ciphertexts, bound to their endpoint and to SECRETS_KEY.
    const row = await gw.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpoint.id } });
    const stored = JSON.stringify(row);
    for (const text of secrets) expect(stored).not.toContain(text);
    const box = new SecretBox(parseSecretsKey(SECRETS_KEY)!);
    expect(box.open(row.secretCiphertext, endpoint.id)).toBe(rotated);
    expect(box.open(row.previousSecretCiphertext!, endpoint.id)).toBe(secret);
    expect(() => box.open(row.secretCiphertext, "another-endpoint")).toThrow();
    expect(() => new SecretBox(Buffer.alloc(32, 7)).open(row.secretCiphertext, endpoint.id)).toThrow();

    // Used for a delivery, read back through every way there is, and a refused request.
    await gw.gateway.services.teams.topUp(team.teamId, 100);
    await waitUntil("the delivery", 10_000, () => receiver.received.find((r) => r.path === "/s"));
    const answers: unknown[] = [];
    const gql = async (query: string, variables: Record<string, unknown> = {}) => answers.push(await gw.gql(query, variables, team.mainKey));
    await gql(`{ webhookEndpoints(first: 10) { edges { node { ${ENDPOINT_FIELDS} } } } }`);
    await gql(`query($id: ID!) { webhookEndpoint(id: $id) { ${ENDPOINT_FIELDS} } }`, { id: endpoint.id });
    await gql(`mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: { description: "renamed" }) { ${ENDPOINT_FIELDS} } }`, { id: endpoint.id });
    await gql(`mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: { url: "nope" }) { id } }`, { id: endpoint.id });
    await gql(DELIVERIES, { id: endpoint.id });
    await gql(`{ auditLog(first: 50) { edges { node { action details } } } }`);
    for (const path of ["/v1/webhook-endpoints", `/v1/webhook-endpoints/${endpoint.id}`, `/v1/webhook-endpoints/${endpoint.id}/deliveries`, "/v1/openapi.json"]) {
      answers.push(await (await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${team.mainKey}` } })).text());
    }
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const everything = [JSON.stringify(answers), metrics, logLines.join("\n"), JSON.stringify(receiver.received)].join("\n");
    expect(logLines.length).toBeGreaterThan(5);
    for (const text of secrets) expect(everything).not.toContain(text);
  });

  it("SECRETS_KEY unset outside production: a key generated once under the data directory, readable by its owner only", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "secrets-key-"));
    try {
      const file = path.join(dir, "data", "secrets.key");
      const key = resolveSecretsKey(undefined, file);
      expect(key).toHaveLength(32);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readFileSync(file, "utf8").trim()).toMatch(/^[0-9a-f]{64}$/);
      expect(resolveSecretsKey(undefined, file).equals(key)).toBe(true);
      expect(resolveSecretsKey(key.toString("base64")).equals(key)).toBe(true);
      expect(resolveSecretsKey(key.toString("hex").toUpperCase()).equals(key)).toBe(true);
      for (const bad of ["", "abc", "zz".repeat(32), Buffer.alloc(16).toString("base64")]) expect(parseSecretsKey(bad)).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
