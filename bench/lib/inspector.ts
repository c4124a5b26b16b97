import WebSocket from "ws";
import { waitUntil } from "./proc.ts";

export interface Inspector {
  send<T = any>(method: string, params?: Record<string, unknown>): Promise<T>;
  /** Calls `listener` with the params of each event `method` (e.g. HeapProfiler.addHeapSnapshotChunk). */
  on(method: string, listener: (params: any) => void): void;
  close(): void;
}

/**
 * Opens the inspector of a node process started with `--inspect-port=127.0.0.1:0`:
 * SIGUSR1 switches it on (it prints its WebSocket URL on stderr), then a
 * minimal Chrome DevTools Protocol client talks to it.
 */
export async function openInspector(pid: number, stderr: () => string): Promise<Inspector> {
  const already = /Debugger listening on (ws:\/\/\S+)/.exec(stderr())?.[1];
  if (!already) process.kill(pid, "SIGUSR1");
  const url = await waitUntil("the process's inspector", 10_000, async () => /Debugger listening on (ws:\/\/\S+)/.exec(stderr())?.[1]);
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  const listeners = new Map<string, (params: any) => void>();
  socket.on("message", (data) => {
    const message = JSON.parse(data.toString()) as { id?: number; method?: string; params?: unknown; result?: unknown; error?: { message: string } };
    if (message.id === undefined) return void (message.method && listeners.get(message.method)?.(message.params));
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error) waiter?.reject(new Error(message.error.message));
    else waiter?.resolve(message.result);
  });
  return {
    send<T = any>(method: string, params: Record<string, unknown> = {}): Promise<T> {
      const id = nextId++;
      socket.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    },
    on: (method, listener) => void listeners.set(method, listener),
    close: () => socket.close(),
  };
}

/** The process's memory right after a full garbage collection (heapUsed is then what is really retained). */
export async function memoryAfterGc(inspector: Inspector): Promise<{ rssKib: number; heapUsedKib: number }> {
  await inspector.send("HeapProfiler.collectGarbage");
  const { result } = await inspector.send<{ result: { value: string } }>("Runtime.evaluate", { expression: "JSON.stringify(process.memoryUsage())" });
  const usage = JSON.parse(result.value) as { rss: number; heapUsed: number };
  return { rssKib: Math.round(usage.rss / 1024), heapUsedKib: Math.round(usage.heapUsed / 1024) };
}
