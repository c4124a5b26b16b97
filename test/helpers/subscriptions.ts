import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

export interface Collected<T> {
  events: T[];
  errors: { message: string; extensions?: { code?: string } }[];
  /** Resolves when the server completes or ends the stream. */
  ended: Promise<void>;
  isEnded(): boolean;
  /** Resolves once `count` events arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<T[]>;
  close(): void;
}

function collector<T>(): Collected<T> & { push(value: T): void; fail(error: any): void; finish(): void } {
  const events: T[] = [];
  const errors: Collected<T>["errors"] = [];
  let ended = false;
  let resolveEnded!: () => void;
  const endedPromise = new Promise<void>((resolve) => (resolveEnded = resolve));
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((waiter) => waiter());
  return {
    events,
    errors,
    ended: endedPromise,
    isEnded: () => ended,
    push(value) {
      events.push(value);
      notify();
    },
    fail(error) {
      errors.push(error);
      notify();
    },
    finish() {
      ended = true;
      resolveEnded();
      notify();
    },
    waitFor(count, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (events.length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(events.slice());
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out with ${events.length} of ${count} events`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {},
  };
}

/** A graphql-ws subscription authenticated through connectionParams, as browsers do it. */
export async function subscribeWs<T = any>(baseUrl: string, key: string, query: string, variables: Record<string, unknown> = {}) {
  const client: Client = createClient({
    url: baseUrl.replace(/^http/, "ws") + "/graphql",
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${key}` },
    lazy: false,
    retryAttempts: 0,
    // Errors reach the subscription's sink; the default would print the socket's close event.
    onNonLazyError: () => {},
  });
  const result = collector<T>();
  const ready = new Promise<void>((resolve) => client.on("connected", () => resolve()));
  const unsubscribe = client.subscribe<T>(
    { query, variables },
    {
      next: (value) => {
        if (value.errors) value.errors.forEach((error) => result.fail(error));
        if (value.data) result.push(value.data as T);
      },
      error: (error) => {
        if (Array.isArray(error)) error.forEach((e) => result.fail(e));
        else result.fail({ message: String((error as Error)?.message ?? error) });
        result.finish();
      },
      complete: () => result.finish(),
    },
  );
  await ready;
  result.close = () => {
    unsubscribe();
    void client.dispose();
  };
  return result;
}

/** A GraphQL-over-SSE subscription with the Authorization header. */
export async function subscribeSse<T = any>(baseUrl: string, key: string, query: string, variables: Record<string, unknown> = {}) {
  const controller = new AbortController();
  const response = await fetch(`${baseUrl}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  });
  const result = collector<T>();
  result.close = () => controller.abort();
  void (async () => {
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let boundary;
        while ((boundary = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
          const data = block
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).trimStart())
            .join("\n");
          if (event === "complete") {
            result.finish();
            return;
          }
          if (!data) continue;
          const payload = JSON.parse(data);
          if (payload.errors) payload.errors.forEach((error: any) => result.fail(error));
          if (payload.data) result.push(payload.data);
        }
      }
    } catch {
      // aborted by close()
    }
    result.finish();
  })();
  return { ...result, status: response.status, contentType: response.headers.get("content-type") };
}
