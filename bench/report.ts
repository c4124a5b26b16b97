import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { FanoutResult } from "./fanout-client.ts";
import type { InvariantCheck } from "./invariants.ts";
import type { Machine } from "./lib/machine.ts";
import type { DatabaseKind, Settings } from "./lib/settings.ts";
import type { LoadResult } from "./load.ts";
import type { SqlCountResult } from "./sql-counter.ts";

export interface Measurement {
  id: string;
  title: string;
  database: DatabaseKind;
  runs: LoadResult[];
  median: { rps: number; p50: number; p99: number };
  invariants?: InvariantCheck[];
}

export interface FanoutMeasurement {
  database: DatabaseKind;
  instances: number;
  subscribers: number;
  sendsPerSecond: number;
  seconds: number;
  charges: number;
  expectedDeliveries: number;
  invariants: InvariantCheck;
  client: FanoutResult;
  memory: {
    rssBeforeKib: number[];
    rssAfterKib: number[];
    subscribersPerInstance: number[];
    kibPerSubscription: number[];
    heapUsedAfterGcBeforeKib: number[];
    heapUsedAfterGcAfterKib: number[];
    heapKibPerSubscription: number[];
  };
}

/** The fan-out's ceiling: the same client against bench/raw-broadcast.ts, once per run at each fan-out size. */
export interface RawBroadcastMeasurement {
  subscribers: number;
  sendsPerSecond: number;
  seconds: number;
  /** POST /fire requests answered: each one frame to every subscriber. */
  fires: number;
  expectedDeliveries: number;
  client: FanoutResult;
}

export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  settings: Settings;
  machine: Machine;
  measurements: Measurement[];
  sqlCounts: ({ database: DatabaseKind } & SqlCountResult)[];
  fanouts: FanoutMeasurement[];
  /** Absent from results written before the raw broadcast was measured. */
  rawBroadcasts?: RawBroadcastMeasurement[];
}

/** The hand-written analysis, kept in its own file so that rewriting the report never loses it. */
const NOTES_FILE = path.join("bench", "notes.md");

const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");
const ms = (value: number) => (Number.isFinite(value) ? `${value % 1 === 0 ? value.toFixed(0) : value.toFixed(1)}` : "n/a");
const percent = (ratio: number) => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : "n/a");

interface TargetRow {
  target: string;
  measured: string;
  verdict: "met" | "missed" | "not measured";
}

/** The balance query's share of bare yoga, per database. */
const BALANCE_TARGETS = { sqlite: 0.8, postgresql: 0.7 } as const;

/** What every section of the report reads: the results, a measurement by id, ratios and the runs table. */
interface ReportContext {
  results: BenchResults;
  settings: Settings;
  machine: Machine;
  find(id: string): Measurement | undefined;
  ratio(a?: Measurement, b?: Measurement): number;
  table(measurements: (Measurement | undefined)[]): string[];
}

type Push = (...more: string[]) => void;

function reportContext(results: BenchResults): ReportContext {
  const { settings } = results;
  const runCells = (measurement: Measurement) =>
    Array.from({ length: settings.runs }, (_, index) => {
      const run = measurement.runs[index];
      return run ? `${fixed(run.rps)} / ${ms(run.latencyMs.p50)} / ${ms(run.latencyMs.p99)}` : "";
    });
  return {
    results,
    settings,
    machine: results.machine,
    find: (id) => results.measurements.find((measurement) => measurement.id === id),
    ratio: (a, b) => (a && b ? a.median.rps / b.median.rps : Number.NaN),
    table(measurements) {
      const present = measurements.filter((measurement): measurement is Measurement => measurement !== undefined);
      if (present.length === 0) return ["_not measured in this run_", ""];
      const runHeaders = Array.from({ length: settings.runs }, (_, index) => `run ${index + 1} (req/s / p50 / p99 ms)`);
      return [
        `| what | ${runHeaders.join(" | ")} | median req/s | median p50 ms | median p99 ms |`,
        `|---|${runHeaders.map(() => "---").join("|")}|---|---|---|`,
        ...present.map((m) => `| ${m.title} | ${runCells(m).join(" | ")} | **${fixed(m.median.rps)}** | ${ms(m.median.p50)} | ${ms(m.median.p99)} |`),
        "",
      ];
    },
  };
}

