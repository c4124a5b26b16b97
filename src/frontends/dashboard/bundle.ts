import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/**
 * The dashboard's script and styles, as the gateway serves them. The client
 * is TypeScript in client/ (type-checked with the rest of src/), bundled once
 * per process, on the first request, by esbuild (the bundler tsx runs on):
 * one ES module with graphql-ws's client inside it, nothing fetched from
 * anywhere else.
 */
export interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

const CLIENT_ENTRY = fileURLToPath(new URL("./client/main.ts", import.meta.url));
const STYLESHEET = fileURLToPath(new URL("./dashboard.css", import.meta.url));

function asset(text: string, contentType: string): Asset {
  const body = Buffer.from(text, "utf8");
  return { body, contentType, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` };
}

async function bundleScript(): Promise<Asset> {
  const result = await build({
    entryPoints: [CLIENT_ENTRY],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2020"],
    minify: true,
    legalComments: "none",
    write: false,
    logLevel: "silent",
  });
  return asset(result.outputFiles[0]!.text, "text/javascript; charset=utf-8");
}

const cache = new Map<string, Promise<Asset>>();

/** Built (or read) once; a failure is not kept, so the next request tries again. */
function once(name: string, make: () => Promise<Asset>): Promise<Asset> {
  let pending = cache.get(name);
  if (!pending) {
    pending = make();
    cache.set(name, pending);
    pending.catch(() => cache.delete(name));
  }
  return pending;
}

export const dashboardScript = () => once("script", bundleScript);
export const dashboardStylesheet = () => once("stylesheet", async () => asset(await readFile(STYLESHEET, "utf8"), "text/css; charset=utf-8"));
