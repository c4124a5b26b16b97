import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, sqliteFile } from "../src/db/client.ts";
import type { ChargeAttempt } from "../src/db/charges.ts";
import { SqliteWriterClient } from "../src/db/sqliteWriterClient.ts";
import { chargeAttemptFor } from "../src/services/messages.ts";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";
import { checkInvariants } from "./helpers/invariants.ts";

/**
 * The SQLite writer thread (src/db/sqliteWriterClient.ts, src/db/sqliteWriterThread.ts):
 * every write of the hot path runs on a thread of its own, in order. A write
 * that waits for SQLite's lock waits there, while the gateway keeps answering;
 * closing the store waits for the writes on their way; a thread that cannot
 * work fails each write with its reason instead of leaving it hanging.
 */

const BALANCE = `{ balance { balance totalSpent } }`;

describe.skipIf(TEST_PROVIDER !== "sqlite")("the SQLite writer thread", () => {
  let gw: TestGateway;
  let team: { teamId: string; mainKey: string };
  let sub: { id: string; apiKeyId: string; key: string };

  beforeAll(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_RPS: "0" } });
    team = await gw.createTeam({ balance: 100_000 });
    const made = await gw.gql(`mutation { createSubAccount(input: { name: "Writer" }) { apiKey subAccount { id apiKeys { id } } } }`, {}, team.mainKey);
    const created = made.data.createSubAccount;
    sub = { id: created.subAccount.id, apiKeyId: created.subAccount.apiKeys[0].id, key: created.apiKey };
  });
  afterAll(() => gw?.close());

  const attempt = (cost: number): ChargeAttempt =>
    chargeAttemptFor(
      { teamId: team.teamId, accountId: sub.id, apiKeyId: sub.apiKeyId, isTestMode: false },
      { to: "+14155550100", channel: "sms", text: "threaded", segments: 1, idempotencyKey: null, metadata: null },
      BigInt(cost),
      gw.clock.now(),
    );

  it("a charge waiting for SQLite's write lock commits once it is free, and the gateway answers meanwhile", async () => {
    await gw.db.charges.charge(attempt(1), () => {}); // the thread is up
    const blocker = new Database(sqliteFile(gw.databaseUrl));
    blocker.exec("BEGIN IMMEDIATE");
    let settled = false;
    const pending = gw.db.charges.charge(attempt(7), () => {}).finally(() => (settled = true));
    try {
      // The lock is held elsewhere: the charge waits, and reads over HTTP still get answers (the committed state).
      for (let read = 0; read < 5; read += 1) {
        const answer = await gw.gql<{ balance: { totalSpent: number } }>(BALANCE, {}, sub.key);
        expect(answer.errors).toBeUndefined();
        expect(answer.data.balance.totalSpent).toBe(1);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(settled).toBe(false);
    } finally {
      blocker.exec("ROLLBACK");
      blocker.close();
    }
    expect((await pending).kind).toBe("stored");
    expect((await gw.gql<{ balance: { totalSpent: number } }>(BALANCE, {}, sub.key)).data.balance.totalSpent).toBe(8);
    await checkInvariants(gw.db, team.teamId);
  });

  it("closing the store waits for the writes on their way: each is answered and committed", async () => {
    const second = openDatabase(gw.databaseUrl);
    const attempts = Array.from({ length: 200 }, () => attempt(1));
    const results = attempts.map((each) => second.charges.charge(each, () => {}));
    const reports = attempts.slice(0, 50).map((each) => second.charges.advanceMessageStatus(each.message.id, "sent", gw.clock.now()));
    await second.close();
    expect((await Promise.all(results)).map((result) => result.kind)).toEqual(attempts.map(() => "stored"));
    await Promise.all(reports);
    const ids = attempts.map((each) => each.message.id);
    expect(await gw.db.prisma.ledgerEntry.count({ where: { messageId: { in: ids } } })).toBe(200);
    expect(await gw.db.prisma.message.count({ where: { id: { in: ids.slice(0, 50) }, status: "sent" } })).toBe(50);
    await checkInvariants(gw.db, team.teamId);
  });

  it("a thread that cannot open its database fails every write with the reason, again on the next write, and never hangs", async () => {
    const writer = new SqliteWriterClient("/nonexistent-directory/gateway.db");
    for (let tries = 0; tries < 2; tries += 1) {
      const failure = await writer.touchApiKey("key", new Date(), new Date()).then(
        () => null,
        (error: unknown) => error as Error & { code?: string },
      );
      expect(failure?.message).toMatch(/Cannot open database because the directory does not exist/);
    }
    await writer.close();
    await expect(writer.touchApiKey("key", new Date(), new Date())).rejects.toThrow(/closed/);
  });
});
