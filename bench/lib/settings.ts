/** The bench's knobs, all from the environment, with the defaults `npm run bench` uses. */
function numberFrom(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return value;
}

function listFrom(name: string): string[] | null {
  const raw = process.env[name];
  return raw ? raw.split(",").map((item) => item.trim()).filter(Boolean) : null;
}

export const SECTIONS = ["balance", "sends", "listing", "sql", "report", "fanout"] as const;
export type Section = (typeof SECTIONS)[number];
export const DATABASES = ["sqlite", "postgresql"] as const;
export type DatabaseKind = (typeof DATABASES)[number];

export interface Settings {
  quick: boolean;
  /** Seconds of one measured run. */
  duration: number;
  /** Seconds of warm-up load before a target's first run (not measured). */
  warmup: number;
  /** Measured runs per target (the report gives their median). */
  runs: number;
  connections: number;
  sendConnections: number;
  sendAccounts: number;
  listingAccounts: number;
  /** The spend report's team: charges of history (over a year), its sub-accounts, and the report's concurrent readers. */
  reportEntries: number;
  reportAccounts: number;
  reportConnections: number;
  fanoutSubscribers: number;
  /** Charged sends per second during the fan-out measurement, and for how long. */
  fanoutRate: number;
  fanoutSeconds: number;
  /** The large fan-out: subscribers (0: not measured) and its charged sends per second. */
  fanoutLargeSubscribers: number;
  fanoutLargeRate: number;
  sections: Section[];
  databases: DatabaseKind[];
  postgresAdminUrl: string;
  redisUrl: string;
  /** Whether this is the full default bench (only then BENCHMARKS.md and latest.json are rewritten, unless BENCH_WRITE=1). */
  complete: boolean;
  write: boolean;
}

export function loadSettings(): Settings {
  const quick = process.env.BENCH_QUICK === "1";
  const sections = (listFrom("BENCH_ONLY") ?? [...SECTIONS]) as Section[];
  const databases = (listFrom("BENCH_DB") ?? [...DATABASES]) as DatabaseKind[];
  for (const section of sections) if (!SECTIONS.includes(section)) throw new Error(`BENCH_ONLY: unknown section ${section} (one of ${SECTIONS.join(", ")})`);
  for (const database of databases) if (!DATABASES.includes(database)) throw new Error(`BENCH_DB: unknown database ${database} (one of ${DATABASES.join(", ")})`);
  const complete = sections.length === SECTIONS.length && databases.length === DATABASES.length;
  return {
    quick,
    duration: numberFrom("BENCH_DURATION", quick ? 2 : 8),
    warmup: numberFrom("BENCH_WARMUP", quick ? 1 : 3),
    runs: Math.round(numberFrom("BENCH_RUNS", quick ? 1 : 3)),
    connections: Math.round(numberFrom("BENCH_CONNECTIONS", 50)),
    sendConnections: 50,
    sendAccounts: 20,
    listingAccounts: 100,
    reportEntries: Math.round(numberFrom("BENCH_REPORT_ENTRIES", 1_000_000)),
    reportAccounts: 50,
    reportConnections: Math.round(numberFrom("BENCH_REPORT_CONNECTIONS", 4)),
    fanoutSubscribers: Math.round(numberFrom("BENCH_SUBSCRIBERS", 1000)),
    fanoutRate: numberFrom("BENCH_FANOUT_RATE", 10),
    fanoutSeconds: numberFrom("BENCH_FANOUT_SECONDS", quick ? 4 : 10),
    fanoutLargeSubscribers: process.env.BENCH_SUBSCRIBERS_LARGE === "0" ? 0 : Math.round(numberFrom("BENCH_SUBSCRIBERS_LARGE", 10_000)),
    fanoutLargeRate: numberFrom("BENCH_FANOUT_LARGE_RATE", 1),
    sections,
    databases,
    postgresAdminUrl: process.env.BENCH_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres",
    redisUrl: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
    complete,
    write: complete || process.env.BENCH_WRITE === "1",
  };
}
