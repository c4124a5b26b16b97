import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { openDatabase, type Database } from "../src/db/client.ts";
import { PREVIOUS_SECRETS_KEYS_MAX, parseSecretsKeyList } from "../src/domain/secretsKey.ts";
import { createLogger } from "../src/logger.ts";
import { createGateway } from "../src/server.ts";
import { systemClock } from "../src/services/clock.ts";
import { SecretBox } from "../src/services/webhooks/secrets.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { createTestDatabase } from "./helpers/gateway.ts";
import { TSX, childEnv, run, waitUntil } from "./helpers/process.ts";
import { WebhookReceiver, type Received } from "./helpers/webhookReceiver.ts";
import { CREATE_ENDPOINT, WEBHOOK_ENV } from "./helpers/webhooks.ts";

/**
 * Rotating SECRETS_KEY (README.md, "Rotating SECRETS_KEY"): instances started
 * with the new key and the old one in SECRETS_KEY_PREVIOUS go on signing with
 * every stored secret; `npm run admin -- reseal-secrets` seals them under the new
 * key, after which the old key can go. Teams notice nothing: their receivers
 * verify every delivery with the secrets they already have.
 */

const key = () => randomBytes(32);
const hex = (bytes: Buffer) => bytes.toString("hex");

describe("SecretBox with earlier keys", () => {
  const [oldKey, newKey, otherKey] = [key(), key(), key()];

  it("opens what an earlier key sealed, seals under the current one, and reseals only what needs it", () => {
    const sealedUnderOld = new SecretBox(oldKey).seal("whsec_one", "endpoint-1");
    const box = new SecretBox(newKey, [oldKey]);
    expect(box.open(sealedUnderOld, "endpoint-1")).toBe("whsec_one");
    const resealed = box.resealed(sealedUnderOld, "endpoint-1")!;
    expect(new SecretBox(newKey).open(resealed, "endpoint-1")).toBe("whsec_one");
    expect(() => new SecretBox(oldKey).open(resealed, "endpoint-1")).toThrow();
    expect(box.resealed(resealed, "endpoint-1")).toBeNull();
    // Still bound to its endpoint, whichever key opens it.
    expect(() => box.open(sealedUnderOld, "endpoint-2")).toThrow();
    expect(() => box.resealed(sealedUnderOld, "endpoint-2")).toThrow();
    // A key it was never given opens nothing.
    expect(() => new SecretBox(newKey, [otherKey]).open(sealedUnderOld, "endpoint-1")).toThrow(/SECRETS_KEY_PREVIOUS/);
  });

  it("SECRETS_KEY_PREVIOUS: keys separated by commas, each in SECRETS_KEY's format, at most a few", () => {
    expect(parseSecretsKeyList(`${hex(oldKey)}, ${oldKey.toString("base64")} ,`)).toEqual([oldKey, oldKey]);
    expect(parseSecretsKeyList("")).toEqual([]);
    expect(parseSecretsKeyList(`${hex(oldKey)},abc123`)).toBeNull();
    expect(parseSecretsKeyList(Array.from({ length: PREVIOUS_SECRETS_KEYS_MAX + 1 }, () => hex(key())).join(","))).toBeNull();
    expect(() => loadConfig({ SECRETS_KEY_PREVIOUS: "abc123" })).toThrow(/SECRETS_KEY_PREVIOUS=\(hidden, 6 characters\): must be up to/);
    expect(loadConfig({ SECRETS_KEY_PREVIOUS: hex(oldKey) }).SECRETS_KEY_PREVIOUS).toEqual([oldKey]);
    expect(loadConfig({}).SECRETS_KEY_PREVIOUS).toEqual([]);
  });
});

