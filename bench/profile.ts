/**
 * `npm run bench:profile`: V8 CPU profiles of one gateway process (the node
 * process running src/main.ts, as `npm start` runs it, on a fresh SQLite file
 * by default or BENCH_PROFILE_DATABASE=postgresql) under the balance query and
 * under charged sends. The profiler is switched on through the inspector only
 * while the load runs, so start-up and seeding stay out of the profile (the
 * same .cpuprofile format as `node --cpu-prof`). Writes the profiles and a
 * summary of self time by function and by module to bench/results/profiles/.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { finishFanoutClient, primeFanoutClient, startFanoutClient } from "./fanout-client.ts";
import { startGatewayProcess, graphqlOk, type GatewayProcess } from "./gateway.ts";
import { openInspector } from "./lib/inspector.ts";
import { redisPrefixRemovedAtEnd } from "./lib/redis.ts";
import { ROOT, cleanUpOnSignals, onCleanup, runCleanups, threadCounters, type ThreadCounters } from "./lib/proc.ts";
import { runLoad, type LoadSpec } from "./load.ts";
import { SEND_INPUT, SEND_MUTATION } from "./load.ts";
import { seedHistory } from "./history.ts";
import { BALANCE_QUERY, LISTING_QUERY, REPORT_QUERY, body } from "./queries.ts";
import { seedTeam } from "./seed.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const seconds = Number(process.env.BENCH_PROFILE_SECONDS ?? 8);
/**
 * Which profiles to take (BENCH_PROFILE_ONLY=balance,sends,fanout,listing,report,pair; default all but pair).
 * `pair` (PostgreSQL only) starts two more instances sharing the database and Redis, and profiles the first
 * under sends spread over both, then under the same sends to it alone (the other up and idle), as
 * `npm run bench` measures two instances against one: the CPU per charge, module by module, and the main
 * thread's CPU and context switches per charge read from /proc in runs without the profiler.
 */
const only = (process.env.BENCH_PROFILE_ONLY ?? "balance,sends,fanout,listing,report").split(",");
const reportEntries = Number(process.env.BENCH_REPORT_ENTRIES ?? 1_000_000);
const fanoutSubscribers = Number(process.env.BENCH_PROFILE_SUBSCRIBERS ?? 1000);
const fanoutRate = Number(process.env.BENCH_PROFILE_FANOUT_RATE ?? 10);
const outDir = path.join(ROOT, "bench", "results", "profiles");
const PAIR_WARMUP_SECONDS = 10;
const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const log = (message: string) => process.stderr.write(`[profile] ${message}\n`);

/** Where a frame's code lives: a package of node_modules, a file of ours, or node/V8 itself. */
export function moduleOf(frame: CallFrame): string {
  const url = frame.url;
  if (!url) return frame.functionName.startsWith("(") ? frame.functionName : "(native: V8 builtins and C++ bindings)";
  if (url.startsWith("node:")) return "node: (core)";
  if (url.startsWith("wasm://")) return `${url} (WebAssembly: Prisma's query compiler)`;
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url.replace(/.*node_modules\/\.pnpm\/[^/]+\//, ""));
  if (packageMatch) return packageMatch[1]!;
  const ours = /\/(src\/.+|bench\/.+)$/.exec(url);
  return ours ? ours[1]!.replace(/\?.*$/, "") : url;
}

export function summarize(profile: CpuProfile, top = 25): string {
  const byNode = new Map<number, number>();
  for (let index = 0; index < profile.samples.length; index += 1) {
    const delta = profile.timeDeltas[index + 1] ?? 0;
    byNode.set(profile.samples[index]!, (byNode.get(profile.samples[index]!) ?? 0) + delta);
  }
  const total = [...byNode.values()].reduce((sum, value) => sum + value, 0);
  const functions = new Map<string, number>();
  const modules = new Map<string, number>();
  for (const node of profile.nodes) {
    const self = byNode.get(node.id) ?? 0;
    if (self === 0) continue;
    const frame = node.callFrame;
    const where = frame.url ? `${moduleOf(frame)}:${frame.lineNumber + 1}` : "";
    const key = `${frame.functionName || "(anonymous)"} ${where}`.trim();
    functions.set(key, (functions.get(key) ?? 0) + self);
    const module = moduleOf(frame);
    modules.set(module, (modules.get(module) ?? 0) + self);
  }
  const rows = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, micros]) => `| ${((micros / total) * 100).toFixed(1)}% | ${(micros / 1000).toFixed(0)} ms | \`${name}\` |`);
  return [
    `${(total / 1e6).toFixed(1)} s sampled (wall clock of the main thread, self time: "(idle)" is the event loop waiting, the rest is CPU work).`,
    "",
    "By module:",
    "",
    "| share | self | module |",
    "|---|---|---|",
    ...rows(modules),
    "",
    "By function:",
    "",
    "| share | self | function |",
    "|---|---|---|",
    ...rows(functions),
    "",
  ].join("\n");
}

