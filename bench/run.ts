/**
 * `npm run bench`: starts the gateway as real processes (as `npm start` does),
 * drives it from separate load processes on SQLite and on PostgreSQL, and
 * writes BENCHMARKS.md and bench/results/latest.json. See BENCHMARKS.md for
 * what each figure covers; the knobs are in bench/lib/settings.ts.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { startBareYoga, BARE_QUERY } from "./bare-yoga.ts";
import { finishFanoutClient, primeFanoutClient, startFanoutClient } from "./fanout-client.ts";
import { graphqlOk, startGatewayProcess, type GatewayProcess } from "./gateway.ts";
import { checkTeam, countCharges, type InvariantCheck } from "./invariants.ts";
import { memoryAfterGc, openInspector } from "./lib/inspector.ts";
import { describeMachine } from "./lib/machine.ts";
import { redisPrefixRemovedAtEnd } from "./lib/redis.ts";
import { ROOT, cleanUpOnSignals, isTearingDown, onCleanup, runCleanups, sleep } from "./lib/proc.ts";
import { loadSettings, type DatabaseKind, type Settings } from "./lib/settings.ts";
import { median } from "./lib/stats.ts";
import { SEND_INPUT, SEND_MUTATION, runLoad, type LoadResult } from "./load.ts";
import { POSTGRAPHILE_LISTING, ensurePostgraphileInstalled, startPostgraphile } from "./postgraphile-peer.ts";
import { checkHistory, seedHistory } from "./history.ts";
import { BALANCE_QUERY, LISTING_QUERY, REPORT_QUERY, body } from "./queries.ts";
import { startRawBroadcast } from "./raw-broadcast.ts";
import { runRawCharges } from "./raw-charge.ts";
import { writeReport, type BenchResults, type FanoutMeasurement, type Measurement, type RawBroadcastMeasurement } from "./report.ts";
import { seedTeam, type SeededTeam } from "./seed.ts";
import { countListingSql } from "./sql-counter.ts";

const settings = loadSettings();
const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
const uniqueSuffix = () => randomBytes(4).toString("hex");

/** Something measured several times: how to warm it up and how to run it once. */
interface Target {
  id: string;
  title: string;
  database: DatabaseKind;
  warmup(): Promise<unknown>;
  run(index: number): Promise<LoadResult>;
  /** After each run, e.g. the invariant check. */
  after?(index: number): Promise<InvariantCheck>;
}

function figures(runs: LoadResult[]) {
  return { rps: median(runs.map((run) => run.rps)), p50: median(runs.map((run) => run.latencyMs.p50)), p99: median(runs.map((run) => run.latencyMs.p99)) };
}

/** Warms every target, then runs them in turn (A, B, A, B...), so drift on a busy machine hits both sides of a ratio alike. */
async function measureTogether(targets: Target[]): Promise<Measurement[]> {
  for (const target of targets) {
    log(`warm-up: ${target.title}`);
    await target.warmup();
  }
  const measured = targets.map((target) => ({ target, runs: [] as LoadResult[], invariants: [] as InvariantCheck[] }));
  for (let index = 0; index < settings.runs; index += 1) {
    for (const entry of measured) {
      const result = await entry.target.run(index);
      entry.runs.push(result);
      let note = "";
      if (entry.target.after) {
        const check = await entry.target.after(index);
        entry.invariants.push(check);
        note = check.violations === 0 ? `, invariants hold (${check.charges} charges)` : `, INVARIANT BROKEN: ${check.message}`;
      }
      const failures = Object.keys(result.failures).length ? `, failures ${JSON.stringify(result.failures)}` : "";
      log(`run ${index + 1}/${settings.runs} ${entry.target.title}: ${result.rps.toFixed(0)}/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms${failures}${note}`);
    }
  }
  return measured.map(({ target, runs, invariants }) => ({
    id: target.id,
    title: target.title,
    database: target.database,
    runs,
    median: figures(runs),
    ...(target.after ? { invariants } : {}),
  }));
}

function loadTarget(id: string, title: string, database: DatabaseKind, spec: Omit<Parameters<typeof runLoad>[0], "duration" | "label">, after?: Target["after"]): Target {
  const withRunId = (runId: string) => (spec.send ? { ...spec, send: { ...spec.send, runId } } : spec);
  return {
    id,
    title,
    database,
    warmup: () => runLoad({ ...withRunId(`warmup-${id}-${uniqueSuffix()}`), label: `${title} (warm-up)`, duration: settings.warmup }),
    run: (index) => runLoad({ ...withRunId(`${id}-${index}-${uniqueSuffix()}`), label: title, duration: settings.duration }),
    after,
  };
}

