import { DomainError, unauthorized } from "../../domain/errors.ts";
import type { Scope } from "../../domain/scopes.ts";
import type { EventBus } from "../../events/bus.ts";
import type { Topics } from "../../events/types.ts";
import { streamRefusal, type KeyState } from "../auth.ts";
import type { Clock } from "../clock.ts";
import type { Actor } from "../deps.ts";
import { SubscriptionRegistry } from "./registry.ts";
import { LiveStream, type EventSource, type Sink, type Watch } from "./stream.ts";
import { WatchedTeams } from "./teams.ts";

export type { EventSource, Sink, Watch } from "./stream.ts";

const BUS_DOWN_NOTICE =
  "Live updates may be delayed: the event bus (Redis) is unreachable. Nothing is lost: each event is still delivered, read from the database within about a second.";

/**
 * How often open subscriptions' keys are re-checked: expiry, a lost revocation
 * signal (bus outage), a scope taken away. Open subscriptions end within this
 * of any of them, on every instance, with no timer per subscription.
 */
const KEY_CHECK_MS = 500;
/**
 * How often each instance compares the latest event of every key its
 * subscriptions watch with what they have: an event that never left its
 * instance (killed between commit and publish) is delivered within this.
 */
export const LEDGER_CHECK_MS = 500;
/** Events a resumed subscription may replay per key, at most. */
export const RESUME_MAX = 10_000;

export interface LiveHubDeps {
  bus: EventBus;
  clock: Clock;
  onError(error: unknown): void;
  /** Told how many events subscribers received from the database rather than the bus. */
  onRecovered?(count: number): void;
  /** The keys' states now (a key missing from the map no longer exists). */
  keyStates(apiKeyIds: string[]): Promise<Map<string, KeyState>>;
}

/** One subscription to open, checked by its service: what it follows, from where, into which sink. */
export interface StreamRequest<T extends keyof Topics> {
  topic: T;
  actor: Actor;
  scope: Scope;
  source: EventSource<Topics[T]>;
  watch: Watch;
  wants(event: Topics[T]): boolean;
  /** Per key, the sequence to resume after; keys not named start live. */
  resume: Map<string, number>;
  sink: Sink<Topics[T]>;
}