/** After a warm-up, `gateway`'s CPU profile while the load runs `seconds` (saved as `<name>.cpuprofile`). */
async function profileDuringLoad(gateway: GatewayProcess, name: string, spec: Omit<LoadSpec, "duration" | "label">) {
  log(`${name}: warm-up`);
  // Sends need idempotency keys of their own per load run: reused ones would measure the duplicate path.
  const fresh = (suffix: string) => (spec.send ? { ...spec, send: { ...spec.send, runId: `${spec.send.runId}-${suffix}` } } : spec);
  await runLoad({ ...fresh("warm-up"), label: `${name} warm-up`, duration: 3 });
  const cdp = await openInspector(gateway.nodePid, () => gateway.proc.stderr);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
  await cdp.send("Profiler.start");
  log(`${name}: ${seconds} s under load, profiling`);
  const result = await runLoad({ ...fresh("profiled"), label: name, duration: seconds });
  const { profile } = await cdp.send<{ profile: CpuProfile }>("Profiler.stop");
  cdp.close();
  writeFileSync(path.join(outDir, `${name}.cpuprofile`), JSON.stringify(profile));
  return { result, profile };
}

async function profileUnderLoad(gateway: GatewayProcess, name: string, spec: Omit<LoadSpec, "duration" | "label">): Promise<string> {
  const { result, profile } = await profileDuringLoad(gateway, name, spec);
  return `## ${name}: ${result.rps.toFixed(0)} req/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms during the profile\n\n${summarize(profile)}`;
}

/** Self time by module, in microseconds; "(idle)" left out. */
function selfTimeByModule(profile: CpuProfile): Map<string, number> {
  const byNode = new Map<number, number>();
  profile.samples.forEach((node, index) => byNode.set(node, (byNode.get(node) ?? 0) + (profile.timeDeltas[index + 1] ?? 0)));
  const modules = new Map<string, number>();
  for (const node of profile.nodes) {
    const module = moduleOf(node.callFrame);
    if (module === "(idle)") continue;
    modules.set(module, (modules.get(module) ?? 0) + (byNode.get(node.id) ?? 0));
  }
  return modules;
}

/**
 * Two instances on PostgreSQL and Redis, as `npm run bench` runs them: the first one's CPU per charge when the
 * sends are spread over both, against the same when it takes them all (the other up, idle), module by module.
 */
async function profilePair(databaseUrl: string, redisPrefix: string): Promise<string> {
  const start = (label: string) => startGatewayProcess({ label, databaseUrl, redisUrl, redisPrefix, nodeOptions: "--inspect-port=127.0.0.1:0" });
  const [first, second] = [await start("pair #1 (profiled)"), await start("pair #2")];
  try {
    const team = await seedTeam({ gatewayUrl: first.url, databaseUrl, name: "Profile pair", balance: 1e12, subAccounts: 20, creditLimit: 1e10 });
    const send = { keys: team.subAccounts.map((account) => account.key), runId: `profile-pair-${randomBytes(4).toString("hex")}` };
    const runs = [
      { name: "pair-both", title: "two instances (the profiled one takes half the sends)", urls: [first.url, second.url], share: 0.5 },
      { name: "pair-alone", title: "one instance (the other up, idle)", urls: [first.url], share: 1 },
    ];
    // Both instances' code optimised by V8 before either profile, whichever runs first.
    log(`pair: ${PAIR_WARMUP_SECONDS} s of sends over both instances and ${PAIR_WARMUP_SECONDS} s to the first alone (warm-up)`);
    for (const run of runs) await runLoad({ label: "pair warm-up", urls: run.urls, connections: 50, duration: PAIR_WARMUP_SECONDS, send: { ...send, runId: `${send.runId}-warm-up-${run.name}` } });
    const measured = [];
    for (const run of runs) {
      // Read from /proc during a run of its own: the profiler's sampling would add to the thread's CPU.
      const before = threadCounters(first.nodePid);
      const unprofiled = await runLoad({ label: `${run.name} (no profiler)`, urls: run.urls, connections: 50, duration: seconds, send: { ...send, runId: `${send.runId}-${run.name}-proc` } });
      const mainThread = countersPerCharge(before, threadCounters(first.nodePid), unprofiled.ok * run.share);
      const { result, profile } = await profileDuringLoad(first, run.name, { urls: run.urls, connections: 50, send: { ...send, runId: `${send.runId}-${run.name}` } });
      const charges = result.ok * run.share;
      measured.push({ ...run, result, charges, modules: selfTimeByModule(profile), unprofiled, mainThread });
    }
    return pairSummary(measured);
  } finally {
    await Promise.all([first.stop(), second.stop()]);
  }
}

