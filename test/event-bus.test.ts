import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { createRedisBus, EVENTS_PER_MESSAGE_MAX } from "../src/events/redis.ts";
import type { EventBus } from "../src/events/bus.ts";
import type { SpendUpdate } from "../src/events/types.ts";
import { REDIS_TEST_URL } from "./helpers/databases.ts";
import { redisPrefix } from "./helpers/instances.ts";

function spendUpdate(teamId: string, sequence: number): SpendUpdate {
  return {
    teamId,
    subAccount: { id: "sa_1", totalSpent: sequence, creditLimit: null, status: "active" },
    amount: 1,
    messageId: `msg_${sequence}`,
    teamBalance: 1_000_000 - sequence,
    remainingCredit: null,
    limitReached: false,
    chargedAt: new Date(0).toISOString(),
    sequence,
    budgetRemaining: null,
  };
}

describe("the Redis event bus", () => {
  const closing: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0)) await close();
  });

  async function setUp() {
    const prefix = redisPrefix();
    const errors: unknown[] = [];
    const open = () => createRedisBus({ url: REDIS_TEST_URL, prefix, timeoutMs: 2000, onError: (error) => errors.push(error) });
    const [sender, receiver] = [await open(), await open()];
    closing.push(() => sender.close(), () => receiver.close());
    // Reads the channel as Redis carries it: one entry per PUBLISH.
    const wire = new Redis(REDIS_TEST_URL);
    closing.push(() => wire.disconnect());
    const messages: string[] = [];
    wire.on("message", (_channel: string, raw: string) => messages.push(raw));
    await wire.subscribe(`${prefix}events`);
    return { sender, receiver, wire, prefix, messages, errors };
  }

  const received = (bus: EventBus, teamId: string) => {
    const events: SpendUpdate[] = [];
    bus.subscribe("spend", teamId, (event) => events.push(event));
    return events;
  };

  it("the events published in one synchronous run travel as one message per 256, in order, and all arrive", async () => {
    const { sender, receiver, messages } = await setUp();
    const events = received(receiver, "team_a");
    const count = EVENTS_PER_MESSAGE_MAX + 44;
    for (let sequence = 1; sequence <= count; sequence += 1) sender.publish("spend", spendUpdate("team_a", sequence));
    await expect.poll(() => events.length, { timeout: 5000 }).toBe(count);
    expect(events.map((event) => event.sequence)).toEqual(Array.from({ length: count }, (_, index) => index + 1));
    expect(events[0]).toEqual(spendUpdate("team_a", 1));
    expect(messages.map((raw) => (JSON.parse(raw) as { events: unknown[] }).events.length)).toEqual([EVENTS_PER_MESSAGE_MAX, 44]);
  });

  it("an event published alone leaves at once, without waiting for others", async () => {
    const { sender, receiver, messages } = await setUp();
    const events = received(receiver, "team_b");
    sender.publish("spend", spendUpdate("team_b", 1));
    await expect.poll(() => events.length, { timeout: 2000 }).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    sender.publish("spend", spendUpdate("team_b", 2));
    await expect.poll(() => events.length, { timeout: 2000 }).toBe(2);
    expect(messages).toHaveLength(2);
  });

  it("a message of a type it does not know is reported and skipped; the events after it still arrive", async () => {
    const { sender, receiver, prefix, errors } = await setUp();
    const events = received(receiver, "team_c");
    const raw = new Redis(REDIS_TEST_URL);
    closing.push(() => raw.disconnect());
    await raw.publish(`${prefix}events`, "null");
    await raw.publish(`${prefix}events`, JSON.stringify({ type: "from-a-newer-version", events: [] }));
    sender.publish("spend", spendUpdate("team_c", 1));
    await expect.poll(() => events.length, { timeout: 2000 }).toBe(1);
    // Both buses read the channel, and each reports both.
    expect([...new Set(errors.map(String))]).toEqual([expect.stringContaining("unknown type null"), expect.stringContaining('unknown type "from-a-newer-version"')]);
  });
});
