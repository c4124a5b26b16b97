import { afterEach, describe, expect, it, vi } from "vitest";
import type { DomainError } from "../src/domain/errors.ts";
import { createInProcessBus } from "../src/events/inProcess.ts";
import type { KeyState } from "../src/services/auth.ts";
import type { Actor } from "../src/services/deps.ts";
import { createLiveHub, LEDGER_CHECK_MS, type EventSource } from "../src/services/live/index.ts";
import { LiveStream } from "../src/services/live/stream.ts";

/** Events never arrive here: the test is about which subscriptions the key check ends. */
const quietSource: EventSource<{ key: string; sequence: number }> = {
  keyOf: (event) => event.key,
  sequenceOf: (event) => event.sequence,
  read: async () => [],
  latest: async () => new Map(),
};

const liveKey: KeyState = { revokedAt: null, expiresAt: null, permissions: [], account: { status: "active", kind: "sub" } };

function actor(apiKeyId: string): Actor {
  return { apiKeyId, accountId: `account-of-${apiKeyId}`, teamId: "team", kind: "sub", environment: "live", scopes: ["spend:read"] } as Actor;
}

function sink() {
  const ended: DomainError[] = [];
  return { ended, update: () => {}, notice: () => {}, end: (error: DomainError) => ended.push(error) };
}

