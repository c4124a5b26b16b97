import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_PROVIDER } from "./helpers/databases.ts";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";

/**
 * Balance reads under load (README.md, "Scaling out"): on PostgreSQL the
 * account reads of one event-loop turn share one statement. Each caller still
 * gets its own account's view, as of after every charge committed before its
 * request, and an unknown account reads as none.
 */

const BALANCE = `{ balance { balance isSubAccount totalSpent creditLimit remainingCredit } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id cost } }`;
const SUB_ACCOUNTS = 24;
const TEAM_BALANCE = 500_000;

describe(`balance reads (${TEST_PROVIDER})`, () => {
  let gw: TestGateway;
  let mainKey: string;
  let subs: { id: string; key: string; creditLimit: number | null }[];

  beforeAll(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_RPS: "0" } });
    ({ mainKey } = await gw.createTeam({ balance: TEAM_BALANCE }));
    subs = [];
    for (let index = 0; index < SUB_ACCOUNTS; index += 1) {
      const creditLimit = index % 3 === 0 ? null : 10_000 + index;
      const created = (
        await gw.gql(`mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`, { input: { name: `Reader ${index}`, creditLimit } }, mainKey)
      ).data.createSubAccount;
      subs.push({ id: created.subAccount.id, key: created.apiKey, creditLimit });
    }
  });
  afterAll(() => gw?.close());

  it("answers many callers at once, each with its own account's spending, after every charge committed before the request", async () => {
    // Sub-account i sends i messages; then every caller asks at once, the main key too.
    const costs = await Promise.all(
      subs.map(async ({ key }, index) => {
        let spent = 0;
        for (let message = 0; message < index % 4; message += 1) {
          const sent = await gw.gql(SEND, { input: { to: "+14155550100", text: `hello ${message}` } }, key);
          expect(sent.errors).toBeUndefined();
          spent += Number(sent.data.sendMessage.cost);
        }
        return spent;
      }),
    );
    const teamSpent = costs.reduce((sum, cost) => sum + cost, 0);
    expect(teamSpent).toBeGreaterThan(0);

    const [main, ...views] = await Promise.all([gw.gql(BALANCE, {}, mainKey), ...subs.map(({ key }) => gw.gql(BALANCE, {}, key))]);
    expect(main.data.balance).toEqual({ balance: TEAM_BALANCE - teamSpent, isSubAccount: false, totalSpent: null, creditLimit: null, remainingCredit: null });
    views.forEach((view, index) => {
      const { creditLimit } = subs[index]!;
      expect(view.errors).toBeUndefined();
      expect(view.data.balance).toEqual({
        balance: TEAM_BALANCE - teamSpent,
        isSubAccount: true,
        totalSpent: costs[index],
        creditLimit,
        remainingCredit: creditLimit === null ? null : creditLimit - costs[index]!,
      });
    });
  });

  it("reads the accounts asked for in one turn of the event loop with one statement on PostgreSQL, one each on SQLite", async () => {
    const ids = [...subs.map(({ id }) => id), "no-such-account"];
    // Only the balance reads are counted: the delivery reports of the sends before may be written meanwhile.
    const balanceReads = () => gw.sql.statements.filter((sql) => sql.includes('FROM "Account" a JOIN "Team" t')).length;
    gw.sql.reset();
    const records = await Promise.all(ids.map((id) => gw.db.charges.readAccountBalance(id)));
    expect(balanceReads()).toBe(TEST_PROVIDER === "postgresql" ? 1 : ids.length);
    expect(records.at(-1)).toBeNull();
    const expected = await gw.db.prisma.account.findMany({ where: { id: { in: ids } }, select: { id: true, totalSpent: true, creditLimit: true } });
    records.slice(0, -1).forEach((record, index) => {
      const account = expected.find(({ id }) => id === ids[index])!;
      expect(record).toMatchObject({ totalSpent: account.totalSpent, creditLimit: account.creditLimit, status: "active", currency: "USD" });
    });

    // Reads from separate turns are separate statements: a read never waits for company.
    gw.sql.reset();
    for (const { id } of subs.slice(0, 3)) await gw.db.charges.readAccountBalance(id);
    expect(balanceReads()).toBe(3);
  });
});