function rawTarget(id: string, title: string, database: DatabaseKind, databaseUrl: string, team: SeededTeam): Target {
  const spec = { databaseUrl, teamId: team.teamId, accounts: team.subAccounts.map(({ id, apiKeyId }) => ({ id, apiKeyId })), concurrency: settings.sendConnections };
  return {
    id,
    title,
    database,
    warmup: () => runRawCharges({ ...spec, label: `${title} (warm-up)`, duration: settings.warmup, runId: `warmup-${uniqueSuffix()}` }),
    run: (index) => runRawCharges({ ...spec, label: title, duration: settings.duration, runId: `${id}-${index}-${uniqueSuffix()}` }),
  };
}

interface Phase {
  database: DatabaseKind;
  databaseUrl: string;
  redis?: { url: string; prefix: string };
}

const wants = (section: Settings["sections"][number]) => settings.sections.includes(section);

async function startInstances(phase: Phase, count: number, tag: string, nodeOptions?: string): Promise<GatewayProcess[]> {
  const instances: GatewayProcess[] = [];
  // One after the other: the first applies the migrations.
  for (let index = 0; index < count; index += 1) {
    const label = `gateway ${phase.database} ${tag}${count > 1 ? ` #${index + 1}` : ""}`;
    instances.push(await startGatewayProcess({ label, databaseUrl: phase.databaseUrl, redisUrl: phase.redis?.url, redisPrefix: phase.redis?.prefix, nodeOptions }));
  }
  return instances;
}

async function databasePhase(phase: Phase, results: BenchResults): Promise<void> {
  const { database, databaseUrl } = phase;
  const scaledOut = database === "postgresql";
  log(`${database}: starting ${scaledOut ? "two gateway instances (shared PostgreSQL and Redis)" : "the gateway"}`);
  const instances = await startInstances(phase, scaledOut ? 2 : 1, "main");
  const [first] = instances as [GatewayProcess];

  log(`${database}: seeding through the operator CLI and the GraphQL API`);
  const sendsTeam = await seedTeam({ gatewayUrl: first.url, databaseUrl, name: "Bench sends", balance: 1e12, subAccounts: settings.sendAccounts, creditLimit: 1e10 });
  const rawTeam = wants("sends") ? await seedTeam({ gatewayUrl: first.url, databaseUrl, name: "Bench raw", balance: 1e12, subAccounts: settings.sendAccounts, creditLimit: 1e10 }) : null;
  const listingTeam =
    wants("listing") || wants("sql")
      ? await seedTeam({ gatewayUrl: first.url, databaseUrl, name: "Bench listing", balance: 5e6, subAccounts: settings.listingAccounts, creditLimit: 50_000 })
      : null;

  if (wants("balance")) {
    const subKey = sendsTeam.subAccounts[0]!.key;
    await graphqlOk(first.url, subKey, BALANCE_QUERY);
    const bare = await startBareYoga();
    const shape = { connections: settings.connections };
    results.measurements.push(
      ...(await measureTogether([
        loadTarget(`${database}.bare`, `bare graphql-yoga { hello } (${database} phase)`, database, { ...shape, urls: [bare.url], query: { body: body(BARE_QUERY) } }),
        loadTarget(`${database}.balance`, `balance query, sub-account key (${database})`, database, { ...shape, urls: [first.url], query: { body: body(BALANCE_QUERY), key: subKey } }),
      ])),
    );
    await bare.stop();
  }

  if (wants("sends")) {
    const keys = sendsTeam.subAccounts.map((account) => account.key);
    const checkSends = () => checkTeam(databaseUrl, sendsTeam.teamId);
    const shape = { connections: settings.sendConnections };
    const targets: Target[] = scaledOut
      ? [
          loadTarget(`${database}.sends2`, `charged sendMessage, 2 instances (${database})`, database, { ...shape, urls: instances.map((instance) => instance.url), send: { keys, runId: "" } }, checkSends),
          loadTarget(`${database}.sends1`, `charged sendMessage, 1 instance (${database})`, database, { ...shape, urls: [first.url], send: { keys, runId: "" } }, checkSends),
        ]
      : [loadTarget(`${database}.sends1`, `charged sendMessage (${database})`, database, { ...shape, urls: [first.url], send: { keys, runId: "" } }, checkSends)];
    targets.push(rawTarget(`${database}.raw`, `raw charge SQL through the driver (${database})`, database, databaseUrl, rawTeam!));
    const measured = await measureTogether(targets);
    const raw = measured.find((measurement) => measurement.id.endsWith(".raw"))!;
    log(`${database}: checking the invariants of the raw-charge team`);
    raw.invariants = [await checkTeam(databaseUrl, rawTeam!.teamId)];
    results.measurements.push(...measured);
  }

  if (wants("listing") && listingTeam) {
    const ours = await graphqlOk<{ subAccounts: { edges: unknown[] } }>(first.url, listingTeam.mainKey, LISTING_QUERY);
    if (ours.subAccounts.edges.length !== settings.listingAccounts) throw new Error(`the listing returned ${ours.subAccounts.edges.length} sub-accounts`);
    const shape = { connections: settings.connections };
    const targets = [loadTarget(`${database}.listing`, `listing of 100 sub-accounts with keys and balance (${database})`, database, { ...shape, urls: [first.url], query: { body: body(LISTING_QUERY), key: listingTeam.mainKey } })];
    let stopPeer: (() => Promise<void>) | null = null;
    if (database === "postgresql") {
      const peer = await startPostgraphile(databaseUrl, log);
      stopPeer = () => peer.stop();
      const variables = { teamId: listingTeam.teamId };
      const response = await fetch(`${peer.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: body(POSTGRAPHILE_LISTING, variables) });
      const peerResult = (await response.json()) as { data?: { allAccounts: { nodes: unknown[] } }; errors?: unknown };
      if (peerResult.errors || peerResult.data?.allAccounts.nodes.length !== settings.listingAccounts) {
        throw new Error(`PostGraphile's listing is not the same 100 sub-accounts: ${JSON.stringify(peerResult).slice(0, 500)}`);
      }
      targets.push(loadTarget(`${database}.postgraphile`, "PostGraphile v5 listing, same tables (no auth)", database, { ...shape, urls: [peer.url], query: { body: body(POSTGRAPHILE_LISTING, variables) } }));
    }
    results.measurements.push(...(await measureTogether(targets)));
    await stopPeer?.();
  }

  if (wants("sql") && listingTeam) {
    log(`${database}: counting the listing's SQL statements`);
    results.sqlCounts.push({ database, ...(await countListingSql({ databaseUrl, mainKey: listingTeam.mainKey, expected: settings.listingAccounts })) });
  }

  if (wants("report")) results.measurements.push(await spendReportOverAYear(phase, first));

  await Promise.all(instances.map((instance) => instance.stop()));
  if (wants("fanout")) await fanoutSizes(phase, sendsTeam, results);
}

