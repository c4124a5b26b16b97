import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { describe, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { openDatabase, type Database } from "../../src/db/client.ts";
import { createLogger } from "../../src/logger.ts";
import { createGateway, type Gateway } from "../../src/server.ts";
import type { Clock } from "../../src/services/clock.ts";
import { createTestDatabase } from "../helpers/gateway.ts";
import { ROOT } from "../helpers/process.ts";

/**
 * Where the tests save their screenshots: docs/screenshots (shown in README.md)
 * when UPDATE_SCREENSHOTS=1, so a plain test run leaves the checkout as it was;
 * a temporary folder otherwise (the screenshots are still taken).
 */
export const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? path.join(ROOT, "docs", "screenshots") : path.join(tmpdir(), "gateway-screenshots");

/** Debian's chromium (.ci/run installs it): CHROMIUM_PATH when set (and only it), else /usr/bin/chromium or `chromium` on the PATH. */
function findChromium(): string | null {
  const named = process.env.CHROMIUM_PATH;
  if (named !== undefined && named !== "") return existsSync(named) ? named : null;
  if (existsSync("/usr/bin/chromium")) return "/usr/bin/chromium";
  try {
    return execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

export const CHROMIUM = findChromium();

/**
 * A describe block for tests that drive Chromium. Without Chromium they are
 * skipped on a developer's machine, but under CI=true they fail: a missing
 * browser must never pass for a green run.
 */
export function describeInBrowser(name: string, body: () => void): void {
  if (CHROMIUM) return void describe(name, body);
  if (process.env.CI === "true") {
    return void describe(name, () => {
      it("needs Chromium", () => {
        throw new Error("Chromium is missing: install Debian's package (apt-get install -y chromium; .ci/run does) or set CHROMIUM_PATH.");
      });
    });
  }
  describe.skip(`${name} (skipped: no Chromium; apt-get install -y chromium)`, body);
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Every URL the browser asked for (pages, scripts, workers, fetches, WebSockets), and every failure. */
  requests: string[];
  failures: string[];
  /** Content-Security-Policy violations and page errors reported by the pages. */
  problems(): Promise<string[]>;
  close(): Promise<void>;
}

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
/** Nothing resolves but this machine: a request meant for elsewhere fails here (and is still recorded). */
const LOCAL_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost";

/** Chromium with a fresh profile of its own, recording every request it makes. */
export async function openBrowser(viewport = { width: 1280, height: 800 }): Promise<Browser> {
  if (!CHROMIUM) throw new Error("no Chromium");
  const profile = mkdtempSync(path.join(tmpdir(), "chromium-profile-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: [...ARGS, LOCAL_ONLY], viewport });
  const requests: string[] = [];
  const failures: string[] = [];
  const pageErrors: string[] = [];
  context.on("request", (request) => requests.push(request.url()));
  context.on("requestfailed", (request) => failures.push(`${request.url()} ${request.failure()?.errorText ?? ""}`));
  // Runs before any script of the page (and outside its CSP): collects what the policy blocked.
  await context.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __problems: string[] }).__problems = seen;
    document.addEventListener("securitypolicyviolation", (event) => seen.push(`CSP ${event.violatedDirective} blocked ${event.blockedURI}`));
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("websocket", (socket) => requests.push(socket.url()));
  page.on("pageerror", (error) => pageErrors.push(`page error: ${error.message}`));
  return {
    context,
    page,
    requests,
    failures,
    async problems() {
      const reported = await page.evaluate(() => (window as unknown as { __problems?: string[] }).__problems ?? []).catch(() => []);
      return [...pageErrors, ...reported];
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The requests whose origin is not `origin`'s (blob: URLs count by the origin that made them, WebSockets by their host). */
export function foreignRequests(requests: string[], origin: string): string[] {
  const expected = new URL(origin).origin;
  return requests.filter((url) => {
    if (url.startsWith("data:")) return false; // inline, never a request on the network
    const target = new URL(url.startsWith("blob:") ? url.slice("blob:".length) : url.replace(/^ws(s?):/, "http$1:"));
    return target.origin !== expected;
  });
}

export async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage });
}

export interface RestartableGateway {
  readonly url: string;
  readonly gateway: Gateway;
  /** Closes the gateway (its sockets with it), runs `whileDown`, and starts a new one on the same port and database. */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  /** Another gateway on the same database (its own port, its own in-process events). */
  sibling(): Promise<{ url: string; close(): Promise<void> }>;
  close(): Promise<void>;
}

async function serve(databaseUrl: string, port: number, clock?: Clock): Promise<{ url: string; gateway: Gateway; db: Database }> {
  const db = openDatabase(databaseUrl);
  const config = loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: "silent", PORT: String(port), HOST: "127.0.0.1", DELIVERY_STEP_MS: "20" });
  const gateway = createGateway({ config, db, logger: createLogger("silent"), ...(clock ? { clock } : {}) });
  const url = await gateway.listen(port, "127.0.0.1");
  return { url, gateway, db };
}

/**
 * A gateway on a fresh test database (SQLite, or PostgreSQL with
 * TEST_DATABASE=postgresql) that can be restarted in place. `clock`: the
 * gateway's (and its restarts'), e.g. to make history on past days.
 */
export async function startRestartableGateway(clock?: Clock): Promise<RestartableGateway> {
  const database = await createTestDatabase();
  let current = await serve(database.url, 0, clock);
  const port = Number(new URL(current.url).port);
  const stop = async () => {
    await current.gateway.close();
    await current.db.close();
  };
  return {
    get url() {
      return current.url;
    },
    get gateway() {
      return current.gateway;
    },
    async restart(whileDown) {
      await stop();
      await whileDown?.();
      current = await serve(database.url, port, clock);
    },
    async sibling() {
      const other = await serve(database.url, 0);
      return {
        url: other.url,
        async close() {
          await other.gateway.close();
          await other.db.close();
        },
      };
    },
    async close() {
      await stop();
      await database.drop();
    },
  };
}