function startKeyCheck(deps: LiveHubDeps, registry: SubscriptionRegistry): () => void {
  let checking = false;
  const timer = setInterval(() => {
    if (checking || registry.size === 0) return;
    checking = true;
    const asked = registry.keyIds;
    deps
      .keyStates(asked)
      .then((states) => {
        const now = deps.clock.now();
        const checked = new Set(asked);
        registry.endWhere((subscription) => {
          // Opened while the states were read: its key was not asked about (the next check judges it).
          if (!checked.has(subscription.apiKeyId)) return null;
          const state = states.get(subscription.apiKeyId);
          return state ? streamRefusal(state, now, subscription.scope) : unauthorized("This API key no longer exists; the subscription has ended.");
        });
      })
      .catch(deps.onError)
      .finally(() => (checking = false));
  }, KEY_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * One query per event source for the latest sequence of every key watched. The streams of a key whose latest
 * sequence was heard on the bus have it already (src/services/live/teams.ts); the others, and any stream
 * whose last read failed, read what they missed.
 */
async function checkLatest(streams: LiveStream<unknown>[], teams: WatchedTeams): Promise<void> {
  for (const [source, { byWatched, owing }] of streamsBySourceAndWatch(streams)) {
    const teamIds: string[] = [];
    const keys: string[] = [];
    for (const watched of byWatched.keys()) {
      if (watched.startsWith(TEAM_WATCH)) teamIds.push(watched.slice(TEAM_WATCH.length));
      else keys.push(watched.slice(KEY_WATCH.length));
    }
    const latest = await source.latest({ teamIds, keys });
    for (const [key, { teamId, sequence }] of latest) {
      if (sequence <= teams.heard(source, teamId, key)) continue;
      for (const stream of byWatched.get(`${TEAM_WATCH}${teamId}`) ?? []) stream.catchUp(key, sequence);
      for (const stream of byWatched.get(`${KEY_WATCH}${key}`) ?? []) stream.catchUp(key, sequence);
    }
    for (const stream of owing) stream.catchUpAll(latest);
  }
}

const TEAM_WATCH = "t:";
const KEY_WATCH = "k:";

interface StreamsOfSource {
  /** By what they watch: "t:" + team, "k:" + key. */
  byWatched: Map<string, LiveStream<unknown>[]>;
  /** Those whose last read from the database failed (src/services/live/stream.ts, owesCatchUp). */
  owing: LiveStream<unknown>[];
}

/** The streams grouped by source, then by what they watch: one pass, no copies. */
function streamsBySourceAndWatch(streams: LiveStream<unknown>[]): Map<EventSource<unknown>, StreamsOfSource> {
  const bySource = new Map<EventSource<unknown>, StreamsOfSource>();
  for (const stream of streams) {
    let ofSource = bySource.get(stream.source);
    if (!ofSource) bySource.set(stream.source, (ofSource = { byWatched: new Map(), owing: [] }));
    if (stream.owesCatchUp) ofSource.owing.push(stream);
    const watched = "team" in stream.watch ? `${TEAM_WATCH}${stream.watch.team}` : `${KEY_WATCH}${stream.watch.key}`;
    const group = ofSource.byWatched.get(watched);
    if (group) group.push(stream);
    else ofSource.byWatched.set(watched, [stream]);
  }
  return bySource;
}

function startLedgerCheck(deps: LiveHubDeps, live: Set<LiveStream<unknown>>, teams: WatchedTeams): () => void {
  let checking = false;
  const timer = setInterval(() => {
    if (checking || live.size === 0) return;
    checking = true;
    checkLatest([...live], teams)
      .catch(deps.onError)
      .finally(() => (checking = false));
  }, LEDGER_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Where a stream starts, per key: after the resume point when one is given;
 * otherwise after the latest event when the stream opened, lowered for the
 * events heard on the bus while it was read (published after it began listening).
 */
function startingPoints<E>(latest: Map<string, { sequence: number }>, resume: Map<string, number>, stream: LiveStream<E>): Map<string, number> {
  const start = new Map([...latest].map(([key, { sequence }]) => [key, sequence]));
  for (const event of stream.early) {
    const key = stream.source.keyOf(event);
    const at = start.get(key);
    const sequence = stream.source.sequenceOf(event);
    if (!resume.has(key) && at !== undefined && sequence <= at) start.set(key, sequence - 1);
  }
  for (const [key, after] of resume) start.set(key, after);
  return start;
}

/**
 * The live subscriptions of this instance, of every kind (spend updates, spend
 * alerts): the bus as the fast path, the database as the truth, access checks
 * that end them, and the gauge of how many are open.
 */
export function createLiveHub(deps: LiveHubDeps) {
  const registry = new SubscriptionRegistry();
  const live = new Set<LiveStream<unknown>>();
  deps.bus.onAccessChange((signal) => registry.endMatching(signal));
  deps.bus.onStateChange((state) => {
    if (state === "down") registry.notifyAll(new DomainError("internal_error", BUS_DOWN_NOTICE, { eventBus: "down" }));
  });
  const stopKeyCheck = startKeyCheck(deps, registry);
  const teams = new WatchedTeams(deps.bus);
  const stopLedgerCheck = startLedgerCheck(deps, live, teams);

  /**
   * Streams one subscription: listens on the bus first (so nothing published
   * from now on is missed), reads the latest events, and only then counts as
   * open, so every charge committed once it is open comes after its starting
   * point (a charge committed before the read but published after it was still
   * heard, and is delivered). Then re-checks the key (closing the
   * revoke-while-subscribing gap) and starts from the latest events or the
   * resume points, replaying from the database what comes after those.
   */
  async function stream<T extends keyof Topics>(request: StreamRequest<T>): Promise<() => void> {
    const { actor, sink } = request;
    const subscription = new LiveStream<Topics[T]>(actor, request.watch, request.wants, request.source, sink, {
      recovered: (count) => count > 0 && deps.onRecovered?.(count),
      onError: deps.onError,
    });
    const unsubscribe = deps.bus.subscribe(request.topic, actor.teamId, (event) => subscription.receive(event));
    const keyIndex = teams.open(request.topic, request.source, actor.teamId);
    let unregister = () => {};
    const stop = () => {
      unsubscribe();
      unregister();
      keyIndex.release();
      live.delete(subscription as LiveStream<unknown>);
      subscription.close();
    };
    try {
      const watch = request.watch;
      const latest = await request.source.latest("team" in watch ? { teamIds: [watch.team], keys: [] } : { teamIds: [], keys: [watch.key] });
      unregister = registry.add({ apiKeyId: actor.apiKeyId, accountId: actor.accountId, scope: request.scope, end: (error) => sink.end(error), notify: (error) => sink.notice(error) });
      const state = (await deps.keyStates([actor.apiKeyId])).get(actor.apiKeyId);
      if (!state || streamRefusal(state, deps.clock.now(), request.scope)) {
        stop();
        sink.end(unauthorized("This API key is no longer valid; the subscription has ended."));
        return stop;
      }
      subscription.start(startingPoints(latest, request.resume, subscription), keyIndex.keys);
      live.add(subscription as LiveStream<unknown>);
      for (const key of request.resume.keys()) void subscription.fill(key, latest.get(key)?.sequence ?? 0);
      return stop;
    } catch (error) {
      stop();
      throw error;
    }
  }

  return {
    stream,
    get openSubscriptions(): number {
      return registry.size;
    },
    close(): void {
      stopKeyCheck();
      stopLedgerCheck();
    },
  };
}

export type LiveHub = ReturnType<typeof createLiveHub>;

/** Resume points must exist (0 to the latest sequence) and be at most RESUME_MAX back. */
export async function checkResumePoints<E>(source: EventSource<E>, points: Map<string, number>, what: (key: string) => string): Promise<void> {
  if (points.size === 0) return;
  const latest = await source.latest({ teamIds: [], keys: [...points.keys()] });
  for (const [key, after] of points) {
    const newest = latest.get(key)?.sequence ?? 0;
    if (!Number.isInteger(after) || after < 0 || after > newest) {
      throw new DomainError("invalid_request", `Cannot resume ${what(key)} after sequence ${after}: its events are numbered 1 to ${newest}.`, { field: "afterSequence", latest: newest });
    }
    if (newest - after > RESUME_MAX) {
      throw new DomainError("invalid_request", `Cannot resume ${what(key)} ${newest - after} events back: at most ${RESUME_MAX}. Read them with a query instead, then subscribe from the latest sequence.`, {
        field: "afterSequence",
        latest: newest,
      });
    }
  }
}
