import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { streamOf, type Sink, type StreamItem } from "../src/graphql/streams.ts";
import { directFrames } from "../src/graphql/ws.ts";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";
import { SEND, SPEND } from "./helpers/storm.ts";
import { subscribeWs } from "./helpers/subscriptions.ts";

const originalSend = WebSocket.prototype.send;

type Event = { n: number };
type Queue = AsyncIterableIterator<StreamItem<Event>> & { deliverDirectly(direct: (item: StreamItem<Event>) => boolean): void };

/** A stream (src/graphql/streams.ts) and the sink its service would push into. */
async function openStream(): Promise<{ queue: Queue; sink: Sink<Event> }> {
  let sink!: Sink<Event>;
  const queue = streamOf<Event>(async (into) => {
    sink = into;
    return () => {};
  }) as Queue;
  await Promise.resolve();
  return { queue, sink };
}

describe("shared results written straight to the socket (src/graphql/streams.ts, src/graphql/ws.ts)", () => {
  it("a value pushed while the reader waits goes to the direct writer, and the reader keeps waiting for what it refuses", async () => {
    const { queue, sink } = await openStream();
    const direct: number[] = [];
    let accept = true;
    queue.deliverDirectly((item) => {
      if (item.type !== "value" || !accept) return false;
      direct.push(item.value.n);
      return true;
    });
    const next = queue.next();
    sink.update({ n: 1 });
    sink.update({ n: 2 });
    expect(direct).toEqual([1, 2]);
    accept = false;
    sink.update({ n: 3 });
    expect(await next).toEqual({ done: false, value: expect.objectContaining({ type: "value", value: { n: 3 } }) });
  });

  it("keeps the stream's order: while an item is on its way to the reader, later values queue behind it instead of overtaking it", async () => {
    const { queue, sink } = await openStream();
    const direct: number[] = [];
    queue.deliverDirectly((item) => (item.type === "value" ? (direct.push(item.value.n), true) : false));
    const first = queue.next();
    sink.notice(Object.assign(new Error("bus down"), { code: "internal_error" }) as never);
    // The notice went to the reader; nothing reads yet, so these wait in the queue, in order.
    sink.update({ n: 1 });
    sink.update({ n: 2 });
    expect(direct).toEqual([]);
    expect((await first).value).toMatchObject({ type: "notice" });
    expect((await queue.next()).value).toMatchObject({ value: { n: 1 } });
    expect((await queue.next()).value).toMatchObject({ value: { n: 2 } });
    // Caught up, the reader waits again: the next value is written directly.
    const waiting = queue.next();
    sink.update({ n: 3 });
    expect(direct).toEqual([3]);
    queue.return!();
    expect(await waiting).toEqual({ done: true, value: undefined });
  });

  it("a direct writer that throws leaves the value to the reader: the bus's dispatch to the team's other streams goes on", async () => {
    const { queue, sink } = await openStream();
    queue.deliverDirectly(() => {
      throw new Error("the socket broke");
    });
    const next = queue.next();
    expect(() => sink.update({ n: 1 })).not.toThrow();
    expect((await next).value).toMatchObject({ type: "value", value: { n: 1 } });
  });

  it("the frame writer refuses while the socket is closing, has bytes buffered, or the subscription was completed", () => {
    const sent: string[] = [];
    const socket = { readyState: 1, OPEN: 1 as const, bufferedAmount: 0, send: (data: string) => void sent.push(data) };
    let running = true;
    const frames = directFrames(socket as never, 'sub "1"', () => running);
    expect(frames.trySend('{"data":{"x":1}}')).toBe(true);
    expect(JSON.parse(sent[0]!)).toEqual({ id: 'sub "1"', type: "next", payload: { data: { x: 1 } } });
    socket.bufferedAmount = 10;
    expect(frames.trySend('{"data":{"x":2}}')).toBe(false);
    socket.bufferedAmount = 0;
    running = false;
    expect(frames.trySend('{"data":{"x":3}}')).toBe(false);
    running = true;
    socket.readyState = 2;
    expect(frames.trySend('{"data":{"x":4}}')).toBe(false);
    expect(sent).toHaveLength(1);
  });
});

describe("graphql-ws subscribers of one charge over the real socket", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.close());

  it("receive the charge as graphql-ws next frames written directly (one serialisation for all), each with its own id and selection", async () => {
    const { mainKey } = await gw.createTeam({ balance: 10_000 });
    const created = await gw.gql(`mutation { createSubAccount(input: { name: "A", creditLimit: 100 }) { apiKey subAccount { id } } }`, {}, mainKey);
    const subKey = created.data.createSubAccount.apiKey as string;
    const directSends: string[] = [];
    const send = vi.spyOn(WebSocket.prototype, "send").mockImplementation(function (this: WebSocket, ...args: unknown[]) {
      // graphql-ws's own writes pass a callback (it waits for each); the direct writer does not.
      if (typeof args[0] === "string" && args[0].includes('"type":"next"') && typeof args.at(-1) !== "function") directSends.push(args[0]);
      return Reflect.apply(originalSend, this, args) as never;
    });
    const subscribers = await Promise.all(Array.from({ length: 3 }, () => subscribeWs(gw.url, mainKey, SPEND, {})));
    const narrow = await subscribeWs(gw.url, mainKey, `subscription { spendUpdated { amount sequence } }`, {});
    await gw.untilSubscriptions(4);
    await gw.gql(SEND, { input: { to: "+447700900123", text: "hello" } }, subKey);
    const received = await Promise.all(subscribers.map((subscriber) => subscriber.waitFor(1)));
    const [narrowEvent] = await narrow.waitFor(1);
    send.mockRestore();
    for (const [event] of received) expect(event.spendUpdated).toMatchObject({ amount: 4, sequence: 1, limitReached: false });
    expect(narrowEvent).toEqual({ spendUpdated: { amount: 4, sequence: 1 } });
    expect(directSends).toHaveLength(4);
    const payloads = directSends.map((frame) => JSON.parse(frame) as { id: string; type: string; payload: unknown });
    expect(payloads.every((frame) => frame.type === "next")).toBe(true);
    expect(new Set(payloads.map((frame) => JSON.stringify(frame.payload))).size).toBe(2);
    for (const subscriber of [...subscribers, narrow]) subscriber.close();
  });
});
