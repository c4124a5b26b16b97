import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, childEnv, run } from "./helpers/process.ts";

/**
 * `npm install` as a newcomer runs it, on this machine's Node: no package of
 * package-lock.json may declare engines that exclude it (npm's EBADENGINE
 * warnings). A dry run from the lock file, in a directory of its own, checks
 * what a real install checks without installing anything.
 */
describe("npm install", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "gateway-install-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`on Node ${process.versions.node} installs the lock file's packages with no engine warning`, async () => {
    for (const file of ["package.json", "package-lock.json"]) copyFileSync(path.join(ROOT, file), path.join(dir, file));
    // --offline: the lock file alone must describe the whole tree.
    const result = await run("npm", ["install", "--prefix", dir, "--dry-run", "--ignore-scripts", "--no-audit", "--no-fund", "--offline"], childEnv({}), 120_000);
    const output = result.stdout + result.stderr;
    expect(result.code, output).toBe(0);
    expect(output).toMatch(/added \d+ packages/);
    const warned = [...output.matchAll(/EBADENGINE\s+package: '([^']+)'/g)].map((match) => match[1]);
    expect(warned, output.slice(0, 4000)).toEqual([]);
    expect(output).not.toContain("EBADENGINE");
  });
});
