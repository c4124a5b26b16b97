import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The project root (where package.json is). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** tsx, as `npm start` runs it. */
export const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

/** True when `moduleUrl` is the script node (tsx) was asked to run, so one file can be both a module and a child's entry point. */
export function isEntryPoint(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && pathToFileURL(path.resolve(process.argv[1])).href === moduleUrl;
}

type Cleanup = { label: string; run: () => Promise<void> };
const cleanups: Cleanup[] = [];

/** Registers a teardown step; steps run in reverse order on success, failure or Ctrl-C. Returns its remover. */
export function onCleanup(label: string, run: () => Promise<void>): () => void {
  const entry = { label, run };
  cleanups.push(entry);
  return () => {
    const index = cleanups.indexOf(entry);
    if (index >= 0) cleanups.splice(index, 1);
  };
}

let cleaning: Promise<void> | null = null;
let tearingDown = false;

/** True once a signal or a crash started the teardown (errors of the stopped children are expected then). */
export function isTearingDown(): boolean {
  return tearingDown;
}

export function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const entry = cleanups.pop()!;
      if (tearingDown) process.stderr.write(`  cleanup: ${entry.label}\n`);
      try {
        await entry.run();
      } catch (error) {
        process.stderr.write(`cleanup "${entry.label}" failed: ${String(error)}\n`);
      }
    }
    cleaning = null;
  })();
  return cleaning;
}

/** Ctrl-C, a kill, or a crash: tear everything down, then exit. */
export function cleanUpOnSignals(): void {
  // `on`, not `once`: tsx relays a signal again when its child is slow to acknowledge it, and with no
  // listener left the second one would end this process before the teardown is done.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      if (tearingDown) return;
      process.stderr.write(`\n${signal}: stopping the processes and dropping the databases...\n`);
      tearingDown = true;
      void runCleanups().finally(() => process.exit(130));
    });
  }
  const crash = (error: unknown) => {
    // e.g. EPIPE when the output is piped into `head`: the children must not outlive us.
    process.stderr.write(`\nunexpected error, cleaning up: ${String(error)}\n`);
    tearingDown = true;
    void runCleanups().finally(() => process.exit(1));
  };
  process.once("uncaughtException", crash);
  process.once("unhandledRejection", crash);
}

/** The environment of a child: this one's, minus anything the gateway reads, plus `overrides`. */
export function childEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(NODE_ENV|HOST|PORT|DATABASE_URL|REDIS_URL|REDIS_PREFIX|LOG_LEVEL|PURGE_INTERVAL_MS|MAX_BODY_BYTES|DELIVERY_STEP_MS|PRICES_FILE|DEMO_TEAM|RATE_LIMIT_.*|NODE_OPTIONS)$/.test(name)) delete env[name];
  }
  for (const [name, value] of Object.entries(overrides)) if (value !== undefined) env[name] = value;
  return env;
}

/**
 * A child process in its own process group (so stopping it also stops the node
 * process tsx starts), registered for teardown, with its output kept.
 */
export class Proc {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #removeCleanup: () => void;
  #lineListeners: ((line: string) => void)[] = [];
  #partial = "";

