import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/process.ts";

/**
 * The shape ARCHITECTURE.md describes, checked on the code: no import cycle in
 * src/, the layers import only downward, and no function longer than
 * FUNCTION_MAX_LINES (small functions whose names say what they guarantee).
 */

const SRC = path.join(ROOT, "src");
const FUNCTION_MAX_LINES = 80;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (name === "generated") return [];
    if (statSync(file).isDirectory()) return sourceFiles(file);
    return file.endsWith(".ts") ? [file] : [];
  });
}

const files = sourceFiles(SRC);
const parsed = new Map(files.map((file) => [file, ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true)]));
const relative = (file: string) => path.relative(SRC, file);

/** The src/ files a file imports (type-only imports included: they tie the modules' meaning together too). */
function importsOf(file: string): string[] {
  const out: string[] = [];
  parsed.get(file)!.forEachChild((node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const target = node.moduleSpecifier.text;
      if (target.startsWith(".")) out.push(path.resolve(path.dirname(file), target));
    }
  });
  return out.filter((target) => parsed.has(target));
}

const graph = new Map(files.map((file) => [file, importsOf(file)]));

function findCycle(): string[] | null {
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (file: string): string[] | null => {
    if (state.get(file) === "done") return null;
    if (state.get(file) === "visiting") return [...stack.slice(stack.indexOf(file)), file];
    state.set(file, "visiting");
    stack.push(file);
    for (const next of graph.get(file)!) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(file, "done");
    return null;
  };
  for (const file of files) {
    const cycle = visit(file);
    if (cycle) return cycle.map(relative);
  }
  return null;
}

/** Each folder's layer, and the layers it may import (ARCHITECTURE.md, "Layers"). */
const MAY_IMPORT: Record<string, string[]> = {
  domain: ["domain"],
  events: ["events", "domain"],
  db: ["db", "domain"],
  services: ["services", "events", "db", "domain"],
  edge: ["edge", "services", "domain", "config", "logger"],
  graphql: ["graphql", "edge", "services", "events", "db", "domain", "generated"],
  rest: ["rest", "edge", "services", "events", "domain"],
  frontends: ["frontends", "graphql", "edge", "domain"],
  cli: ["cli", "services", "events", "db", "domain", "config"],
};

function layerOf(file: string): string {
  const [first] = relative(file).split(path.sep);
  return first!.replace(/\.ts$/, "");
}

describe("the structure of src/", () => {
  it("has no import cycle", () => {
    expect(findCycle()).toBeNull();
  });

  it("imports only downward between layers", () => {
    const wrong: string[] = [];
    for (const [file, targets] of graph) {
      const allowed = MAY_IMPORT[layerOf(file)];
      if (!allowed) continue; // the composition root (server.ts, main.ts) and the shared config and logger
      for (const target of targets) {
        if (!allowed.includes(layerOf(target))) wrong.push(`${relative(file)} -> ${relative(target)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("keeps GraphQL out of the services: no graphql, graphql-yoga or Pothos import there", () => {
    const wrong = files
      .filter((file) => layerOf(file) === "services")
      .filter((file) => /from "(graphql|graphql-yoga|@pothos\/[^"]+|graphql-ws[^"]*)"/.test(readFileSync(file, "utf8")))
      .map(relative);
    expect(wrong).toEqual([]);
  });

  it(`has no function longer than ${FUNCTION_MAX_LINES} lines`, () => {
    const long: string[] = [];
    for (const [file, source] of parsed) {
      const visit = (node: ts.Node) => {
        if (ts.isFunctionLike(node) && "body" in node && node.body) {
          const start = source.getLineAndCharacterOfPosition(node.getStart()).line;
          const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
          if (end - start + 1 > FUNCTION_MAX_LINES) long.push(`${relative(file)}:${start + 1} (${end - start + 1} lines)`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    expect(long).toEqual([]);
  });
});
