import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { Redis } from "ioredis";
import pg from "pg";

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  postgresql: string | null;
  redis: string | null;
  autocannon: string;
  /** 1-minute load average when the bench started: other work on the machine skews the figures. */
  loadAverageAtStart: number;
}

function packageVersion(name: string): string {
  return (JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), "utf8")) as { version: string }).version;
}

export async function describeMachine(postgresAdminUrl: string, redisUrl: string): Promise<Machine> {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
  let postgresql: string | null = null;
  const client = new pg.Client({ connectionString: postgresAdminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    postgresql = (await client.query("SHOW server_version")).rows[0].server_version as string;
  } catch {
    postgresql = null;
  } finally {
    await client.end().catch(() => {});
  }
  let redis: string | null = null;
  const redisClient = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 });
  try {
    await redisClient.connect();
    redis = /redis_version:(\S+)/.exec(await redisClient.info("server"))?.[1] ?? null;
  } catch {
    redis = null;
  } finally {
    redisClient.disconnect();
  }
  let osName = `${os.type()} ${os.release()}`;
  try {
    osName = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? osName;
    osName += `, kernel ${execFileSync("uname", ["-r"]).toString().trim()}`;
  } catch {
    // keep the generic name
  }
  return {
    cpuModel: model,
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: osName,
    node: process.version,
    postgresql,
    redis,
    autocannon: packageVersion("autocannon"),
    loadAverageAtStart: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}