/** Each fan-out size on fresh instances, then (once per run) the raw broadcast at the same size. */
async function fanoutSizes(phase: Phase, team: SeededTeam, results: BenchResults): Promise<void> {
  const sizes = [{ tag: "fan-out", subscribers: settings.fanoutSubscribers, rate: settings.fanoutRate }];
  if (settings.fanoutLargeSubscribers > 0) sizes.push({ tag: "fan-out (large)", subscribers: settings.fanoutLargeSubscribers, rate: settings.fanoutLargeRate });
  for (const { tag, subscribers, rate } of sizes) {
    // Fresh processes: the memory baseline should not carry the garbage of the load above.
    // With an inspector that stays off until the memory reading asks for a garbage collection through it.
    const instances = await startInstances(phase, phase.database === "postgresql" ? 2 : 1, tag, "--inspect-port=127.0.0.1:0");
    results.fanouts.push(await fanout(phase, instances, team, subscribers, rate));
    await Promise.all(instances.map((instance) => instance.stop()));
    // Right after the gateway's figure, its instances stopped, so both see the machine in the same state;
    // the ceiling does not depend on the database, so the first phase's reading serves them all.
    const raws = (results.rawBroadcasts ??= []);
    if (!raws.some((raw) => raw.subscribers === subscribers && raw.sendsPerSecond === rate)) raws.push(await rawBroadcast(subscribers, rate));
  }
}

/** The same client, subscriber count, rate and PRIME/FINISH protocol as fanout(), against bench/raw-broadcast.ts. */
async function rawBroadcast(subscribers: number, rate: number): Promise<RawBroadcastMeasurement> {
  log(`raw ws broadcast: ${subscribers} subscribers, ${rate} fires/s for ${settings.fanoutSeconds} s`);
  const server = await startRawBroadcast();
  try {
    const client = startFanoutClient({ urls: [server.url], key: "raw-broadcast", subscribers });
    await client.waitForLine((line) => line === "CONNECTED", 300_000);
    // fanout() reads the memory for about this long after CONNECTED: the measured window starts as settled here.
    await sleep(3_000);
    await primeFanoutClient(client, () => server.fire());
    const fires = await server.fireAtRate(rate, settings.fanoutSeconds);
    await sleep(2_000);
    const result = await finishFanoutClient(client);
    await client.finished(30_000).catch(() => client.stop());
    const expected = fires * subscribers;
    log(`raw ws broadcast: p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, ${result.deliveries}/${expected} deliveries`);
    return { subscribers, sendsPerSecond: rate, seconds: settings.fanoutSeconds, fires, expectedDeliveries: expected, client: result };
  } finally {
    await server.stop();
  }
}