describe("the live hub's open subscriptions (src/services/live/index.ts)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("does not end a subscription opened while the key states were being read: its key was not asked about", async () => {
    vi.useFakeTimers();
    const asked: string[][] = [];
    let answerCheck: (states: Map<string, KeyState>) => void = () => {};
    const keyStates = vi.fn(async (ids: string[]) => {
      asked.push(ids);
      // Opening a stream asks at once; the periodic check (the second question) is held until the test answers it.
      if (asked.length !== 2) return new Map(ids.map((id) => [id, liveKey]));
      return new Promise<Map<string, KeyState>>((resolve) => (answerCheck = resolve));
    });
    const hub = createLiveHub({ bus: createInProcessBus(), clock: { now: () => new Date() }, onError: (error) => { throw error; }, keyStates });
    const open = (apiKeyId: string, into: ReturnType<typeof sink>) =>
      hub.stream({ topic: "spend", actor: actor(apiKeyId), scope: "spend:read", source: quietSource as never, watch: { key: `account-of-${apiKeyId}` }, wants: () => true, resume: new Map(), sink: into });
    const first = sink();
    await open("key-a", first);
    await vi.advanceTimersByTimeAsync(500);
    expect(asked.at(-1)).toEqual(["key-a"]);
    const second = sink();
    await open("key-b", second);
    answerCheck(new Map([["key-a", liveKey]]));
    await vi.advanceTimersByTimeAsync(0);
    expect(second.ended).toEqual([]);
    expect(first.ended).toEqual([]);
    expect(hub.openSubscriptions).toBe(2);
    hub.close();
  });

  it("still ends a subscription whose key was asked about and no longer exists", async () => {
    vi.useFakeTimers();
    let calls = 0;
    const keyStates = async (ids: string[]) => (++calls === 1 ? new Map(ids.map((id) => [id, liveKey])) : new Map<string, KeyState>());
    const hub = createLiveHub({ bus: createInProcessBus(), clock: { now: () => new Date() }, onError: (error) => { throw error; }, keyStates });
    const into = sink();
    await hub.stream({ topic: "spend", actor: actor("key-gone"), scope: "spend:read", source: quietSource as never, watch: { key: "account-of-key-gone" }, wants: () => true, resume: new Map(), sink: into });
    await vi.advanceTimersByTimeAsync(500);
    expect(into.ended.map((error) => error.message)).toEqual(["This API key no longer exists; the subscription has ended."]);
    expect(hub.openSubscriptions).toBe(0);
    hub.close();
  });

  it("delivers a charge committed once the subscription counts as open, even when the starting point is read after the commit and the event published after that", async () => {
    vi.useFakeTimers();
    type Charge = { teamId: string; key: string; sequence: number };
    const ledger: Charge[] = [];
    const source: EventSource<Charge> = {
      keyOf: (event) => event.key,
      sequenceOf: (event) => event.sequence,
      read: async (key, from, to) => ledger.filter((event) => event.key === key && event.sequence >= from && event.sequence <= to),
      latest: async () => new Map(ledger.map((event) => [event.key, { teamId: event.teamId, sequence: event.sequence }])),
    };
    let answerKeyCheck: () => void = () => {};
    const keyStates = (ids: string[]) => new Promise<Map<string, KeyState>>((resolve) => (answerKeyCheck = () => resolve(new Map(ids.map((id) => [id, liveKey])))));
    const bus = createInProcessBus();
    const hub = createLiveHub({ bus, clock: { now: () => new Date() }, onError: (error) => { throw error; }, keyStates });
    const received: Charge[] = [];
    const opened = hub.stream({
      topic: "spend",
      actor: actor("key-a"),
      scope: "spend:read",
      source: source as never,
      watch: { key: "account-a" },
      wants: () => true,
      resume: new Map(),
      sink: { update: (event) => received.push(event as never), notice: () => {}, end: () => {} },
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(hub.openSubscriptions).toBe(1);
    // Counted as open: a charge commits now, and its event is published only after the stream has started.
    const charge = { teamId: "team", key: "account-a", sequence: 1 };
    ledger.push(charge);
    answerKeyCheck();
    await opened;
    bus.publish("spend", charge as never);
    await vi.advanceTimersByTimeAsync(0);
    expect(received).toEqual([charge]);
    hub.close();
  });

  describe("the ledger check (every LEDGER_CHECK_MS)", () => {
    type Charge = { teamId: string; key: string; sequence: number };

    /** A ledger the test commits to, read as the database would be; `failReads` makes the next reads fail. */
    function ledgerSource() {
      const ledger: Charge[] = [];
      let failReads = 0;
      const reads = { count: 0 };
      const source: EventSource<Charge> = {
        keyOf: (event) => event.key,
        sequenceOf: (event) => event.sequence,
        read: async (key, from, to) => {
          reads.count += 1;
          if (failReads > 0) {
            failReads -= 1;
            throw new Error("database unavailable");
          }
          return ledger.filter((event) => event.key === key && event.sequence >= from && event.sequence <= to);
        },
        latest: async () => new Map(ledger.map((event) => [event.key, { teamId: event.teamId, sequence: event.sequence }])),
      };
      return { ledger, source, reads, failNextReads: (count: number) => (failReads = count) };
    }

    async function teamStreams(source: EventSource<Charge>) {
      vi.useFakeTimers();
      const bus = createInProcessBus();
      const errors: unknown[] = [];
      const hub = createLiveHub({ bus, clock: { now: () => new Date() }, onError: (error) => errors.push(error), keyStates: async (ids) => new Map(ids.map((id) => [id, liveKey])) });
      const received: Charge[][] = [];
      /** Opens `count` main-key streams of the team, resumed from `resume` when given. */
      const open = async (count: number, resume = new Map<string, number>()) => {
        for (let index = 0; index < count; index += 1) {
          const into: Charge[] = [];
          received.push(into);
          await hub.stream({
            topic: "spend",
            actor: { ...actor(`main-${received.length}`), kind: "main" } as Actor,
            scope: "spend:read",
            source: source as never,
            watch: { team: "team" },
            wants: () => true,
            resume,
            sink: { update: (event) => into.push(event as never), notice: () => {}, end: () => {} },
          });
        }
      };
      return { bus, hub, received, errors, open };
    }

    it("delivers to every stream of the team a committed event the bus never carried, once, with one read of the database", async () => {
      const { ledger, source, reads } = ledgerSource();
      const { hub, received, open } = await teamStreams(source);
      await open(200);
      reads.count = 0;
      ledger.push({ teamId: "team", key: "account-a", sequence: 1 });
      await vi.advanceTimersByTimeAsync(LEDGER_CHECK_MS);
      await vi.advanceTimersByTimeAsync(LEDGER_CHECK_MS);
      expect(received.every((events) => events.length === 1 && events[0]!.sequence === 1)).toBe(true);
      // The 200 streams missed the same event: they share one read rather than asking 200 times.
      expect(reads.count).toBe(1);
      hub.close();
    });

    it("shares a read only while it is on its way: a later miss reads again, and a failed shared read fails every stream that waited on it", async () => {
      const { ledger, source, reads, failNextReads } = ledgerSource();
      const { hub, received, errors, open } = await teamStreams(source);
      await open(50);
      reads.count = 0;
      ledger.push({ teamId: "team", key: "account-a", sequence: 1 });
      failNextReads(1);
      await vi.advanceTimersByTimeAsync(LEDGER_CHECK_MS);
      expect(reads.count).toBe(1);
      expect(errors).toHaveLength(50);
      expect(received.every((events) => events.length === 0)).toBe(true);
      // Each stream now owes a catch-up; the next checks read again (once) and deliver.
      await vi.advanceTimersByTimeAsync(LEDGER_CHECK_MS * 2);
      expect(received.every((events) => events.map((event) => event.sequence).join() === "1")).toBe(true);
      const afterFirst = reads.count;
      ledger.push({ teamId: "team", key: "account-a", sequence: 2 });
      await vi.advanceTimersByTimeAsync(LEDGER_CHECK_MS * 2);
      expect(received.every((events) => events.map((event) => event.sequence).join() === "1,2")).toBe(true);
      expect(reads.count).toBe(afterFirst + 1);
      hub.close();
    });

    it("visits no stream for a key whose latest event was heard on the bus", async () => {
      const { ledger, source } = ledgerSource();
      const { bus, hub, received, open } = await teamStreams(source);
      await open(200);
      const charge = { teamId: "team", key: "account-a", sequence: 1 };
      ledger.push(charge);
      bus.publish("spend", charge as never);
      const visits = vi.spyOn(LiveStream.prototype, "catchUp");
      await vi.advanceTimersByTimeAsync(LEDGER_CHECK_MS * 2);
      expect(visits).not.toHaveBeenCalled();
      expect(received.every((events) => events.length === 1)).toBe(true);
      // A second charge whose publish was lost: now the check visits the team's streams, and they read it.
      ledger.push({ teamId: "team", key: "account-a", sequence: 2 });
      await vi.advanceTimersByTimeAsync(LEDGER_CHECK_MS * 2);
      expect(visits).toHaveBeenCalled();
      expect(received.every((events) => events.map((event) => event.sequence).join() === "1,2")).toBe(true);
      visits.mockRestore();
      hub.close();
    });

    it("retries a stream whose replay read failed, though the bus carried the key's latest event before it opened", async () => {
      const { ledger, source, failNextReads } = ledgerSource();
      const { bus, hub, received, errors, open } = await teamStreams(source);
      await open(1);
      for (let sequence = 1; sequence <= 3; sequence += 1) {
        const charge = { teamId: "team", key: "account-a", sequence };
        ledger.push(charge);
        bus.publish("spend", charge as never);
      }
      failNextReads(1);
      await open(1, new Map([["account-a", 0]]));
      await vi.advanceTimersByTimeAsync(0);
      expect(errors.map((error) => (error as Error).message)).toEqual(["database unavailable"]);
      expect(received[1]).toEqual([]);
      await vi.advanceTimersByTimeAsync(LEDGER_CHECK_MS * 2);
      expect(received.map((events) => events.map((event) => event.sequence).join())).toEqual(["1,2,3", "1,2,3"]);
      hub.close();
    });
  });
});
