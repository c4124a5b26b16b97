/**
 * `npx tsx bench/heap-diff.ts [subscribers]`: what one idle graphql-ws subscription keeps on the gateway's
 * heap, by constructor: a heap snapshot of a fresh gateway process (SQLite) before and after opening the
 * subscriptions (the fan-out client's), both after a full garbage collection, compared by constructor name.
 * How the "heap per idle subscription" of BENCHMARKS.md was broken down.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startFanoutClient } from "./fanout-client.ts";
import { startGatewayProcess, graphqlOk } from "./gateway.ts";
import { openInspector, type Inspector } from "./lib/inspector.ts";
import { cleanUpOnSignals, onCleanup, runCleanups, sleep } from "./lib/proc.ts";
import { BALANCE_QUERY } from "./queries.ts";
import { seedTeam } from "./seed.ts";

const subscribers = Number(process.argv[2] ?? 1000);

async function snapshot(inspector: Inspector): Promise<Map<string, { count: number; size: number }>> {
  await inspector.send("HeapProfiler.collectGarbage");
  const chunks: string[] = [];
  inspector.on("HeapProfiler.addHeapSnapshotChunk", (params: { chunk: string }) => chunks.push(params.chunk));
  await inspector.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  const snapshot = JSON.parse(chunks.join("")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((field) => fields.indexOf(field));
  // Arrays, strings and hidden objects are named by what holds them: the first retainer's name and the edge.
  const edgeFields = snapshot.snapshot.meta.edge_fields;
  const edgeWidth = edgeFields.length;
  const [edgeTypeAt, edgeNameAt, toAt] = ["type", "name_or_index", "to_node"].map((field) => edgeFields.indexOf(field));
  const edgeTypes = snapshot.snapshot.meta.edge_types[0];
  const edgeCountAt = fields.indexOf("edge_count");
  const holder = new Map<number, string>();
  for (let index = 0, edge = 0; index < snapshot.nodes.length; index += width) {
    const ownerType = types[snapshot.nodes[index + typeAt!]!]!;
    const owner = ownerType === "object" || ownerType === "closure" ? snapshot.strings[snapshot.nodes[index + nameAt!]!] : `(${ownerType})`;
    for (let count = snapshot.nodes[index + edgeCountAt]!; count > 0; count -= 1, edge += edgeWidth) {
      const to = snapshot.edges[edge + toAt!]!;
      if (holder.has(to)) continue;
      const edgeType = edgeTypes[snapshot.edges[edge + edgeTypeAt!]!];
      const named = (ownerType === "object" || ownerType === "closure") && (edgeType === "property" || edgeType === "internal" || edgeType === "context");
      const edgeName = snapshot.strings[snapshot.edges[edge + edgeNameAt!]!];
      holder.set(to, named ? `${owner || `<${ownerType}>`}.${edgeName}` : `${owner}`);
    }
  }
  if (process.env.HEAP_SHAPES === "1") {
    const shapes = new Map<string, number>();
    for (let index = 0, edge = 0; index < snapshot.nodes.length; index += width) {
      const count = snapshot.nodes[index + edgeCountAt]!;
      const type = types[snapshot.nodes[index + typeAt!]!]!;
      const name = snapshot.strings[snapshot.nodes[index + nameAt!]!];
      const keys: string[] = [];
      for (let at = 0; at < count; at += 1) {
        const e = edge + at * edgeWidth;
        if (edgeTypes[snapshot.edges[e + edgeTypeAt!]!] === "property") keys.push(snapshot.strings[snapshot.edges[e + edgeNameAt!]!]!);
      }
      edge += count * edgeWidth;
      if (type === "object" && keys.length >= 8) {
        const signature = `${name}{${keys.slice(0, 14).join(",")}${keys.length > 14 ? ",…" : ""}}`;
        shapes.set(signature, (shapes.get(signature) ?? 0) + 1);
      }
    }
    for (const [signature, count] of [...shapes.entries()].filter(([, count]) => count >= 900).sort((a, b) => b[1] - a[1]).slice(0, 25)) {
      process.stdout.write(`shape x${count}: ${signature}\n`);
    }
  }
  const byName = new Map<string, { count: number; size: number }>();
  for (let index = 0; index < snapshot.nodes.length; index += width) {
    const type = types[snapshot.nodes[index + typeAt!]!]!;
    const name =
      type === "object" || type === "closure" ? `${type}:${snapshot.strings[snapshot.nodes[index + nameAt!]!]}` : `(${type}) in ${holder.get(index) ?? "?"}`;
    const entry = byName.get(name) ?? { count: 0, size: 0 };
    entry.count += 1;
    entry.size += snapshot.nodes[index + sizeAt!]!;
    byName.set(name, entry);
  }
  return byName;
}

async function main(): Promise<void> {
  cleanUpOnSignals();
  const dir = mkdtempSync(path.join(tmpdir(), "gateway-heap-"));
  onCleanup(`remove ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
  const databaseUrl = `file:${path.join(dir, "heap.db")}`;
  const gateway = await startGatewayProcess({ label: "gateway (heap)", databaseUrl, nodeOptions: "--inspect-port=127.0.0.1:0" });
  onCleanup("stop gateway", () => gateway.stop());
  const team = await seedTeam({ gatewayUrl: gateway.url, databaseUrl, name: "Heap", balance: 1e12, subAccounts: 20, creditLimit: 1e10 });
  for (let index = 0; index < 20; index += 1) await graphqlOk(gateway.url, team.mainKey, BALANCE_QUERY);
  const inspector = await openInspector(gateway.nodePid, () => gateway.proc.stderr);
  const before = await snapshot(inspector);
  const client = startFanoutClient({ urls: [gateway.url], key: team.mainKey, subscribers });
  await client.waitForLine((line) => line === "CONNECTED", 120_000);
  await sleep(3000);
  const after = await snapshot(inspector);
  inspector.close();
  const rows = [...after.entries()]
    .map(([name, { count, size }]) => ({ name, count: count - (before.get(name)?.count ?? 0), size: size - (before.get(name)?.size ?? 0) }))
    .filter((row) => row.size > 0)
    .sort((a, b) => b.size - a.size);
  const total = rows.reduce((sum, row) => sum + row.size, 0);
  process.stdout.write(`${subscribers} idle subscriptions: ${(total / subscribers / 1024).toFixed(1)} KiB of self size each (objects added)\n`);
  for (const row of rows.slice(0, 40)) process.stdout.write(`${(row.size / subscribers).toFixed(0).padStart(6)} B  ${(row.count / subscribers).toFixed(1).padStart(6)} per sub  ${row.name}\n`);
  client.write("FINISH");
  await client.finished(30_000).catch(() => client.stop());
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`heap-diff failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => runCleanups());