/** The one-year daily spend report of a team with `reportEntries` charges of history, through the gateway. */
async function spendReportOverAYear(phase: Phase, gateway: GatewayProcess): Promise<Measurement> {
  const { database, databaseUrl } = phase;
  const team = await seedTeam({ gatewayUrl: gateway.url, databaseUrl, name: "Bench report", balance: 1e12, subAccounts: settings.reportAccounts, creditLimit: null });
  log(`${database}: writing ${settings.reportEntries.toLocaleString("en")} charges of history over 365 days`);
  const seededAt = Date.now();
  await seedHistory({ database, databaseUrl, team, entries: settings.reportEntries, days: 365 });
  const consistent = await checkHistory(database, databaseUrl, team.teamId);
  if (consistent.violations > 0) throw new Error(`the seeded history is inconsistent: ${consistent.message}`);
  log(`${database}: history written in ${((Date.now() - seededAt) / 1000).toFixed(0)} s, ${consistent.charges} charges, invariants hold`);
  const today = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  const variables = { from: new Date(today - 365 * 86_400_000).toISOString(), to: new Date(today + 86_400_000).toISOString() };
  const report = await graphqlOk<{ spendReport: { rows: unknown[]; total: { messages: number } } }>(gateway.url, team.mainKey, REPORT_QUERY, variables).catch((error: unknown) => {
    throw new Error(`the report failed: ${String(error)}\n${gateway.proc.output()}`);
  });
  if (report.spendReport.total.messages !== settings.reportEntries || report.spendReport.rows.length < 365) {
    throw new Error(`the report does not cover the history: ${report.spendReport.rows.length} days, ${report.spendReport.total.messages} messages`);
  }
  const title = `spend report: one year by day, ${settings.reportEntries.toLocaleString("en")} ledger entries, ${settings.reportConnections} readers (${database})`;
  const spec = { connections: settings.reportConnections, urls: [gateway.url], query: { body: body(REPORT_QUERY, variables), key: team.mainKey } };
  const [measured] = await measureTogether([loadTarget(`${database}.report`, title, database, spec, () => checkHistory(database, databaseUrl, team.teamId))]);
  return measured!;
}

/** heapUsed right after a full GC, through the instance's inspector (opened for this reading only). */
async function heapAfterGc(instance: GatewayProcess): Promise<number> {
  const inspector = await openInspector(instance.nodePid, () => instance.proc.stderr);
  try {
    return (await memoryAfterGc(inspector)).heapUsedKib;
  } finally {
    inspector.close();
  }
}