const violations = (measurement?: Measurement) => (measurement?.invariants ?? []).reduce((sum, check) => sum + check.violations, 0);

/** Every target of the issue, measured or not, with its verdict. */
function targetRows({ results, find, ratio }: ReportContext): TargetRow[] {

  const targets: TargetRow[] = [];
  const addTarget = (target: string, value: number, measured: string, met: (value: number) => boolean) =>
    targets.push(Number.isFinite(value) ? { target, measured, verdict: met(value) ? "met" : "missed" } : { target, measured: "-", verdict: "not measured" });
  for (const database of ["sqlite", "postgresql"] as const) {
    const balanceRatio = ratio(find(`${database}.balance`), find(`${database}.bare`));
    addTarget(`balance query >= ${percent(BALANCE_TARGETS[database])} of bare yoga (${database})`, balanceRatio, percent(balanceRatio), (value) => value >= BALANCE_TARGETS[database]);
  }
  const sendsTarget = (id: string, label: string, floor: number, extra: (m: Measurement) => boolean = () => true) => {
    const measurement = find(id);
    addTarget(label, measurement?.median.rps ?? Number.NaN, measurement ? `${fixed(measurement.median.rps)}/s, ${violations(measurement)} violations` : "", (value) => value >= floor && violations(measurement) === 0 && extra(measurement!));
  };
  sendsTarget("sqlite.sends1", "charged sends >= 3,000/s on SQLite, zero invariant violations", 3000);
  sendsTarget("postgresql.sends2", "charged sends >= 2,000/s on PostgreSQL with two instances, zero invariant violations", 2000);
  const [pair, single] = [find("postgresql.sends2"), find("postgresql.sends1")];
  addTarget("two PostgreSQL instances never slower than one", ratio(pair, single), `${percent(ratio(pair, single))} of one instance's sends/s`, (value) => value >= 1);
  // The figures measured before the spend totals, budgets and alerts joined the charge (BENCHMARKS.md of 2026-11-25).
  sendsTarget("sqlite.sends1", "charged sends on SQLite no lower than before the spend totals (1,634/s)", 1634);
  sendsTarget("postgresql.sends2", "charged sends on PostgreSQL, two instances, no lower than before the spend totals (567/s)", 567);
  for (const fan of results.fanouts) {
    const limit = fan.subscribers >= 10_000 ? 250 : 50;
    const where = `${fan.subscribers.toLocaleString("en")} subscribers (${fan.database}, ${fan.instances} instance(s))`;
    addTarget(`fan-out p99 < ${limit} ms at ${where}, every event delivered`, fan.client.latencyMs.p99, `${ms(fan.client.latencyMs.p99)} ms, ${fan.client.deliveries} / ${fan.expectedDeliveries}`, (value) => value < limit && fan.client.deliveries === fan.expectedDeliveries);
    if (fan.subscribers >= 10_000) {
      const heap = Math.max(...fan.memory.heapKibPerSubscription);
      addTarget(`<= 20 KiB heap per idle subscription at ${where}`, heap, `${heap.toFixed(1)} KiB`, (value) => value <= 20);
    }
  }
  for (const count of results.sqlCounts) {
    addTarget(`listing in <= 3 SQL statements (${count.database})`, count.steadyRequest, `${count.steadyRequest}`, (value) => value <= 3);
  }
  const listingRatio = ratio(find("postgresql.listing"), find("postgresql.postgraphile"));
  addTarget("listing at least as fast as PostGraphile (PostgreSQL)", listingRatio, `${percent(listingRatio)} of PostGraphile's req/s`, (value) => value >= 1);
  for (const database of ["sqlite", "postgresql"] as const) {
    const report = find(`${database}.report`);
    addTarget(`one-year daily spend report over >= 1,000,000 ledger entries, p99 < 50 ms (${database})`, report?.median.p99 ?? Number.NaN, report ? `p99 ${ms(report.median.p99)} ms, ${report.invariants?.[0]?.charges ?? "?"} entries` : "", (value) => value < 50 && (report?.invariants?.[0]?.charges ?? 0) >= 1_000_000 && violations(report) === 0);
  }
  return targets;
}

