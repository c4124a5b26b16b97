import { afterEach, describe, expect, it, vi } from "vitest";
import { DEADLINE_SLICE_MS, createDeadlines } from "../src/edge/deadlines.ts";

describe("request deadlines shared per slice (src/edge/deadlines.ts)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("answers a stuck request with the timed-out error between timeoutMs and timeoutMs + one slice, and aborts its signal", async () => {
    vi.useFakeTimers();
    const deadlines = createDeadlines(1_000, () => Date.now());
    let seen: AbortSignal | undefined;
    const answer = deadlines.within(
      (signal) => {
        seen = signal;
        return new Promise<string>(() => {});
      },
      (error) => `expired: ${error.code} ${error.message}`,
    );
    let settled: string | undefined;
    void Promise.resolve(answer).then((value) => (settled = value));
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).toBeUndefined();
    expect(seen!.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(DEADLINE_SLICE_MS + 1);
    expect(settled).toMatch(/^expired: internal_error .*1000 ms/);
    expect(seen!.aborted).toBe(true);
  });

  it("requests of one slice share a signal; a later slice has its own; a finished request is not answered twice", async () => {
    vi.useFakeTimers();
    const deadlines = createDeadlines(1_000, () => Date.now());
    const signals: AbortSignal[] = [];
    const expired = vi.fn(() => "expired");
    const first = await deadlines.within(
      async (signal) => {
        signals.push(signal);
        return "done";
      },
      expired,
    );
    const note = (signal: AbortSignal) => {
      signals.push(signal);
      return "noted";
    };
    deadlines.within(note, expired);
    await vi.advanceTimersByTimeAsync(DEADLINE_SLICE_MS);
    deadlines.within(note, expired);
    expect(first).toBe("done");
    expect(signals[0]).toBe(signals[1]);
    expect(signals[2]).not.toBe(signals[0]);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(expired).not.toHaveBeenCalled();
  });

  it("a synchronous answer is returned as it is; a rejection passes through", async () => {
    const deadlines = createDeadlines(1_000);
    expect(deadlines.within(() => 42, () => 0)).toBe(42);
    await expect(deadlines.within(() => Promise.reject(new Error("boom")), () => "expired")).rejects.toThrow("boom");
  });

  it("an expired() that throws rejects the request (the REST surface's way)", async () => {
    vi.useFakeTimers();
    const deadlines = createDeadlines(500, () => Date.now());
    const answer = deadlines.within(
      () => new Promise(() => {}),
      (error) => {
        throw error;
      },
    );
    const outcome = Promise.resolve(answer).then(
      () => "resolved",
      (error: { code?: string }) => error.code,
    );
    await vi.advanceTimersByTimeAsync(500 + DEADLINE_SLICE_MS);
    expect(await outcome).toBe("internal_error");
  });
});
