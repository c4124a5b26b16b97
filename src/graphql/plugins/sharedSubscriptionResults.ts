import { createSourceEventStream, execute, type DocumentNode, type ExecutionArgs, type ExecutionResult } from "graphql";
import type { Plugin } from "graphql-yoga";

/**
 * Subscription fan-out without executing the same selection once per
 * subscriber: an event marked shareable is executed once per distinct
 * (document, operation, variables), and that result goes to every subscriber
 * asking for it. With 1,000 subscribers of one charge, the executor runs once,
 * not 1,000 times (BENCHMARKS.md, fan-out).
 *
 * Only events whose result cannot depend on who asks may be marked: the
 * context (the caller) is not part of the sharing key.
 */
const shareableEvents = new WeakSet<object>();

export function markShareable<T extends object>(event: T): T {
  shareableEvents.add(event);
  return event;
}

type MaybePromise<T> = T | Promise<T>;

const resultsByEvent = new WeakMap<object, Map<string, MaybePromise<ExecutionResult>>>();
const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 1;

/** Documents are cached by the parser, so subscribers with the same query text share one DocumentNode. */
function sharingKey(args: ExecutionArgs): string {
  let id = documentIds.get(args.document);
  if (id === undefined) {
    id = nextDocumentId++;
    documentIds.set(args.document, id);
  }
  return `${id}\u0000${args.operationName ?? ""}\u0000${JSON.stringify(args.variableValues ?? {})}`;
}

function executeEvent(args: ExecutionArgs, key: string, event: unknown): MaybePromise<ExecutionResult> {
  const run = () => execute({ ...args, rootValue: event });
  if (typeof event !== "object" || event === null || !shareableEvents.has(event)) return run();
  let results = resultsByEvent.get(event);
  if (!results) {
    results = new Map();
    resultsByEvent.set(event, results);
  }
  let result = results.get(key);
  if (result === undefined) {
    result = run();
    results.set(key, result);
  }
  return result;
}

/** Maps an async iterator value by value; return() reaches the source at once, even while a next() waits. */
function mapAsyncIterator<T, U>(source: AsyncIterator<T>, map: (value: T) => MaybePromise<U>): AsyncIterableIterator<U> {
  const mapResult = async (result: IteratorResult<T>): Promise<IteratorResult<U>> =>
    result.done ? { value: undefined, done: true } : { value: await map(result.value), done: false };
  return {
    next: () => source.next().then(mapResult),
    return: async () => (source.return ? mapResult(await source.return()) : { value: undefined, done: true }),
    throw: async (error: unknown) => {
      if (source.throw) return mapResult(await source.throw(error));
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * Where a subscription's `next` frames can be written without passing through the transport's per-result
 * promises (graphql-ws, src/graphql/ws.ts): `trySend` writes one frame around an already serialised result,
 * or returns false (connection closing, its buffer not drained, the subscription completed) and the result
 * takes the ordinary path.
 */
export interface DirectFrames {
  trySend(payloadJson: string): boolean;
}

const DIRECT_FRAMES = Symbol("direct frames");

/** Lets the subscriptions executed with this context write their shared results straight to `frames`. */
export function withDirectFrames<C extends object>(contextValue: C, frames: DirectFrames): C {
  (contextValue as { [DIRECT_FRAMES]?: DirectFrames })[DIRECT_FRAMES] = frames;
  return contextValue;
}

/** A source stream that can hand items to a direct consumer (src/graphql/streams.ts). */
interface DirectSource {
  deliverDirectly(direct: (event: unknown) => boolean): void;
}

function isDirectSource(source: object): source is DirectSource {
  return typeof (source as Partial<DirectSource>).deliverDirectly === "function";
}

/** Each shared result serialised once, whoever it is written to. */
const jsonByResult = new WeakMap<ExecutionResult, string>();

/** Writes a shareable event's result directly when it is ready now and carries no error (errors go through the edge's masking). */
function sendShared(args: ExecutionArgs, key: string, event: unknown, frames: DirectFrames): boolean {
  if (typeof event !== "object" || event === null || !shareableEvents.has(event)) return false;
  const result = executeEvent(args, key, event);
  if (result instanceof Promise || result.errors) return false;
  let json = jsonByResult.get(result);
  if (json === undefined) {
    json = JSON.stringify(result);
    jsonByResult.set(result, json);
  }
  return frames.trySend(json);
}

async function subscribeSharingResults(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in stream)) return stream;
  const key = sharingKey(args);
  const source = stream[Symbol.asyncIterator]();
  const frames = (args.contextValue as { [DIRECT_FRAMES]?: DirectFrames } | undefined)?.[DIRECT_FRAMES];
  if (frames && isDirectSource(source)) source.deliverDirectly((event) => sendShared(args, key, event, frames));
  return mapAsyncIterator(source, (event) => executeEvent(args, key, event));
}

export const useSharedSubscriptionResults: Plugin = {
  onSubscribe: ({ setSubscribeFn }) => setSubscribeFn(subscribeSharingResults as never),
};
