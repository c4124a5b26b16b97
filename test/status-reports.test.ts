import { describe, expect, it } from "vitest";
import { StatusReportBatcher, type StatusReport } from "../src/db/statusReports.ts";

describe("delivery reports written in batches", () => {
  it("writes the reports of one event-loop turn together, each message once per write, in report order", async () => {
    const writes: StatusReport[][] = [];
    const batcher = new StatusReportBatcher(async (reports) => void writes.push(reports));
    const at = new Date();
    await Promise.all([
      batcher.add({ messageId: "a", status: "sent", at }),
      batcher.add({ messageId: "b", status: "sent", at }),
      batcher.add({ messageId: "a", status: "delivered", at }),
    ]);
    expect(writes.map((batch) => batch.map((r) => `${r.messageId}:${r.status}`))).toEqual([["a:sent", "b:sent"], ["a:delivered"]]);
  });

  it("gathers the reports that arrive within its window, turn after turn, into one write; the next window starts with the next report", async () => {
    const writes: string[][] = [];
    const batcher = new StatusReportBatcher(async (reports) => void writes.push(reports.map((r) => r.messageId)), 200);
    const at = new Date();
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const first: Promise<void>[] = [];
    for (const id of ["a", "b", "c", "d"]) {
      first.push(batcher.add({ messageId: id, status: "sent", at }));
      await turn();
    }
    expect(writes).toEqual([]);
    await Promise.all(first);
    expect(writes).toEqual([["a", "b", "c", "d"]]);
    await batcher.add({ messageId: "e", status: "sent", at });
    expect(writes).toEqual([["a", "b", "c", "d"], ["e"]]);
  });

  it("rejects every report of a failed write, and goes on with the next ones", async () => {
    let fail = true;
    const batcher = new StatusReportBatcher(async () => {
      if (fail) throw new Error("database is unreachable");
    });
    const at = new Date();
    const failed = [batcher.add({ messageId: "a", status: "sent", at }), batcher.add({ messageId: "b", status: "sent", at })];
    for (const report of failed) await expect(report).rejects.toThrow("unreachable");
    fail = false;
    await expect(batcher.add({ messageId: "c", status: "sent", at })).resolves.toBeUndefined();
  });
});