/** A table row: the two figures and their difference, with `digits` decimals. */
function differenceRow(name: string, a: number, b: number, digits = 1): string {
  return `| ${name} | ${a.toFixed(digits)} | ${b.toFixed(digits)} | ${(a - b >= 0 ? "+" : "") + (a - b).toFixed(digits)} |`;
}

/** The main thread's counters between two readings, per charge through the instance. */
function countersPerCharge(before: ThreadCounters, after: ThreadCounters, charges: number): ThreadCounters {
  return {
    cpuMs: (after.cpuMs - before.cpuMs) / charges,
    voluntarySwitches: (after.voluntarySwitches - before.voluntarySwitches) / charges,
    involuntarySwitches: (after.involuntarySwitches - before.involuntarySwitches) / charges,
  };
}

interface PairRun {
  title: string;
  result: { rps: number; ok: number };
  charges: number;
  modules: Map<string, number>;
  unprofiled: { rps: number };
  mainThread: ThreadCounters;
}

function pairSummary(measured: PairRun[]): string {
  const [both, alone] = measured as [(typeof measured)[0], (typeof measured)[0]];
  const perCharge = (run: typeof both, micros: number) => micros / run.charges;
  const total = (run: typeof both) => [...run.modules.values()].reduce((sum, value) => sum + value, 0);
  const names = [...new Set([...both.modules.keys(), ...alone.modules.keys()])]
    .sort((a, b) => perCharge(both, both.modules.get(b) ?? 0) - perCharge(both, both.modules.get(a) ?? 0))
    .slice(0, 25);
  return [
    "## sends: two instances against one, the CPU per charge of the profiled instance",
    "",
    ...measured.map((run) => `- ${run.title}: ${run.result.rps.toFixed(0)} sends/s in all, ${run.charges.toFixed(0)} of them through the profiled instance.`),
    "",
    "Microseconds of the profiled instance's main thread (CPU, self time, \"(idle)\" left out) per charge it answered:",
    "",
    "| module | two instances | one instance | difference |",
    "|---|---|---|---|",
    differenceRow("**all**", perCharge(both, total(both)), perCharge(alone, total(alone))),
    ...names.map((name) => differenceRow(`\`${name}\``, perCharge(both, both.modules.get(name) ?? 0), perCharge(alone, alone.modules.get(name) ?? 0))),
    "",
    `The same main thread read from /proc (${seconds} s runs of their own, without the profiler: ${both.unprofiled.rps.toFixed(0)} and ${alone.unprofiled.rps.toFixed(0)} sends/s), per charge it answered:`,
    "",
    "| reading | two instances | one instance | difference |",
    "|---|---|---|---|",
    differenceRow("CPU, µs (user + system)", both.mainThread.cpuMs * 1000, alone.mainThread.cpuMs * 1000),
    differenceRow("voluntary context switches (the thread waited: nothing to do)", both.mainThread.voluntarySwitches, alone.mainThread.voluntarySwitches, 3),
    differenceRow("involuntary context switches (its core taken away)", both.mainThread.involuntarySwitches, alone.mainThread.involuntarySwitches, 3),
    "",
  ].join("\n");
}

/**
 * The gateway delivering charges to `fanoutSubscribers` graphql-ws subscriptions (main key, every sub-account)
 * while `fanoutRate` sends a second are charged: where each delivered event's CPU goes.
 */
async function profileFanout(gateway: GatewayProcess, team: Awaited<ReturnType<typeof seedTeam>>): Promise<string> {
  const client = startFanoutClient({ urls: [gateway.url], key: team.mainKey, subscribers: fanoutSubscribers });
  try {
    await client.waitForLine((line) => line === "CONNECTED", 120_000);
    await primeFanoutClient(client, () => graphqlOk(gateway.url, team.subAccounts[0]!.key, SEND_MUTATION, { input: SEND_INPUT }));
    const cdp = await openInspector(gateway.nodePid, () => gateway.proc.stderr);
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
    await cdp.send("Profiler.start");
    log(`fan-out: ${seconds} s of ${fanoutRate} sends a second to ${fanoutSubscribers} subscribers, profiling`);
    const keys = team.subAccounts.map((account) => account.key);
    await runLoad({ label: "fan-out sender", urls: [gateway.url], connections: Math.max(1, Math.round(fanoutRate)), duration: seconds, overallRate: fanoutRate, send: { keys, runId: `profile-fanout-${randomBytes(4).toString("hex")}` } });
    const { profile } = await cdp.send<{ profile: CpuProfile }>("Profiler.stop");
    cdp.close();
    writeFileSync(path.join(outDir, "fanout.cpuprofile"), JSON.stringify(profile));
    const { latencyMs, deliveries } = await finishFanoutClient(client);
    return `## fan-out: ${deliveries} deliveries to ${fanoutSubscribers} subscribers, p50 ${latencyMs.p50} ms, p99 ${latencyMs.p99} ms during the profile\n\n${summarize(profile)}`;
  } finally {
    await client.finished(30_000).catch(() => client.stop());
  }
}