async function fanout(phase: Phase, instances: GatewayProcess[], team: SeededTeam, subscribers: number, rate: number): Promise<FanoutMeasurement> {
  const { database } = phase;
  log(`${database}: fan-out, ${subscribers} graphql-ws subscribers over ${instances.length} instance(s)`);
  // A little traffic first, so the baseline is a warmed-up process rather than a just-started one.
  for (const instance of instances) for (let index = 0; index < 20; index += 1) await graphqlOk(instance.url, team.mainKey, BALANCE_QUERY);
  await sleep(2_000);
  const rssBefore = instances.map((instance) => instance.rssKib());
  const heapBefore = await Promise.all(instances.map(heapAfterGc));
  const client = startFanoutClient({ urls: instances.map((instance) => instance.url), key: team.mainKey, subscribers });
  await client.waitForLine((line) => line === "CONNECTED", 300_000);
  await sleep(3_000);
  const rssAfter = instances.map((instance) => instance.rssKib());
  const heapAfter = await Promise.all(instances.map(heapAfterGc));
  // The client opens subscriber i on instance i mod n.
  const perInstance = instances.map((_, index) => Math.floor(subscribers / instances.length) + (index < subscribers % instances.length ? 1 : 0));
  const kibPerSubscription = instances.map((_, index) => (rssAfter[index]! - rssBefore[index]!) / perInstance[index]!);
  const heapKibPerSubscription = instances.map((_, index) => (heapAfter[index]! - heapBefore[index]!) / perInstance[index]!);

  // One charge that every subscriber must see: then all subscriptions are registered, and the measured window starts.
  await primeFanoutClient(client, () => graphqlOk(instances[0]!.url, team.subAccounts[0]!.key, SEND_MUTATION, { input: SEND_INPUT }));
  const chargesBefore = await countCharges(phase.databaseUrl, team.teamId);

  await runLoad({
    label: `fan-out sender (${database})`,
    urls: instances.map((instance) => instance.url),
    // One connection per send a second: each waits for its answer, so fewer could not keep the rate when sends are slow.
    connections: Math.max(1, Math.round(rate)),
    duration: settings.fanoutSeconds,
    overallRate: rate,
    send: { keys: team.subAccounts.map((account) => account.key), runId: `fanout-${uniqueSuffix()}` },
  });
  // The sender stops at its deadline; the sends in flight still commit and are delivered.
  const charges = (await countCharges(phase.databaseUrl, team.teamId)) - chargesBefore;
  await sleep(2_000);
  const result = await finishFanoutClient(client);
  await client.finished(30_000).catch(() => client.stop());
  const expected = charges * subscribers;
  const invariants = await checkTeam(phase.databaseUrl, team.teamId);
  log(`${database}: fan-out p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, ${result.deliveries}/${expected} deliveries, ${kibPerSubscription.map((kib) => kib.toFixed(1)).join(" / ")} KiB RSS, ${heapKibPerSubscription.map((kib) => kib.toFixed(1)).join(" / ")} KiB heap (after GC) per idle subscription`);
  return {
    database,
    instances: instances.length,
    subscribers,
    sendsPerSecond: rate,
    seconds: settings.fanoutSeconds,
    charges,
    expectedDeliveries: expected,
    invariants,
    client: result,
    memory: {
      rssBeforeKib: rssBefore,
      rssAfterKib: rssAfter,
      subscribersPerInstance: perInstance,
      kibPerSubscription,
      heapUsedAfterGcBeforeKib: heapBefore,
      heapUsedAfterGcAfterKib: heapAfter,
      heapKibPerSubscription,
    },
  };
}

async function createPostgresDatabase(): Promise<Phase> {
  const name = `gateway_bench_${uniqueSuffix()}`;
  const admin = new pg.Client({ connectionString: settings.postgresAdminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  onCleanup(`drop database ${name}`, async () => {
    const client = new pg.Client({ connectionString: settings.postgresAdminUrl });
    await client.connect();
    try {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } finally {
      await client.end();
    }
  });
  const url = new URL(settings.postgresAdminUrl);
  url.pathname = `/${name}`;
  const prefix = redisPrefixRemovedAtEnd(settings.redisUrl, "gateway-bench", uniqueSuffix());
  return { database: "postgresql", databaseUrl: url.toString(), redis: { url: settings.redisUrl, prefix } };
}

async function main(): Promise<void> {
  cleanUpOnSignals();
  const startedAt = new Date();
  const machine = await describeMachine(settings.postgresAdminUrl, settings.redisUrl);
  log(`${machine.cores} cores (${machine.cpuModel}), load average ${machine.loadAverageAtStart}; ${settings.runs} run(s) of ${settings.duration} s per target${settings.quick ? " (BENCH_QUICK)" : ""}`);
  const results: BenchResults = { startedAt: startedAt.toISOString(), finishedAt: "", settings, machine, measurements: [], sqlCounts: [], fanouts: [], rawBroadcasts: [] };
  // Before any measurement: the PostgreSQL listing is compared with PostGraphile, installed on first use.
  if (wants("listing") && settings.databases.includes("postgresql")) await ensurePostgraphileInstalled(log);
  try {
    for (const database of settings.databases) {
      if (database === "sqlite") {
        const dir = mkdtempSync(path.join(tmpdir(), "gateway-bench-"));
        onCleanup(`remove ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
        await databasePhase({ database, databaseUrl: `file:${path.join(dir, "bench.db")}` }, results);
      } else {
        await databasePhase(await createPostgresDatabase(), results);
      }
      await runCleanups();
    }
  } finally {
    await runCleanups();
  }
  results.finishedAt = new Date().toISOString();
  const resultsDir = path.join(ROOT, "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const jsonFile = path.join(resultsDir, settings.write ? "latest.json" : "partial.json");
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  log(`raw figures: ${path.relative(ROOT, jsonFile)}`);
  if (settings.write) {
    writeReport(results, path.join(ROOT, "BENCHMARKS.md"));
    log("report: BENCHMARKS.md");
  } else {
    log("a partial run (BENCH_ONLY / BENCH_DB): BENCHMARKS.md left as it is (BENCH_WRITE=1 to rewrite it)");
  }
}

main().catch(async (error: unknown) => {
  if (isTearingDown()) return;
  process.stderr.write(`\nbench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  await runCleanups();
  process.exit(1);
});