  constructor(
    readonly label: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(command, args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    this.child.stdout!.on("data", (chunk: Buffer) => {
      const text = chunk.toString();
      this.stdout += text;
      this.#partial += text;
      let newline;
      while ((newline = this.#partial.indexOf("\n")) >= 0) {
        const line = this.#partial.slice(0, newline);
        this.#partial = this.#partial.slice(newline + 1);
        for (const listener of this.#lineListeners) listener(line);
      }
    });
    this.child.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.child.stdin!.on("error", () => {});
    this.exited = new Promise((resolve, reject) => {
      this.child.once("error", reject);
      this.child.once("close", (code, signal) => resolve({ code, signal }));
    });
    this.#removeCleanup = onCleanup(label, () => this.stop());
    void this.exited.then(() => this.#removeCleanup(), () => this.#removeCleanup());
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  onLine(listener: (line: string) => void): void {
    this.#lineListeners.push(listener);
  }

  /** Resolves with the first stdout line matching `test`; rejects if the process exits first or after `timeoutMs`. */
  waitForLine(test: (line: string) => boolean, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.label}: no expected output within ${timeoutMs} ms\n${this.output()}`)), timeoutMs);
      this.onLine((line) => {
        if (test(line)) {
          clearTimeout(timer);
          resolve(line);
        }
      });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.label} exited (code ${code}, signal ${signal}) before the expected output\n${this.output()}`));
      });
    });
  }

  write(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  output(): string {
    return `--- stdout ---\n${this.stdout.slice(-4000)}\n--- stderr ---\n${this.stderr.slice(-4000)}`;
  }

  #signal(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.#signal("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([
      this.exited.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]).finally(() => clearTimeout(timer));
    if (!exited) {
      this.#signal("SIGKILL");
      await this.exited;
    }
  }

  /** Waits for a normal exit (code 0) and returns stdout; fails with the output otherwise. */
  async finished(timeoutMs: number): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      this.exited,
      new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
    if (result === "timeout") {
      await this.stop(2_000);
      throw new Error(`${this.label} did not finish within ${timeoutMs} ms\n${this.output()}`);
    }
    if (result.code !== 0) throw new Error(`${this.label} failed (code ${result.code}, signal ${result.signal})\n${this.output()}`);
    return this.stdout;
  }
}

/** Runs a TypeScript file of bench/ (or src/) with tsx as a child process. */
export function tsxProc(label: string, script: string, args: string[], env: NodeJS.ProcessEnv = childEnv()): Proc {
  return new Proc(label, TSX, [script, ...args], env);
}

/** Runs a bench script that prints one JSON result as its last stdout line; returns it parsed. */
export async function runJsonScript<T>(label: string, script: string, input: unknown, timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<T> {
  const stdout = await tsxProc(label, script, [JSON.stringify(input)], env).finished(timeoutMs);
  const last = stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`${label}: its last output line is not JSON: ${last.slice(0, 500)}`);
  }
}

/** The JSON input a child script was given as its one argument. */
export function scriptInput<T>(): T {
  const raw = process.argv[2];
  if (!raw) throw new Error("expected one JSON argument");
  return JSON.parse(raw) as T;
}

/** Prints the result as the last stdout line and exits. */
export function finishWith(result: unknown): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

// The tests' own helpers: one implementation for both.
export { freePort, waitUntil } from "../../test/helpers/process.ts";

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The pids whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name may contain spaces and parentheses: the fields after the last ")" are fixed.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent === pid) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

/** The process that really runs the script: tsx's CLI starts node as its child, so the deepest node descendant. */
export function scriptPid(wrapperPid: number): number {
  let pid = wrapperPid;
  for (;;) {
    // tsx also starts esbuild's service binary: follow node processes only.
    const children = childrenOf(pid).filter((child) => path.basename(readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0")[0]!) === "node");
    if (children.length === 0) return pid;
    pid = children[0]!;
  }
}

/** A process's resident set size in KiB (VmRSS of /proc/<pid>/status). */
export function rssKib(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

export interface ThreadCounters {
  /** CPU time (user + system) in milliseconds. */
  cpuMs: number;
  /** Times the thread gave up its core because it had nothing to do (it waited: epoll, a lock, I/O). */
  voluntarySwitches: number;
  /** Times the scheduler took its core away while it still had work. */
  involuntarySwitches: number;
}

/** /proc readings of one thread: the main thread of a process is the task whose id is the process id. */
export function threadCounters(pid: number, tid = pid): ThreadCounters {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
  const count = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, "m").exec(status)?.[1] ?? NaN);
  // utime and stime (fields 14 and 15 of proc(5)) are in clock ticks of USER_HZ, 100 per second on Linux.
  return {
    cpuMs: (Number(fields[11]) + Number(fields[12])) * 10,
    voluntarySwitches: count("voluntary_ctxt_switches"),
    involuntarySwitches: count("nonvoluntary_ctxt_switches"),
  };
}