/** The title, and a warning when the figures are drafts or the machine was busy. */
function headerSection({ results, settings, machine }: ReportContext, push: Push): void {
  push(
    "# Benchmarks",
    "",
    `Written by \`npm run bench\` (bench/run.ts) from the figures it measured, ${results.startedAt.slice(0, 16).replace("T", " ")} UTC to ${results.finishedAt.slice(11, 16)} UTC. ` +
      "Only the section \"What holds it back\" is written by hand, in bench/notes.md. The raw numbers of every run are in bench/results/latest.json.",
    "",
  );
  if (settings.quick || settings.runs < 3) {
    push(`> **Draft figures**: a quick run (BENCH_QUICK=1: ${settings.runs} run of ${settings.duration} s per target), not the median of three 8 s runs. Run \`npm run bench\` for the real thing.`, "");
  }
  if (machine.loadAverageAtStart > machine.cores * 0.5) {
    push(`> The machine was busy when the bench started (load average ${machine.loadAverageAtStart} on ${machine.cores} cores): the absolute figures are low; the ratios, measured in alternation, suffer less.`, "");
  }
}

/** The machine, the commands and how each process is started. */
function setupSection({ settings, machine }: ReportContext, push: Push): void {
  push(
    "## Machine",
    "",
    "| | |",
    "|---|---|",
    `| CPU | ${machine.cores} cores, ${machine.cpuModel} |`,
    `| memory | ${machine.memoryGiB} GiB |`,
    `| OS | ${machine.os} |`,
    `| Node | ${machine.node} |`,
    `| PostgreSQL | ${machine.postgresql ?? "not reachable"} |`,
    `| Redis | ${machine.redis ?? "not reachable"} |`,
    `| load generator | autocannon ${machine.autocannon} (programmatic API, in its own process) |`,
    `| load average at start | ${machine.loadAverageAtStart} |`,
    "",
    "Everything runs on this one machine: gateway, load generator, PostgreSQL and Redis share its cores.",
    "",
    "## Commands",
    "",
    "```sh",
    "npm run bench                      # everything below: about 20 minutes",
    "BENCH_QUICK=1 npm run bench        # 2 s runs, 1 run per target: checks that every part works",
    "BENCH_DB=sqlite BENCH_ONLY=sends npm run bench   # a part (writes bench/results/partial.json only)",
    "npm run bench:profile              # CPU profiles of the gateway: balance query, charged sends, fan-out, spend report (SQLite; BENCH_PROFILE_ONLY=sends,...)",
    "npm run bench:report               # rewrites this file from bench/results/latest.json and bench/notes.md, measuring nothing",
    "BENCH_PROFILE_DATABASE=postgresql npm run bench:profile   # the same on PostgreSQL",
    "# bench:profile starts the V8 profiler through the inspector only while the load runs (the .cpuprofile of `node --cpu-prof`,",
    "# without start-up). For a whole process lifetime instead: NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm start",
    "```",
    "",
    `This report: ${settings.runs} measured run(s) of ${settings.duration} s per target, after ${settings.warmup} s of warm-up load; ${settings.connections} connections for queries, ${settings.sendConnections} for sends. ` +
      "Knobs: BENCH_DURATION, BENCH_RUNS, BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_SUBSCRIBERS, BENCH_FANOUT_RATE, BENCH_FANOUT_SECONDS, BENCH_SUBSCRIBERS_LARGE (0: skip), BENCH_FANOUT_LARGE_RATE, BENCH_REPORT_ENTRIES, BENCH_REPORT_CONNECTIONS, BENCH_DB, BENCH_ONLY (balance, sends, listing, sql, report, fanout), BENCH_POSTGRES_URL, BENCH_REDIS_URL.",
    "",
    "Each gateway instance is started as `npm start` starts it:",
    "",
    "```sh",
    "PORT=<free port> HOST=127.0.0.1 DATABASE_URL=<fresh database> LOG_LEVEL=warn DEMO_TEAM=false \\",
    "DELIVERY_STEP_MS=500 RATE_LIMIT_RPS=0 [REDIS_URL=redis://127.0.0.1:6379 REDIS_PREFIX=gateway-bench-<random>:] \\",
    "  node_modules/.bin/tsx src/main.ts",
    "```",
    "",
    "SQLite: a fresh file in a temporary directory. PostgreSQL: a fresh database `gateway_bench_<random>` on 127.0.0.1:5432, migrated by the gateway's start, dropped at the end. " +
      "Seed data goes through the operator CLI (`npm run admin -- create-team --json`) and the GraphQL API (`createSubAccount`). " +
      "Load comes from `tsx bench/load.ts <spec>` (autocannon), the raw-charge ceiling from `tsx bench/raw-charge.ts <spec>`, the subscribers from `tsx bench/fanout-client.ts <spec>`, " +
      "the raw WebSocket broadcast ceiling from `PORT=<free port> tsx bench/raw-broadcast.ts` (fired by `POST /fire` from bench/run.ts): each its own process.",
    "",
  );
}

