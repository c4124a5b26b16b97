import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/client.ts";
import { GRAPHIQL_EXAMPLE } from "../src/server.ts";
import { Child, TSX, childEnv, freePort, waitUntil } from "./helpers/process.ts";

/**
 * `npm start` as a newcomer runs it (tsx src/main.ts in a child process, on a
 * free port, against a fresh SQLite file): the demo team and its key on first
 * start only, GraphiQL with the example, and a clear refusal of bad settings.
 */

const START_TIMEOUT_MS = 45_000;
const KEY_PATTERN = /zv_live_[0-9A-Za-z]{32,}/g;

describe("npm start", () => {
  let dir: string;
  const children: Child[] = [];

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "gateway-start-"));
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((child) => child.stop()));
  });
  afterAll(async () => {
    await Promise.all(children.splice(0).map((child) => child.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  function start(env: Record<string, string>): Child {
    const child = new Child(TSX, ["src/main.ts"], childEnv({ LOG_LEVEL: "warn", ...env }));
    children.push(child);
    return child;
  }

  /** Starts the gateway and waits until it answers /healthz. */
  async function startServing(databaseFile: string, env: Record<string, string> = {}) {
    const port = await freePort();
    const child = start({ PORT: String(port), DATABASE_URL: `file:${databaseFile}`, ...env });
    const url = `http://127.0.0.1:${port}`;
    await waitUntil(`the gateway to answer on port ${port}`, START_TIMEOUT_MS, async () => {
      if (!child.running) throw new Error(`exited early:\n${child.stderr}`);
      const response = await fetch(`${url}/healthz`);
      return response.ok ? true : undefined;
    });
    return { child, url };
  }

  async function post(url: string, query: string, key: string) {
    const response = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ query }),
    });
    return { status: response.status, body: (await response.json()) as any };
  }

  describe("against one database file, started twice", () => {
    let databaseFile: string;
    let demoKey: string;

    beforeAll(() => {
      databaseFile = path.join(dir, "twice", "gateway.db");
    });

    it("first start on an empty database creates a demo team and prints its main key once", async () => {
      const { child, url } = await startServing(databaseFile, { NODE_ENV: "development" });
      // The banner is written before the server listens; give the pipe a moment to deliver it.
      const keys = await waitUntil("the demo key on stdout", 5_000, () => {
        const found = child.stdout.match(KEY_PATTERN);
        return found ?? undefined;
      });
      expect(keys).toHaveLength(1);
      demoKey = keys[0]!;
      expect(child.stdout).toContain("Demo team created");
      expect(child.stdout).toContain("/graphql");
      expect(child.stderr).not.toContain(demoKey);

      // The key works: POST ...
      const posted = await post(url, `{ balance { balance currency isSubAccount } viewer { team { name } account { isSubAccount } } }`, demoKey);
      expect(posted.status).toBe(200);
      expect(posted.body.errors).toBeUndefined();
      expect(posted.body.data).toEqual({
        balance: { balance: 100_000, currency: "USD", isSubAccount: false },
        viewer: { team: { name: "Demo team" }, account: { isSubAccount: false } },
      });

      // ... and GET.
      const query = encodeURIComponent(`{ balance { balance currency } }`);
      const got = await fetch(`${url}/graphql?query=${query}`, { headers: { accept: "application/json", authorization: `Bearer ${demoKey}` } });
      expect(got.status).toBe(200);
      expect(await got.json()).toEqual({ data: { balance: { balance: 100_000, currency: "USD" } } });

      // Without the key, the same query is refused.
      const anonymous = await fetch(`${url}/graphql?query=${query}`, { headers: { accept: "application/json" } });
      expect(anonymous.status).toBe(401);

      await child.stop();
    });

    it("a browser asking for /graphql gets GraphiQL with the example operation and the header to fill in", async () => {
      const { child, url } = await startServing(databaseFile, { NODE_ENV: "development" });
      const response = await fetch(`${url}/graphql`, { headers: { accept: "text/html" } });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/text\/html/);
      const html = await response.text();
      expect(html).toMatch(/graphiql/i);
      // The example operation is embedded as a JSON string.
      expect(html).toContain(JSON.stringify(GRAPHIQL_EXAMPLE).slice(1, -1));
      expect(html).toContain("mutation CreateSubAccount");
      expect(html).toContain("Bearer zv_live_...");
      // "/" sends a browser there too.
      const root = await fetch(`${url}/`, { redirect: "manual" });
      expect({ status: root.status, location: root.headers.get("location") }).toEqual({ status: 302, location: "/graphql" });
      await child.stop();
    });

    it("a second start on the same database prints no new key, and the first key still works", async () => {
      const { child, url } = await startServing(databaseFile, { NODE_ENV: "development" });
      const posted = await post(url, `{ balance { balance } }`, demoKey);
      expect(posted.body.data).toEqual({ balance: { balance: 100_000 } });
      await child.stop();
      expect(child.stdout).not.toMatch(/zv_live_/);
      expect(child.stdout).not.toContain("Demo team created");
      const db = openDatabase(`file:${databaseFile}`);
      try {
        expect(await db.prisma.team.count()).toBe(1);
      } finally {
        await db.close();
      }
    });
  });

  it("NODE_ENV=production creates no demo team and prints no key", async () => {
    const databaseFile = path.join(dir, "production", "gateway.db");
    const { child, url } = await startServing(databaseFile, { NODE_ENV: "production" });
    const response = await fetch(`${url}/graphql?query=${encodeURIComponent("{ balance { balance } }")}`, { headers: { accept: "application/json" } });
    expect(response.status).toBe(401);
    await child.stop();
    expect(child.stdout).not.toMatch(/zv_live_/);
    expect(child.stdout).not.toContain("Demo team");
    const db = openDatabase(`file:${databaseFile}`);
    try {
      expect(await db.prisma.team.count()).toBe(0);
      expect(await db.prisma.apiKey.count()).toBe(0);
    } finally {
      await db.close();
    }
  });

  it.each([
    ["PORT=abc", { PORT: "abc" }, "PORT"],
    ["PORT=70000", { PORT: "70000" }, "PORT"],
    ["DATABASE_URL=mysql://x", { DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
    ["LOG_LEVEL=loud", { LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    ["NODE_ENV=staging", { NODE_ENV: "staging" }, "NODE_ENV"],
    ["REDIS_URL=localhost:6379", { REDIS_URL: "localhost:6379" }, "REDIS_URL"],
    ["DEMO_TEAM=yes", { DEMO_TEAM: "yes" }, "DEMO_TEAM"],
  ])("%s stops the start with a message naming the variable", async (_what, bad, variable) => {
    const databaseFile = path.join(dir, `bad-${variable}`, "gateway.db");
    const port = await freePort();
    const child = start({ PORT: String(port), DATABASE_URL: `file:${databaseFile}`, ...bad });
    const finished = await child.waitForExit(START_TIMEOUT_MS);
    expect(finished.code).not.toBe(0);
    expect(finished.code).not.toBeNull();
    expect(finished.stderr).toContain("Invalid configuration");
    expect(finished.stderr).toMatch(new RegExp(`^\\s*${variable}=`, "m"));
    expect(finished.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/); // a message, not a stack trace
    expect(finished.stdout).not.toMatch(/zv_live_/);
    // Stopped before doing anything: no database file was created.
    expect(existsSync(databaseFile)).toBe(false);
  });
});
