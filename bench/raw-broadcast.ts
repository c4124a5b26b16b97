import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { WebSocketServer, type WebSocket } from "ws";
import { Proc, TSX, childEnv, freePort, isEntryPoint, sleep, waitUntil } from "./lib/proc.ts";

/**
 * The fan-out's ceiling: a bare `ws` server on node:http, in its own process, speaking only as much of
 * graphql-transport-ws as bench/fanout-client.ts needs (ack, pong, the subscribe id). Each `POST /fire`
 * sends every subscribed socket one `next` frame shaped like the gateway's spendUpdated event for
 * SPEND_SUBSCRIPTION (bench/fanout-client.ts), its chargedAt the moment the request arrived. No GraphQL,
 * no database, no event bus: what is left is writing a frame to every subscriber and the client reading it.
 */
export interface RawBroadcastServer {
  url: string;
  proc: Proc;
  /** One broadcast; resolves once the server has run its send loop. */
  fire(): Promise<void>;
  /** Fires `rate` times a second at an even pace for `seconds`; resolves with the number of fires once all are answered. */
  fireAtRate(rate: number, seconds: number): Promise<number>;
  stop(): Promise<void>;
}

export async function startRawBroadcast(): Promise<RawBroadcastServer> {
  const port = await freePort();
  const proc = new Proc("raw ws broadcast", TSX, ["bench/raw-broadcast.ts"], childEnv({ PORT: String(port) }));
  const url = `http://127.0.0.1:${port}`;
  const fire = async () => {
    const response = await fetch(`${url}/fire`, { method: "POST" });
    await response.text();
    if (!response.ok) throw new Error(`raw ws broadcast: POST /fire answered ${response.status}`);
  };
  await waitUntil("the raw ws broadcast server", 60_000, async () => {
    if (!proc.running) throw new Error(`raw ws broadcast exited\n${proc.output()}`);
    await fire();
    return true;
  });
  return { url, proc, fire, fireAtRate: (rate, seconds) => fireAtRate(fire, rate, seconds), stop: () => proc.stop() };
}

/** Fire n leaves at start + n / rate seconds, as the gateway's sender paces its sends (driveSteady in bench/load.ts). */
async function fireAtRate(fire: () => Promise<void>, rate: number, seconds: number): Promise<number> {
  const intervalMs = 1000 / rate;
  const total = Math.max(1, Math.round(rate * seconds));
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let number = 0; number < total; number += 1) {
    const wait = started + number * intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    // Not awaited: a slow broadcast must not lower the rate asked for (the gateway's sender does not wait either).
    inFlight.push(fire());
  }
  await Promise.all(inFlight);
  return total;
}

/** The server side: sockets with their subscription id, and the event's changing figures. */
function serve(port: number): void {
  const subscriptions = new Map<WebSocket, string>();
  let sequence = 0;
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const receivedAt = new Date().toISOString();
    request.resume();
    if (request.method !== "POST" || request.url !== "/fire") {
      response.writeHead(404).end();
      return;
    }
    sequence += 1;
    // The figures of a 1-cent charge on a team with a large balance and credit limit, as the bench's sends are.
    const event = {
      subAccount: { id: "cmraw0broadcast0subaccount", totalSpent: sequence, creditLimit: 10_000_000_000, status: "ACTIVE" },
      amount: 1,
      messageId: `cmraw0broadcast${String(sequence).padStart(10, "0")}`,
      teamBalance: 1_000_000_000_000 - sequence,
      remainingCredit: 10_000_000_000 - sequence,
      limitReached: false,
      chargedAt: receivedAt,
      sequence,
    };
    // One JSON.stringify per socket of the whole message, as a simple server would (no shared serialized payload).
    for (const [socket, id] of subscriptions) socket.send(JSON.stringify({ id, type: "next", payload: { data: { spendUpdated: event } } }));
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ sent: subscriptions.size }));
  });
  // No handleProtocols: ws then accepts the first subprotocol asked for, graphql-transport-ws.
  const sockets = new WebSocketServer({ server, path: "/graphql" });
  sockets.on("connection", (socket) => {
    socket.on("message", (data) => {
      const message = JSON.parse(data.toString()) as { type?: string; id?: string };
      if (message.type === "connection_init") socket.send('{"type":"connection_ack"}');
      else if (message.type === "ping") socket.send('{"type":"pong"}');
      else if (message.type === "subscribe" && message.id !== undefined) subscriptions.set(socket, message.id);
      else if (message.type === "complete") subscriptions.delete(socket);
    });
    socket.on("close", () => subscriptions.delete(socket));
    socket.on("error", () => subscriptions.delete(socket));
  });
  server.listen(port, "127.0.0.1");
  // Straight out: closing the server would wait for every subscriber's socket.
  process.once("SIGTERM", () => process.exit(0));
}

if (isEntryPoint(import.meta.url)) serve(Number(process.env.PORT));