function targetsSection(context: ReportContext, push: Push): void {
  push(
    "## Targets",
    "",
    "| target | measured | |",
    "|---|---|---|",
    ...targetRows(context).map((row) => `| ${row.target} | ${row.measured} | ${row.verdict === "met" ? "met" : row.verdict === "missed" ? "**missed**" : "not measured"} |`),
    "",
  );
}

function balanceSection({ find, ratio, table }: ReportContext, push: Push): void {
  push(
    "## 1. The balance query and the stack's ceiling",
    "",
    "`{ balance { balance currency isSubAccount totalSpent creditLimit remainingCredit } }` with a sub-account key, against a bare graphql-yoga server (`type Query { hello: String }`, constant resolver, same node:http stack, own process) under the same load shape, run in alternation.",
    "",
    ...table([find("sqlite.bare"), find("sqlite.balance"), find("postgresql.bare"), find("postgresql.balance")]),
  );
  for (const database of ["sqlite", "postgresql"] as const) {
    const value = ratio(find(`${database}.balance`), find(`${database}.bare`));
    if (Number.isFinite(value)) push(`- ${database}: balance / bare yoga = **${percent(value)}** (target ${percent(BALANCE_TARGETS[database])})`);
  }
}

function sendsSection({ results, settings, find, ratio, table }: ReportContext, push: Push): void {
  push(
    "",
    "## 2. Charged sendMessage and the database's ceiling",
    "",
    `\`sendMessage\` (one 1-cent SMS, a unique idempotencyKey each) from ${settings.sendConnections} connections spread round-robin over ${settings.sendAccounts} sub-account keys of one team, every send charged (balance and credit limits large enough that none is refused; any refusal would be counted as a failure). ` +
      "On PostgreSQL, two instances share the database and Redis, the connections alternating between them; one instance is also measured alone (the other stays up, idle). " +
      "The raw ceiling is the same atomic charge, the gateway's own ChargeStore (src/db/sqliteCharges.ts / pgCharges.ts: the same SQL, the same transaction; on SQLite through the same writer thread) called by 50 concurrent callers in a process of their own, with no HTTP, GraphQL, authentication, Prisma read-back of the message, event publishing or delivery simulation, on a team of its own.",
    "",
    ...table([find("sqlite.sends1"), find("sqlite.raw"), find("postgresql.sends2"), find("postgresql.sends1"), find("postgresql.raw")]),
  );
  for (const id of ["sqlite.sends1", "postgresql.sends2", "postgresql.sends1"]) {
    const measurement = find(id);
    const raw = find(`${id.split(".")[0]}.raw`);
    if (measurement && raw) push(`- ${measurement.title}: **${percent(ratio(measurement, raw))}** of the raw ceiling`);
  }
  push("", "Invariants of the charge rule (README.md, Messages and charging) (`checkInvariants` of test/helpers/invariants.ts, read from the database) after every run:", "");
  const invariantRuns = [
    ...results.measurements.filter((m) => m.invariants).map((m) => ({ title: m.title, checks: m.invariants! })),
    ...results.fanouts.map((fan) => ({ title: `fan-out sends (${fan.database})`, checks: [fan.invariants] })),
  ];
  for (const { title, checks } of invariantRuns) {
    const broken = checks.filter((check) => check.violations > 0);
    push(`- ${title}: ${checks.length} check(s), ${broken.length === 0 ? `all hold (${checks[checks.length - 1]?.charges} charges in the ledger at the last)` : `**broken**: ${broken.map((check) => check.message).join("; ")}`}`);
  }
  const failures = results.measurements.filter((m) => m.runs.some((run) => Object.keys(run.failures).length > 0 || run.errors > 0 || run.timeouts > 0));
  if (failures.length > 0) {
    push("", "Failed or refused requests:", "");
    for (const m of failures) push(`- ${m.title}: ${m.runs.map((run) => JSON.stringify({ ...run.failures, ...(run.errors ? { socketErrors: run.errors } : {}), ...(run.timeouts ? { timeouts: run.timeouts } : {}) })).join(", ")}`);
  }
}

