import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Child, ROOT, childEnv, freePort, run, waitUntil } from "./helpers/process.ts";

/**
 * README.md's "A five-minute tour", run as a reader runs it: `npm start` on a
 * fresh SQLite file, then every ```sh block of the tour in order, in one bash
 * session, with the demo key pasted where the README says `zv_live_...` and
 * the test's port for 4000. Each command must succeed and print what the
 * README shows after it (a ```json block right below its block, or a `# ...`
 * comment right below the command), ids, keys and dates aside. Then the first
 * example of "Messages and charging", with the variables the tour left.
 */

const README = readFileSync(path.join(ROOT, "README.md"), "utf8");
const START_TIMEOUT_MS = 45_000;

/** The text of a `## ` section, up to the next one. */
function section(heading: string): string {
  const start = README.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README.md has no section "## ${heading}"`);
  const end = README.indexOf("\n## ", start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

/** A command of a ```sh block (blocks are split at blank lines), and what the README says it prints. */
interface Step {
  where: string;
  code: string;
  /** The ```json block below the command's block, parsed, or its text when it abbreviates (…). */
  json?: unknown;
  jsonText?: string;
  /** A `# HTTP/1.1 401 ...` comment: the status line `curl -i` prints, and the pairs it quotes. */
  status?: number;
  comment?: string;
}

function steps(markdown: string, name: string): Step[] {
  const fences = [...markdown.matchAll(/```(\w*)\n([\s\S]*?)```/g)];
  const found: Step[] = [];
  fences.forEach((fence, index) => {
    if (fence[1] !== "sh") return;
    const chunks = fence[2]!.split(/\n\s*\n/).filter((chunk) => chunk.split("\n").some((line) => line.trim() !== "" && !line.trim().startsWith("#")));
    chunks.forEach((chunk, chunkIndex) => {
      const step: Step = { where: `${name}, sh block ${index + 1}, command ${chunkIndex + 1}`, code: chunk };
      const comment = chunk.split("\n").find((line) => /^#\s*(HTTP\/1\.1 \d{3}|\{)/.test(line.trim()));
      if (comment) {
        step.comment = comment.replace(/^#\s*/, "");
        const status = /^HTTP\/1\.1 (\d{3})/.exec(step.comment);
        if (status) step.status = Number(status[1]);
      }
      found.push(step);
    });
    // A ```json block right below (nothing but blank lines between) is what the block's last command prints.
    const next = fences[index + 1];
    if (next && next[1] === "json" && markdown.slice(fence.index! + fence[0].length, next.index).trim() === "") {
      const last = found[found.length - 1]!;
      last.jsonText = next[2]!.trim();
      try {
        last.json = JSON.parse(last.jsonText);
      } catch {
        // Abbreviated with "…": compared pair by pair below.
      }
    }
  });
  return found;
}

/** Ids, keys and dates differ from run to run. */
function normalise(text: string): string {
  return text
    .replace(/zv_(live|test)_(sub_)?[0-9A-Za-z]+/g, "<key>")
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, "<date>")
    .replace(/\bc[a-z0-9]{20,30}\b/g, "<id>");
}

/** `actual` has exactly the README's shape and values, ids, keys, dates and cursors aside. */
function expectLike(actual: unknown, expected: unknown, at: string): void {
  if (typeof expected === "string") {
    expect(typeof actual, at).toBe("string");
    if (!/Cursor$/.test(at)) expect(normalise(actual as string), at).toBe(normalise(expected));
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual) && actual.length, at).toBe(expected.length);
    expected.forEach((item, i) => expectLike((actual as unknown[])[i], item, `${at}[${i}]`));
  } else if (expected !== null && typeof expected === "object") {
    expect(actual !== null && typeof actual === "object", at).toBe(true);
    expect(Object.keys(actual as object).sort(), at).toEqual(Object.keys(expected).sort());
    for (const [key, value] of Object.entries(expected)) expectLike((actual as Record<string, unknown>)[key], value, `${at}.${key}`);
  } else {
    expect(actual, at).toEqual(expected);
  }
}

