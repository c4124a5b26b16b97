// The WebSocket client is graphql-ws's own (bundled into dashboard.js by the
// gateway, so it is served from here like everything else): the library and
// version the gateway's server runs (package.json), which does the
// graphql-transport-ws handshake and keep-alive pings. Writing the protocol
// again would only add bugs.
//
// Reconnecting is ours, not the library's: the library would subscribe again
// with the variables of the first subscription, while a resumed subscription
// must start from what the page received last, and only after the page has
// read what changed meanwhile (sub-accounts created while it was away). So
// each connection is one client, used once: when it drops, the page waits
// (backoff), reads what it needs, and subscribes on a new one from where it
// stopped.
import { createClient, type Client } from "graphql-ws/client";
import { persisted } from "./api.ts";

export type LiveStatus = { state: "connecting" } | { state: "live" } | { state: "reconnecting"; inMs: number } | { state: "stopped"; message: string };

/** One subscription to run on a connection: a document by hash, its variables as of now, and where its events go. */
export interface LiveStream {
  operationName: string;
  /** SHA-256 hex of the document. */
  hash: string;
  variables: Record<string, unknown>;
  /** The root field of its events. */
  field: string;
  onEvent(value: unknown): void;
}

export interface LiveOptions {
  key: string;
  onStatus(status: LiveStatus): void;
  /**
   * Connected: reads what the page needs first, then returns the
   * subscriptions to start, their variables as of then. `reconnected`: an
   * earlier connection of this page was live. Throws to drop this connection
   * (a failed read); an ApiError refusing the key ends following.
   */
  prepare(reconnected: boolean): Promise<LiveStream[]>;
  /** An error the gateway sent while keeping the stream open (the event bus is unreachable, say). */
  onNotice(message: string): void;
  /** A subscription was refused or ended by the gateway (revoked key, suspended account, a resume point too old...). */
  onEnded(error: { code: string; message: string }): void;
}

/** Backoff after the n-th failed attempt: 0.5 s doubling up to 10 s, with jitter so that tabs do not reconnect in step. */
export function retryDelay(retries: number, random = Math.random): number {
  const ceiling = Math.min(10_000, 500 * 2 ** Math.min(retries, 10));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** How long a ping may wait for its pong before the connection is taken for dead and replaced. */
const PONG_TIMEOUT_MS = 5_000;
const KEEP_ALIVE_MS = 10_000;

function websocketUrl(): string {
  const url = new URL("/graphql", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

export function refusalOf(error: unknown): { code: string; message: string } {
  const first = (Array.isArray(error) ? error[0] : error) as { message?: string; extensions?: { code?: string }; code?: unknown; reason?: string } | undefined;
  // A GraphQL error carries its code in extensions; the page's own ApiError (a read that failed) carries it itself.
  const code = first?.extensions?.code ?? (typeof first?.code === "string" ? first.code : "internal_error");
  return { code, message: first?.message ?? first?.reason ?? "The live connection ended." };
}

/** The gateway's answer (GraphQL errors), as opposed to the connection closing or failing. */
const isGraphQLErrors = (error: unknown) => Array.isArray(error);

interface Connection {
  close(): void;
}

interface ConnectionHooks {
  /** The connection dropped, failed, or was found dead: nothing more comes from it. */
  dropped(): void;
  /** Its subscriptions are running. */
  live(): void;
  /** A subscription was refused or ended by the gateway. */
  ended(error: { code: string; message: string }): void;
}

/** One connection: a client that never retries by itself, its subscriptions started once `prepare` has run. */
function connect(options: LiveOptions, reconnected: boolean, hooks: ConnectionHooks): Connection {
  let over = false;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  const stops: (() => void)[] = [];
  const finish = (then: () => void) => {
    if (over) return;
    over = true;
    clearTimeout(pongTimer);
    for (const stop of stops.splice(0)) stop();
    // Disposing a client whose connection failed rejects with that CloseEvent: nothing to do about it here.
    Promise.resolve(client.dispose()).catch(() => {});
    then();
  };
  const client: Client = createClient({
    url: websocketUrl(),
    connectionParams: { authorization: `Bearer ${options.key}` },
    lazy: false,
    keepAlive: KEEP_ALIVE_MS,
    retryAttempts: 0,
    onNonLazyError: () => finish(hooks.dropped),
    on: {
      connected: () => void subscribe(),
      // A half-open connection (a laptop waking up, a proxy dropping it) closes no socket: no pong in time means dead.
      ping: (received) => {
        if (!received) pongTimer = setTimeout(() => client.terminate(), PONG_TIMEOUT_MS);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
      closed: () => finish(hooks.dropped),
    },
  });

  async function subscribe(): Promise<void> {
    let streams: LiveStream[];
    try {
      streams = await options.prepare(reconnected);
    } catch (error) {
      const refusal = refusalOf(error);
      return finish(refusal.code === "unauthorized" || refusal.code === "forbidden" ? () => hooks.ended(refusal) : hooks.dropped);
    }
    if (over) return;
    for (const stream of streams) stops.push(start(client, stream, options, (error) => finish(error === null ? hooks.dropped : () => hooks.ended(error))));
    hooks.live();
  }
  return { close: () => finish(() => {}) };
}

/** Starts one subscription; `stop(null)`: the connection went, `stop(error)`: the gateway refused or ended it. */
function start(client: Client, stream: LiveStream, options: LiveOptions, stop: (error: { code: string; message: string } | null) => void): () => void {
  return client.subscribe<Record<string, unknown>>(
    { query: "", operationName: stream.operationName, variables: stream.variables, extensions: persisted(stream.hash) },
    {
      next: (result) => {
        const value = result.data?.[stream.field];
        if (value) stream.onEvent(value);
        else if (result.errors?.length) options.onNotice(refusalOf(result.errors).message);
      },
      error: (error) => stop(isGraphQLErrors(error) ? refusalOf(error) : null),
      complete: () => stop({ code: "ended", message: "The gateway ended the live stream." }),
    },
  );
}

/**
 * Follows the page's subscriptions live for as long as it is open: on each
 * connection, `prepare` then subscribe; when one drops, reconnect with backoff.
 */
export function followLive(options: LiveOptions): { close(): void } {
  let closed = false;
  let failures = 0;
  let wasLive = false;
  let connection: Connection | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const open = () => {
    if (closed) return;
    options.onStatus({ state: "connecting" });
    connection = connect(options, wasLive, {
      live: () => {
        wasLive = true;
        failures = 0;
        options.onStatus({ state: "live" });
      },
      dropped: () => {
        if (closed) return;
        const inMs = retryDelay(failures++);
        options.onStatus({ state: "reconnecting", inMs });
        timer = setTimeout(open, inMs);
      },
      ended: (error) => {
        if (closed) return;
        options.onStatus({ state: "stopped", message: error.message });
        options.onEnded(error);
      },
    });
  };
  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      connection?.close();
    },
  };
}