function fanoutSection({ results }: ReportContext, push: Push): void {
  push(
    "",
    "## 3. Subscription fan-out",
    "",
    "One client process opens the graphql-ws connections (one subscription each: `spendUpdated` with a main key, all of the team's sub-accounts), 50 handshakes at a time; once they are all acknowledged the gateway's RSS is read again; one charge that every subscriber must receive proves every subscription registered; then another process sends charged messages at a steady rate.",
    "",
    "Latency = the subscriber's `Date.now()` at receipt minus the event's `chargedAt`, on the same machine clock. `chargedAt` is taken by the messages service just before the charge transaction starts, so the interval covers the charge transaction itself (BEGIN to COMMIT), publishing on the event bus (in-process, or through Redis to every instance), the GraphQL execution of the event for every subscriber, the WebSocket write, and the client process parsing the message up to its callback (millisecond resolution). It does not include the HTTP request of the send before pricing.",
    "",
    "Memory per idle subscription = (VmRSS of the node process running src/main.ts after opening the idle subscriptions - before) / subscriptions on that instance, from /proc/<pid>/status of tsx's child process. " +
      "RSS moves with the garbage collector's timing, so the heap is also read right after a full garbage collection (HeapProfiler.collectGarbage, then process.memoryUsage().heapUsed, through the inspector, which these fan-out instances start switched off: `--inspect-port=127.0.0.1:0`, opened by SIGUSR1 for the readings only): the heap retained per subscription.",
    "",
  );
  if (results.fanouts.length === 0) push("_not measured in this run_", "");
  else {
    push(
      "| database | instances | subscribers | charges | deliveries / expected | p50 ms | p90 ms | p99 ms | max ms | RSS before -> after (MiB) | RSS KiB per idle subscription | heap KiB per idle subscription (after GC) |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|",
      ...results.fanouts.map((fan) => {
        const mib = (kib: number) => (kib / 1024).toFixed(0);
        const rss = fan.memory.rssBeforeKib.map((before, index) => `${mib(before)} -> ${mib(fan.memory.rssAfterKib[index]!)}`).join(", ");
        return `| ${fan.database} | ${fan.instances} | ${fan.subscribers} | ${fan.charges} in ${fan.seconds} s (asked: ${fan.sendsPerSecond}/s) | ${fan.client.deliveries} / ${fan.expectedDeliveries} | ${ms(fan.client.latencyMs.p50)} | ${ms(fan.client.latencyMs.p90)} | ${ms(fan.client.latencyMs.p99)} | ${ms(fan.client.latencyMs.max)} | ${rss} | ${fan.memory.kibPerSubscription.map((kib) => kib.toFixed(1)).join(", ")} | ${fan.memory.heapKibPerSubscription.map((kib) => kib.toFixed(1)).join(", ")} |`;
      }),
      "",
    );
  }
  push(...rawBroadcastLines(results));
}