/** The one-year daily spend report of a team with `reportEntries` charges of history, under 4 readers (as `npm run bench`). */
async function profileReport(gateway: GatewayProcess, databaseUrl: string): Promise<string> {
  const team = await seedTeam({ gatewayUrl: gateway.url, databaseUrl, name: "Profile report", balance: 1e12, subAccounts: 50, creditLimit: null });
  log(`report: writing ${reportEntries} charges of history`);
  await seedHistory({ database: databaseUrl.startsWith("file:") ? "sqlite" : "postgresql", databaseUrl, team, entries: reportEntries, days: 365 });
  const today = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  const variables = { from: new Date(today - 365 * 86_400_000).toISOString(), to: new Date(today + 86_400_000).toISOString() };
  return profileUnderLoad(gateway, "report", { urls: [gateway.url], connections: 4, query: { body: body(REPORT_QUERY, variables), key: team.mainKey } });
}

async function main(): Promise<void> {
  cleanUpOnSignals();
  mkdirSync(outDir, { recursive: true });
  let databaseUrl: string;
  if (process.env.BENCH_PROFILE_DATABASE === "postgresql") {
    const name = `gateway_profile_${randomBytes(4).toString("hex")}`;
    const adminUrl = process.env.BENCH_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    onCleanup(`drop database ${name}`, async () => {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    });
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
  } else {
    const dir = mkdtempSync(path.join(tmpdir(), "gateway-profile-"));
    onCleanup(`remove ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
    databaseUrl = `file:${path.join(dir, "profile.db")}`;
  }
  // The inspector stays off until SIGUSR1 and then listens on a free port of 127.0.0.1.
  const gateway = await startGatewayProcess({ label: "gateway (profiled)", databaseUrl, nodeOptions: "--inspect-port=127.0.0.1:0" });
  const team = await seedTeam({ gatewayUrl: gateway.url, databaseUrl, name: "Profile", balance: 1e12, subAccounts: 20, creditLimit: 1e10 });
  const subKey = team.subAccounts[0]!.key;
  await graphqlOk(gateway.url, subKey, BALANCE_QUERY);
  const sections: string[] = [];
  if (only.includes("balance")) {
    sections.push(await profileUnderLoad(gateway, "balance", { urls: [gateway.url], connections: 50, query: { body: body(BALANCE_QUERY), key: subKey } }));
  }
  if (only.includes("sends")) {
    const keys = team.subAccounts.map((account) => account.key);
    sections.push(await profileUnderLoad(gateway, "sends", { urls: [gateway.url], connections: 50, send: { keys, runId: `profile-${randomBytes(4).toString("hex")}` } }));
  }
  if (only.includes("fanout")) sections.push(await profileFanout(gateway, team));
  if (only.includes("listing")) {
    const listingTeam = await seedTeam({ gatewayUrl: gateway.url, databaseUrl, name: "Profile listing", balance: 5e6, subAccounts: 100, creditLimit: 50_000 });
    sections.push(await profileUnderLoad(gateway, "listing", { urls: [gateway.url], connections: 10, query: { body: body(LISTING_QUERY), key: listingTeam.mainKey } }));
  }
  if (only.includes("report")) sections.push(await profileReport(gateway, databaseUrl));
  if (only.includes("pair")) {
    if (databaseUrl.startsWith("file:")) throw new Error("the pair profile runs on PostgreSQL: BENCH_PROFILE_DATABASE=postgresql");
    await gateway.stop();
    sections.push(await profilePair(databaseUrl, redisPrefixRemovedAtEnd(redisUrl, "gateway-profile", randomBytes(4).toString("hex"))));
  }
  const summary = `# CPU profile of the gateway (${databaseUrl.startsWith("file:") ? "SQLite" : "PostgreSQL"})\n\n${sections.join("\n")}`;
  writeFileSync(path.join(outDir, "summary.md"), summary);
  process.stdout.write(summary);
  log(`profiles and summary in ${path.relative(ROOT, outDir)}/ (open a .cpuprofile in Chrome DevTools or speedscope)`);
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`profile failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => runCleanups());
