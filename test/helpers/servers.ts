import { chmodSync, chownSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { Child, freePort, waitUntil } from "./process.ts";

/** A Redis server of the test's own, on a free port, that the test may stop and start again. */
export class PrivateRedis {
  #child: Child | null = null;
  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.resume();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async resume(): Promise<void> {
    this.#child = new Child("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], process.env);
    await waitUntil("private redis to accept connections", 10_000, () => (this.#child!.stdout.includes("Ready to accept connections") ? true : undefined));
  }

  async stop(): Promise<void> {
    await this.#child?.stop();
    this.#child = null;
  }

  /** Freezes the server (SIGSTOP), as a hung or partitioned Redis behaves: connections stay open, nothing answers. */
  freeze(): void {
    process.kill(this.#child!.process.pid!, "SIGSTOP");
  }

  thaw(): void {
    process.kill(this.#child!.process.pid!, "SIGCONT");
  }
}

const PG_BIN = execFileSync("pg_config", ["--bindir"]).toString().trim();

/**
 * A PostgreSQL cluster of the test's own (initdb in a temporary folder, run as
 * the postgres user), so a test can restart it without touching the shared server.
 */
export class PrivatePostgres {
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(path.join(tmpdir(), "gateway-pg-"));
    chmodSync(dir, 0o755);
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString());
    chownSync(dir, uid, gid);
    const server = new PrivatePostgres(await freePort(), dir);
    server.#asPostgres("initdb", ["-D", server.dataDir, "-A", "trust", "-U", "postgres", "--no-sync"]);
    await server.resume();
    return server;
  }

  get dataDir(): string {
    return path.join(this.dir, "data");
  }

  url(database = "postgres"): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  #asPostgres(tool: string, args: string[]): void {
    execFileSync("runuser", ["-u", "postgres", "--", path.join(PG_BIN, tool), ...args], { stdio: "pipe", timeout: 60_000 });
  }

  async resume(): Promise<void> {
    this.#asPostgres("pg_ctl", [
      "-D", this.dataDir, "-w", "-l", path.join(this.dir, "server.log"),
      "-o", `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start",
    ]);
  }

  async stop(): Promise<void> {
    this.#asPostgres("pg_ctl", ["-D", this.dataDir, "-w", "-m", "fast", "stop"]);
  }

  async destroy(): Promise<void> {
    try {
      await this.stop();
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