function listingSqlSection({ results }: ReportContext, push: Push): void {
  push(
    "## 4. SQL statements per request: the 100-sub-account listing",
    "",
    "```graphql",
    "subAccounts(first: 100) { totalCount edges { node { id name totalSpent creditLimit apiKeys { id } balance { balance totalSpent creditLimit remainingCredit } } } }",
    "```",
    "",
    "Counted in a process of its own running the gateway in-process (createGateway over real HTTP, as the tests do) with Prisma's query events, plus calls to the raw-SQL charge store (the key's lastUsedAt touch), over a team of 100 sub-accounts with a key each. The first request of a key also touches its lastUsedAt (at most once a minute); the steady figure is a later request.",
    "",
  );
  if (results.sqlCounts.length === 0) push("_not measured in this run_", "");
  for (const count of results.sqlCounts) {
    const shorten = (raw: string) => {
      const sql = raw.replace(/"public"\.|`main`\./g, "").replace(/[`"]/g, "");
      return sql.length > 150 ? `${sql.slice(0, 150)}...` : sql;
    };
    push(`- **${count.database}: ${count.steadyRequest} statements** per request (first request of the key: ${count.firstRequest}):`, "", ...count.statements.map((sql) => `  1. \`${shorten(sql)}\``), "");
  }
}

function postgraphileSection({ find, ratio, table }: ReportContext, push: Push): void {
  const listingRatio = ratio(find("postgresql.listing"), find("postgresql.postgraphile"));
  push(
    "## 5. The listing beside PostGraphile",
    "",
    "PostGraphile 5 (amber preset, grafserv on node:http, own process) over the gateway's own PostgreSQL tables, asked for the same 100 sub-accounts with their keys and the team balance (remainingCredit has no column, so it is not asked):",
    "",
    "```graphql",
    'allAccounts(first: 100, condition: { teamId: $teamId, kind: "sub" }, orderBy: PRIMARY_KEY_ASC) { totalCount nodes { rowId name totalSpent creditLimit apiKeysByAccountId { nodes { rowId } } teamByTeamId { balance } } }',
    "```",
    "",
    "PostGraphile has no authentication here; ours authenticates the main key on every request (a SHA-256 and a key lookup) and checks the caller's rights. PostGraphile 5.1 needs Node 22's `Promise.withResolvers`; on Node 20 the peer process installs the standard polyfill (without it every query returns null). It is not a dependency of the gateway: the benchmark installs it into bench/peer/node_modules (bench/peer/package.json) the first time it is needed.",
    "",
    ...table([find("sqlite.listing"), find("postgresql.listing"), find("postgresql.postgraphile")]),
  );
  if (Number.isFinite(listingRatio)) push(`- ours / PostGraphile = **${percent(listingRatio)}** (target 100%)`, "");
}

function spendReportSection({ settings, find, table }: ReportContext, push: Push): void {
  push(
    "## 6. The spend report over a year",
    "",
    "```graphql",
    "spendReport(from: <365 days ago>, to: <tomorrow>, groupBy: [DAY]) { rows { period messages segments amount } total { messages segments amount } }",
    "```",
    "",
    `A team of ${settings.reportAccounts} sub-accounts with ${(settings.reportEntries ?? 0).toLocaleString("en")} charges over the 365 days before today, round-robin over its sub-accounts and four channels (bench/history.ts writes them in SQL as the charge path would: messages, ledger entries with gapless sequences, the daily totals, the accounts' and the team's figures; then checks in aggregate that the balance, the messages, the daily totals and the accounts agree with the ledger). ` +
      `The main key asks for the whole team's year by day through the gateway, from ${settings.reportConnections} connections at once (several dashboards or a rebilling job).`,
    "",
    ...table([find("sqlite.report"), find("postgresql.report")]),
  );
}

const SECTIONS = [headerSection, setupSection, targetsSection, balanceSection, sendsSection, fanoutSection, listingSqlSection, postgraphileSection, spendReportSection];

export function renderReport(results: BenchResults, notes: string): string {
  const context = reportContext(results);
  const lines: string[] = [];
  const push: Push = (...more) => void lines.push(...more);
  for (const section of SECTIONS) section(context, push);
  push("## What holds it back and what would move it", "", notes.trim(), "");
  return `${lines.join("\n")}\n`;
}

/** The fan-out's raw ceiling beside the gateway's figures at the same size: nothing when the run did not measure it. */
function rawBroadcastLines(results: BenchResults): string[] {
  const raws = results.rawBroadcasts ?? [];
  if (raws.length === 0) return [];
  const gateway = (raw: RawBroadcastMeasurement) =>
    results.fanouts
      .filter((fan) => fan.subscribers === raw.subscribers && fan.sendsPerSecond === raw.sendsPerSecond)
      .map((fan) => `${fan.database}, ${fan.instances} instance(s): ${ms(fan.client.latencyMs.p50)} / **${ms(fan.client.latencyMs.p99)}**`)
      .join("; ") || "not measured";
  return [
    "The ceiling on this machine: the same client process, the same subscriber counts and rate, against a bare `ws` WebSocketServer on node:http (bench/raw-broadcast.ts, own process) that speaks only the graphql-transport-ws handshake (ack, pong, the subscribe id). " +
      "bench/run.ts fires it with `POST /fire` at the same even pace as the charged sends; on each, it builds one `next` frame shaped like the gateway's spendUpdated event per subscriber (`JSON.stringify` of the whole message) and sends it, `chargedAt` being the time the request arrived. " +
      "No GraphQL execution, no database, no event bus: its latency is the machine's WebSocket writes and the client's reading, with no server work beyond a `JSON.stringify` per frame. Measured once per run, right after the gateway's first fan-out at that size, with its instances stopped.",
    "",
    "| subscribers | fires | deliveries / expected | raw ws broadcast p50 / p99 ms (same client) | p90 ms | max ms | gateway fan-out p50 / p99 ms at the same size |",
    "|---|---|---|---|---|---|---|",
    ...raws.map(
      (raw) =>
        `| ${raw.subscribers} | ${raw.fires} in ${raw.seconds} s (asked: ${raw.sendsPerSecond}/s) | ${raw.client.deliveries} / ${raw.expectedDeliveries} | ${ms(raw.client.latencyMs.p50)} / **${ms(raw.client.latencyMs.p99)}** | ${ms(raw.client.latencyMs.p90)} | ${ms(raw.client.latencyMs.max)} | ${gateway(raw)} |`,
    ),
    "",
  ];
}

export function writeReport(results: BenchResults, file: string): void {
  const notesPath = path.join(path.dirname(file), NOTES_FILE);
  const notes = existsSync(notesPath) ? readFileSync(notesPath, "utf8") : "_No notes yet: write them in bench/notes.md._";
  writeFileSync(file, renderReport(results, notes));
}
