import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The project root (where package.json is). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** tsx, as `npm run admin` runs it (`npm start` runs `node --import tsx`, the same loader in one process). */
export const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
/** What `npm start` runs (package.json), without npm: one node process with tsx's loader. */
export const START_COMMAND = process.execPath;
export const START_ARGS = ["--import", "tsx", "src/main.ts"];

/** The environment of a child process: this one's, minus the gateway's own variables, plus `overrides`. */
export function childEnv(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ["NODE_ENV", "HOST", "PORT", "DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "PURGE_INTERVAL_MS", "MAX_BODY_BYTES", "DEMO_TEAM", "RATE_LIMIT_RPS", "RATE_LIMIT_BURST", "REQUEST_TIMEOUT_MS", "CORS_ORIGINS", "SECRETS_KEY", "SECRETS_KEY_PREVIOUS"]) {
    delete env[name];
  }
  return { ...env, ...overrides };
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Every child still running: a test that fails half-way must not leave its gateways behind when its worker exits. */
const running = new Set<Child>();
process.once("exit", () => {
  for (const child of running) child.signalGroup("SIGKILL");
});

/** A child process we started, with its output so far. */
export class Child {
  readonly process: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<Finished>;
  /** True once the process exited and its output pipes closed (nothing it started holds them any more). */
  private closed = false;

  constructor(command: string, args: string[], env: NodeJS.ProcessEnv) {
    // detached: its own process group, so stop() also ends what it starts (tsx's node, npm's script).
    this.process = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.process.stdout!.on("data", (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.process.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    running.add(this);
    this.exited = new Promise((resolve, reject) => {
      this.process.once("error", reject);
      this.process.once("close", (code, signal) => {
        running.delete(this);
        this.closed = true;
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Signals the whole process group: tsx and the node process it starts. */
  signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.process.pid!, signal);
    } catch {
      // Already gone.
    }
  }

  /** Waits for the process to exit on its own, at most `timeoutMs`; kills it if it does not. */
  async waitForExit(timeoutMs: number): Promise<Finished> {
    const timedOut = Symbol("timeout");
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      this.exited,
      new Promise<typeof timedOut>((resolve) => (timer = setTimeout(() => resolve(timedOut), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
    if (result === timedOut) {
      await this.stop();
      throw new Error(`process did not exit within ${timeoutMs} ms.\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
    }
    return result;
  }

  /**
   * SIGTERM to its process group, then SIGKILL if it has not exited after 5 s. Also when the process
   * itself has exited but something it started still holds its output (e.g. re-parented to init).
   */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.signalGroup("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([
      this.exited.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 5_000))),
    ]).finally(() => clearTimeout(timer));
    if (!exited) {
      this.signalGroup("SIGKILL");
      await this.exited;
    }
  }
}

/** Runs a command to completion (killed and failed after `timeoutMs`). */
export async function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<Finished> {
  return new Child(command, args, env).waitForExit(timeoutMs);
}

/** A TCP port free at the time of asking. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` every 100 ms until it returns a value other than undefined; fails after `timeoutMs`. */
export async function waitUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`);
}
