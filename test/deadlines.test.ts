import { afterEach, describe, expect, it, vi } from "vitest";
import { DEADLINE_SLICE_MS, createDeadlines } from "../src/edge/deadlines.ts";

describe("request deadlines shared per slice (src/edge/deadlines.ts)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("answers a stuck request with the timed-out error between timeoutMs and timeoutMs + one slice, and aborts its stop signal", async () => {
    vi.useFakeTimers();
    const deadlines = createDeadlines(1_000, () => Date.now());
    const stop = new AbortController();
    const answer = deadlines.within(
      () => new Promise<string>(() => {}),
      (error) => `expired: ${error.code} ${error.message}`,
      stop,
    );
    let settled: string | undefined;
    void Promise.resolve(answer).then((value) => (settled = value));
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).toBeUndefined();
    expect(stop.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(DEADLINE_SLICE_MS + 1);
    expect(settled).toMatch(/^expired: internal_error .*1000 ms/);
    expect(stop.signal.aborted).toBe(true);
  });

  it("a request finished in time is not answered twice, and its stop signal is never aborted", async () => {
    vi.useFakeTimers();
    const deadlines = createDeadlines(1_000, () => Date.now());
    const expired = vi.fn(() => "expired");
    const stop = new AbortController();
    expect(await deadlines.within(async () => "done", expired, stop)).toBe("done");
    await vi.advanceTimersByTimeAsync(2_000);
    expect(expired).not.toHaveBeenCalled();
    expect(stop.signal.aborted).toBe(false);
  });

  it("requests of one slice expire together; a later slice expires later", async () => {
    vi.useFakeTimers();
    const deadlines = createDeadlines(1_000, () => Date.now());
    const expiredAt: Record<string, number> = {};
    const start = Date.now();
    const stuck = (name: string) =>
      void Promise.resolve(deadlines.within(() => new Promise(() => {}), () => (expiredAt[name] = Date.now() - start)));
    stuck("first");
    await vi.advanceTimersByTimeAsync(50);
    stuck("same slice");
    await vi.advanceTimersByTimeAsync(DEADLINE_SLICE_MS);
    stuck("next slice");
    await vi.advanceTimersByTimeAsync(3_000);
    expect(expiredAt.first).toBe(expiredAt["same slice"]);
    expect(expiredAt["next slice"]!).toBeGreaterThan(expiredAt.first!);
    for (const [name, at] of Object.entries(expiredAt)) expect(at, name).toBeLessThanOrEqual(1_000 + DEADLINE_SLICE_MS + 150);
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
