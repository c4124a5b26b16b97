import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";

/** One request a receiver got: the Standard Webhooks headers and the raw body. */
export interface Received {
  path: string;
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  /** Every header, lower-case. */
  headers: Record<string, string>;
  at: number;
  /** What the receiver answered (set once it did). */
  answered?: Answer;
}

/** What the receiver answers: a status, or nothing at all (the sender times out). */
export type Answer = number | "hang";

/**
 * A real HTTP webhook receiver for tests: records every request, answers as
 * told, can go down (connections refused) and come back on the same port, and
 * notices when two requests for the same event and path are in flight at once.
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  /** Requests for one (path, webhook-id) that arrived while another was still open. */
  readonly overlaps: string[] = [];
  answer: (request: Received) => Answer | Promise<Answer> = () => 200;
  #server: Server;
  #sockets = new Set<Socket>();
  #open = new Map<string, number>();
  port = 0;

  private constructor() {
    this.#server = this.#createServer();
  }

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    await receiver.#listen(0);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  #createServer(): Server {
    const server = createServer((req, res) => void this.#handle(req, res));
    server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    return server;
  }

  async #listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, "127.0.0.1", () => resolve());
    });
    this.port = (this.#server.address() as { port: number }).port;
  }

  async #handle(req: IncomingMessage, res: import("node:http").ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const header = (name: string) => String(req.headers[name] ?? "");
    const received: Received = {
      path: req.url ?? "/",
      id: header("webhook-id"),
      timestamp: header("webhook-timestamp"),
      signature: header("webhook-signature"),
      body: Buffer.concat(chunks).toString("utf8"),
      headers: Object.fromEntries(Object.entries(req.headers).map(([name, value]) => [name, String(value)])),
      at: Date.now(),
    };
    const key = `${received.path} ${received.id}`;
    if ((this.#open.get(key) ?? 0) > 0) this.overlaps.push(key);
    this.#open.set(key, (this.#open.get(key) ?? 0) + 1);
    res.on("close", () => this.#open.set(key, (this.#open.get(key) ?? 1) - 1));
    this.received.push(received);
    const answer = await this.answer(received);
    received.answered = answer;
    if (answer !== "hang") res.writeHead(answer, { "content-type": "text/plain" }).end(answer < 300 ? "ok" : "no");
  }

  /** Stops listening and drops every connection: senders get "connection refused" until `restart`. */
  async down(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  /** Listens again on the same port. */
  async restart(): Promise<void> {
    this.#server = this.#createServer();
    await this.#listen(this.port);
  }

  async close(): Promise<void> {
    if (this.#server.listening) await this.down();
  }

  /** The bodies received for a path, parsed. */
  events(path = "/"): { id: string; body: any; received: Received }[] {
    return this.received.filter((r) => r.path === path).map((r) => ({ id: r.id, body: JSON.parse(r.body), received: r }));
  }
}
