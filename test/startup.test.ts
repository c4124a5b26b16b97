import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/client.ts";
import { GRAPHIQL_EXAMPLE } from "../src/graphql/graphiql.ts";
import { Child, START_ARGS, START_COMMAND, childEnv, freePort, waitUntil } from "./helpers/process.ts";

/**
 * `npm start` as a newcomer runs it (its command, node --import tsx src/main.ts,
 * in a child process, on a free port, against a fresh SQLite file; and npm start
 * itself for signals): the demo team and its key on first start only, GraphiQL
 * with the example, clear refusals of bad settings, a clean stop.
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
    const child = new Child(START_COMMAND, START_ARGS, childEnv({ LOG_LEVEL: "warn", ...env }));
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
      expect(child.stdout).not.toContain("no team yet");
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
    const { child, url } = await startServing(databaseFile, { NODE_ENV: "production", SECRETS_KEY: "ab".repeat(32) });
    const response = await fetch(`${url}/graphql?query=${encodeURIComponent("{ balance { balance } }")}`, { headers: { accept: "application/json" } });
    expect(response.status).toBe(401);
    await child.stop();
    expect(child.stdout).not.toMatch(/zv_live_/);
    expect(child.stdout).not.toContain("Demo team");
    // It says how to get a first team and key instead.
    expect(child.stdout).toContain("no team yet");
    expect(child.stdout).toContain("npm run admin -- create-team --name NAME");
    const db = openDatabase(`file:${databaseFile}`);
    try {
      expect(await db.prisma.team.count()).toBe(0);
      expect(await db.prisma.apiKey.count()).toBe(0);
    } finally {
      await db.close();
    }
  });

  it("NODE_ENV=production without SECRETS_KEY stops the start, saying what to set", async () => {
    const databaseFile = path.join(dir, "production-no-key", "gateway.db");
    const child = start({ PORT: String(await freePort()), DATABASE_URL: `file:${databaseFile}`, NODE_ENV: "production" });
    const finished = await child.waitForExit(START_TIMEOUT_MS);
    expect(finished.code).toBe(1);
    expect(finished.stderr).toMatch(/^\s*SECRETS_KEY \(unset\): required when NODE_ENV=production/m);
    expect(existsSync(databaseFile)).toBe(false);
  });

  it.each([
    ["PORT=abc", { PORT: "abc" }, "PORT"],
    ["PORT=70000", { PORT: "70000" }, "PORT"],
    ["DATABASE_URL=mysql://x", { DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
    ["LOG_LEVEL=loud", { LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    ["NODE_ENV=staging", { NODE_ENV: "staging" }, "NODE_ENV"],
    ["REDIS_URL=localhost:6379", { REDIS_URL: "localhost:6379" }, "REDIS_URL"],
    ["DEMO_TEAM=yes", { DEMO_TEAM: "yes" }, "DEMO_TEAM"],
    ["SECRETS_KEY=short", { SECRETS_KEY: "abc123" }, "SECRETS_KEY"],
    ["SECRETS_KEY_PREVIOUS with a short key", { SECRETS_KEY_PREVIOUS: `${"a".repeat(64)},abc123` }, "SECRETS_KEY_PREVIOUS"],
    ["WEBHOOK_TIMEOUT_MS=soon", { WEBHOOK_TIMEOUT_MS: "soon" }, "WEBHOOK_TIMEOUT_MS"],
    ["WEBHOOK_LEASE_MS below the timeout", { WEBHOOK_LEASE_MS: "5000", WEBHOOK_TIMEOUT_MS: "10000" }, "WEBHOOK_LEASE_MS"],
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

  it("a malformed secret setting or a URL with a password: the message names the variable, never the secret", async () => {
    const nearlyAKey = "c0ffee".repeat(10) + "abc"; // 63 hexadecimal characters: a key with a typo, nearly all of it secret
    const settings: Record<string, string>[] = [{ SECRETS_KEY: nearlyAKey }, { SECRETS_KEY_PREVIOUS: nearlyAKey }, { REDIS_URL: `localhost://user:${nearlyAKey}@:x` }];
    for (const bad of settings) {
      const databaseFile = path.join(dir, `secret-${Object.keys(bad)[0]}`, "gateway.db");
      const child = start({ PORT: String(await freePort()), DATABASE_URL: `file:${databaseFile}`, ...bad });
      const finished = await child.waitForExit(START_TIMEOUT_MS);
      expect(finished.code).toBe(1);
      expect(finished.stderr).toMatch(new RegExp(`^\\s*${Object.keys(bad)[0]}=`, "m"));
      expect(finished.stderr + finished.stdout).not.toContain("c0ffeec0ffee");
    }
  });

  /** A message, not a stack trace: no "    at file:line:column" in the output (nor in a JSON log line's "stack"). */
  const STACK_LINE = /\s+at [^\n]+:\d+:\d+/;

  describe("a start that cannot go on says why in a line and exits", () => {
    const servers: Server[] = [];
    const sockets: Socket[] = [];
    afterEach(async () => {
      sockets.splice(0).forEach((socket) => socket.destroy());
      await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
    });

    /** A TCP server of the test's own that accepts connections and never answers. */
    async function listenOn(port: number, host: string): Promise<void> {
      const server = createServer((socket) => void sockets.push(socket));
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, resolve);
      });
    }

    it("the port already in use: one line naming the port and PORT, no stack trace, nothing created", async () => {
      const port = await freePort();
      await listenOn(port, "0.0.0.0");
      const databaseFile = path.join(dir, "port-taken", "gateway.db");
      const finished = await start({ PORT: String(port), DATABASE_URL: `file:${databaseFile}`, NODE_ENV: "development" }).waitForExit(START_TIMEOUT_MS);
      expect(finished.code).toBe(1);
      const lines = finished.stderr.trim().split("\n");
      expect(lines, finished.stderr).toHaveLength(1);
      expect(lines[0]).toContain(`Port ${port} is already in use`);
      expect(lines[0]).toMatch(/\bPORT\b/);
      expect(finished.stderr + finished.stdout).not.toMatch(STACK_LINE);
      // Checked before anything else: no demo key was printed for a gateway that never served.
      expect(finished.stdout).not.toMatch(/zv_live_/);
      expect(existsSync(databaseFile)).toBe(false);
    });

    it.each([
      ["refuses connections (a closed port)", false],
      ["accepts connections but never answers", true],
    ])("Redis that %s: a message naming REDIS_URL, exit non-zero, within seconds", async (_what, listening) => {
      const redisPort = await freePort();
      if (listening) await listenOn(redisPort, "127.0.0.1");
      const port = await freePort();
      const started = Date.now();
      const finished = await start({
        PORT: String(port),
        DATABASE_URL: `file:${path.join(dir, `redis-${redisPort}`, "gateway.db")}`,
        REDIS_URL: `redis://:not-shown@127.0.0.1:${redisPort}`,
      }).waitForExit(20_000);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(finished.code).not.toBe(0);
      expect(finished.code).not.toBeNull();
      expect(finished.stderr).toContain(`REDIS_URL=redis://:***@127.0.0.1:${redisPort}`);
      expect(finished.stderr + finished.stdout).not.toContain("not-shown");
      expect(finished.stderr + finished.stdout).not.toMatch(STACK_LINE);
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    });
  });

  describe("stopped as a process manager or a terminal stops `npm start`", () => {
    /** True while any process of the process group `pgid` exists (a gateway re-parented to init included). */
    function groupAlive(pgid: number): boolean {
      try {
        process.kill(-pgid, 0);
        return true;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === "EPERM";
      }
    }

    it.each([
      ["SIGTERM to the npm process alone (a process manager)", "npm" as const, "SIGTERM" as const],
      ["SIGINT to the whole process group (Ctrl-C in a terminal)", "group" as const, "SIGINT" as const],
    ])("%s shuts the gateway down cleanly and leaves no process behind", async (_what, target, signal) => {
      const port = await freePort();
      // `npm start` itself, as an operator runs it: npm, and whatever its script starts, in a group of their own.
      const child = new Child("npm", ["start"], childEnv({ PORT: String(port), DATABASE_URL: `file:${path.join(dir, `signals-${signal}`, "gateway.db")}`, LOG_LEVEL: "info" }));
      children.push(child);
      const url = `http://127.0.0.1:${port}`;
      await waitUntil(`npm start to answer on port ${port}`, START_TIMEOUT_MS, async () => {
        if (!child.running) throw new Error(`exited early:\n${child.stderr}`);
        return (await fetch(`${url}/healthz`)).ok ? true : undefined;
      });
      const npmPid = child.process.pid!;
      expect(groupAlive(npmPid)).toBe(true);

      process.kill(target === "npm" ? npmPid : -npmPid, signal);

      await waitUntil("the port to stop answering", 10_000, async () => {
        try {
          await fetch(`${url}/healthz`);
          return undefined;
        } catch {
          return true;
        }
      });
      await waitUntil("every process of npm start's group to exit", 10_000, () => (groupAlive(npmPid) ? undefined : true));
      const finished = await child.waitForExit(5_000);
      expect(finished.code, finished.stderr).toBe(0);
      expect(finished.stdout).toContain('"msg":"shutting down"');
      expect(finished.stdout).toContain(`"signal":"${signal}"`);
    });
  });
});