describe(`rotating SECRETS_KEY while teams keep their webhook secrets (${TEST_PROVIDER})`, () => {
  const [keyA, keyB, keyC] = [key(), key(), key()];
  let database: { url: string; drop(): Promise<void> };
  let db: Database;
  let receiver: WebhookReceiver;
  let team: { id: string; mainKey: string };
  /** The endpoints and the secrets their team holds: the rotated one has two during its overlap. */
  const endpoints: { id: string; path: string; secrets: string[] }[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    db = openDatabase(database.url);
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await db?.close();
    await receiver?.close();
    await database?.drop();
  });

  /** A gateway on the shared database with these keys, for the length of `use`. */
  async function withGateway<T>(keys: { SECRETS_KEY: string; SECRETS_KEY_PREVIOUS?: string }, use: (gateway: ReturnType<typeof createGateway>, url: string) => Promise<T>): Promise<T> {
    const config = loadConfig({ DATABASE_URL: database.url, LOG_LEVEL: "silent", ...WEBHOOK_ENV, ...keys });
    const gateway = createGateway({ config, db, logger: createLogger("silent"), clock: systemClock });
    const url = await gateway.listen(0, "127.0.0.1");
    try {
      return await use(gateway, url);
    } finally {
      await gateway.close();
    }
  }

  async function gql(url: string, query: string, variables: Record<string, unknown>) {
    const response = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${team.mainKey}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data: any; errors?: unknown[] };
    expect(body.errors).toBeUndefined();
    return body.data;
  }

  /** Tops the team up and checks that each endpoint's delivery verifies with every secret its team holds. */
  async function expectEveryDeliveryVerified(gateway: ReturnType<typeof createGateway>, amount: number) {
    const before = receiver.received.length;
    await gateway.services.teams.topUp(team.id, amount);
    // This top-up's delivery, by its amount: an earlier one interrupted by a gateway's close may be retried now too.
    const ofThisTopUp = (request: Received) => (JSON.parse(request.body) as { data: { amount?: number } }).data.amount === amount;
    const deliveries = await waitUntil("a delivery to each endpoint", 15_000, () => {
      const fresh = receiver.received.slice(before);
      const each = endpoints.map(({ path }) => fresh.find((request) => request.path === path && ofThisTopUp(request)));
      return each.every((request): request is Received => request !== undefined) ? each : undefined;
    });
    for (const [index, { secrets }] of endpoints.entries()) {
      const delivery = deliveries[index]!;
      for (const secret of secrets) expect(new Webhook(secret).verify(delivery.body, delivery.headers)).toMatchObject({ type: "team.topped_up", data: { amount } });
      expect(delivery.signature.split(" ")).toHaveLength(secrets.length);
    }
  }

  const stored = () => db.prisma.webhookEndpoint.findMany({ orderBy: { id: "asc" }, select: { id: true, secretCiphertext: true, previousSecretCiphertext: true } });
  const reseal = (keys: Record<string, string>) => run(TSX, ["src/cli/admin.ts", "reseal-secrets", "--json"], childEnv({ DATABASE_URL: database.url, ...keys }), 60_000);

  it("under key A: a team makes two endpoints and rotates one secret (so it has two)", async () => {
    await withGateway({ SECRETS_KEY: hex(keyA) }, async (gateway, url) => {
      const created = await gateway.services.teams.createTeam({ name: "Rotating team", balance: 1_000 });
      team = { id: created.team.id, mainKey: created.apiKey };
      for (const path of ["/rotated", "/plain"]) {
        const made = (await gql(url, CREATE_ENDPOINT, { input: { url: `${receiver.url}${path}`, events: ["TEAM_TOPPED_UP"] } })).createWebhookEndpoint;
        endpoints.push({ id: made.endpoint.id, path, secrets: [made.secret] });
      }
      const rotated = await gql(url, `mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`, { id: endpoints[0]!.id });
      endpoints[0]!.secrets.unshift(rotated.rotateWebhookSecret.secret);
      await expectEveryDeliveryVerified(gateway, 101);
    });
  });

  it("under key B with A as SECRETS_KEY_PREVIOUS: every delivery still verifies with the team's secrets", async () => {
    await withGateway({ SECRETS_KEY: hex(keyB), SECRETS_KEY_PREVIOUS: hex(keyA) }, (gateway) => expectEveryDeliveryVerified(gateway, 102));
  });

  it("reseal-secrets seals every secret under B (the overlap's previous one too), and a second run has nothing left to do", async () => {
    const first = await reseal({ SECRETS_KEY: hex(keyB), SECRETS_KEY_PREVIOUS: hex(keyA) });
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ resealed: 2, alreadyCurrent: 0, unreadable: [] });
    const onlyB = new SecretBox(keyB);
    const rows = await stored();
    for (const row of rows) {
      const endpoint = endpoints.find(({ id }) => id === row.id)!;
      expect(onlyB.open(row.secretCiphertext, row.id)).toBe(endpoint.secrets[0]);
      if (endpoint.secrets.length === 2) expect(onlyB.open(row.previousSecretCiphertext!, row.id)).toBe(endpoint.secrets[1]);
      for (const secret of endpoint.secrets) expect(JSON.stringify(row)).not.toContain(secret.slice("whsec_".length));
    }
    const second = await reseal({ SECRETS_KEY: hex(keyB), SECRETS_KEY_PREVIOUS: hex(keyA) });
    expect(JSON.parse(second.stdout)).toEqual({ resealed: 0, alreadyCurrent: 2, unreadable: [] });
    expect(await stored()).toEqual(rows);
  });

  it("under key B alone, A gone: every delivery verifies with the same secrets", async () => {
    await withGateway({ SECRETS_KEY: hex(keyB) }, (gateway) => expectEveryDeliveryVerified(gateway, 103));
  });

  it("with a key that sealed none of them: exit 1 naming every endpoint, nothing written, no secret or key printed", async () => {
    const rows = await stored();
    const wrong = await reseal({ SECRETS_KEY: hex(keyC) });
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.stdout)).toEqual({ resealed: 0, alreadyCurrent: 0, unreadable: rows.map(({ id }) => id) });
    expect(await stored()).toEqual(rows);
    const output = wrong.stdout + wrong.stderr;
    for (const secret of endpoints.flatMap(({ secrets }) => secrets)) expect(output).not.toContain(secret.slice("whsec_".length));
    for (const each of [keyA, keyB, keyC]) expect(output).not.toContain(hex(each));
    const text = await run(TSX, ["src/cli/admin.ts", "reseal-secrets"], childEnv({ DATABASE_URL: database.url, SECRETS_KEY: hex(keyC) }), 60_000);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain("2 endpoint(s) have a signing secret that neither SECRETS_KEY nor SECRETS_KEY_PREVIOUS opens; each needs rotateWebhookSecret");
  });
});