/** The `"name":value` pairs an abbreviated output quotes (values cut with … and cursors left out). */
function quotedPairs(text: string): string[] {
  return [...text.matchAll(/"(\w+)":("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)/g)]
    .filter((match) => !match[2]!.includes("…") && !/Cursor$/.test(match[1]!))
    .map((match) => normalise(match[0]));
}

describe("README.md's five-minute tour", () => {
  let dir: string;
  let gateway: Child;
  let port: number;
  let demoKey: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "gateway-tour-"));
    port = await freePort();
    gateway = new Child("npm", ["start"], childEnv({ PORT: String(port), DATABASE_URL: `file:${path.join(dir, "gateway.db")}`, LOG_LEVEL: "warn", NODE_ENV: "development" }));
    demoKey = await waitUntil("the demo key on stdout", START_TIMEOUT_MS, () => {
      if (!gateway.running) throw new Error(`npm start exited:\n${gateway.stderr}`);
      return /zv_live_[0-9A-Za-z]{32,}/.exec(gateway.stdout)?.[0];
    });
    await waitUntil(`the gateway to answer on port ${port}`, START_TIMEOUT_MS, async () => ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok ? true : undefined));
  });

  afterAll(async () => {
    await gateway?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs top to bottom, each command printing what the README shows, and leaves a $SUB_KEY the next sections can use", async () => {
    const tour = steps(section("A five-minute tour"), "the tour");
    const sending = steps(section("Messages and charging"), "Messages and charging").slice(0, 1);
    // What the tour must show: creating a sub-account, and a new key after its reactivation.
    expect(tour.some((step) => step.code.includes("createSubAccount("))).toBe(true);
    expect(tour.some((step) => step.code.includes("createSubAccountApiKey("))).toBe(true);
    expect(tour.some((step) => /export KEY=zv_live_\.\.\./.test(step.code))).toBe(true);
    expect(sending[0]?.code).toContain("$SUB_KEY");

    const all = [...tour, ...sending];
    const marker = "@@README-TOUR-STEP";
    const script = [
      "set -u -o pipefail",
      ...all.map((step, index) => {
        // What a reader does: paste the demo key, and use their port.
        const code = step.code.replace(/(export KEY=)zv_live_\.\.\./, `$1${demoKey}`).replaceAll("localhost:4000", `localhost:${port}`);
        return `${code}\nprintf '\\n${marker} %s %s\\n' ${index} "$?"`;
      }),
    ].join("\n");
    const file = path.join(dir, "tour.sh");
    writeFileSync(file, script);
    const env = childEnv({});
    for (const name of ["KEY", "SUB_KEY", "SUB_ID", "CREATED", "NEW_KEY"]) delete env[name];
    const result = await run("bash", [file], env, 120_000);
    expect(result.code, result.stderr).toBe(0);

    const outputs = result.stdout.split(new RegExp(`\\n${marker} `));
    expect(outputs, `every step ran:\n${result.stdout}\n${result.stderr}`).toHaveLength(all.length + 1);
    all.forEach((step, index) => {
      const [, , rc] = /^(\d+) (\d+)\n/.exec(outputs[index + 1]!) ?? [];
      const printed = outputs[index]!.replace(/^\d+ \d+\n/, "").trim();
      const at = `${step.where}:\n${step.code}\nprinted:\n${printed}\nstderr:\n${result.stderr}`;
      expect(rc, at).toBe("0");
      if (step.status !== undefined) {
        expect(printed.split("\n")[0], at).toMatch(new RegExp(`^HTTP/1\\.1 ${step.status}\\b`));
      }
      const body = step.status !== undefined ? printed.slice(printed.indexOf("\r\n\r\n") + 4) : printed;
      if (step.json !== undefined) {
        try {
          expectLike(JSON.parse(body), step.json, "output");
        } catch (error) {
          throw new Error(`${(error as Error).message}\n${at}`);
        }
      } else if (step.jsonText !== undefined || step.comment !== undefined) {
        const pairs = quotedPairs(step.jsonText ?? step.comment!);
        expect(pairs.length, at).toBeGreaterThan(0);
        for (const pair of pairs) expect(normalise(body), at).toContain(pair);
      } else if (body.startsWith("{")) {
        expect(JSON.parse(body).errors, at).toBeUndefined();
      }
    });
  });
});
