import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { openDatabase, type Database } from "../src/db/client.ts";
import { createLogger } from "../src/logger.ts";
import { createGateway, type Gateway } from "../src/server.ts";
import { TSX, childEnv, run, type Finished } from "./helpers/process.ts";

/**
 * The operator CLI (DESIGN.md section 7) as an operator runs it: a child
 * process against the database named by DATABASE_URL, a fresh file it migrates
 * itself. What it creates is then used through a real gateway on that file.
 */

const ONE_MAIN_ACCOUNT =
  "Team already has a main account. Create a sub-account instead, or create a new team for another main account.";
const CLI_TIMEOUT_MS = 60_000;

describe("operator CLI", () => {
  let dir: string;
  let databaseUrl: string;
  let db: Database;
  let gateway: Gateway;
  let gatewayUrl: string;
  let created: { team: { id: string }; mainAccount: { id: string }; apiKey: string };

  const admin = (...args: string[]): Promise<Finished> =>
    run(TSX, ["src/cli/admin.ts", ...args], childEnv({ DATABASE_URL: databaseUrl }), CLI_TIMEOUT_MS);

  async function balanceOverHttp(key: string) {
    const response = await fetch(`${gatewayUrl}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ query: `{ balance { balance currency isSubAccount } viewer { team { id } account { id isSubAccount } } }` }),
    });
    return { status: response.status, body: (await response.json()) as any };
  }

  /** What a refused command must leave exactly as it was. */
  async function snapshot() {
    const [teams, accounts, apiKeys, ledger] = await Promise.all([
      db.prisma.team.findMany({ orderBy: { id: "asc" }, select: { id: true, balance: true, updatedAt: true } }),
      db.prisma.account.count(),
      db.prisma.apiKey.count(),
      db.prisma.ledgerEntry.count(),
    ]);
    return { teams, accounts, apiKeys, ledger };
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "gateway-cli-"));
    databaseUrl = `file:${path.join(dir, "cli.db")}`;
  });

  afterAll(async () => {
    await gateway?.close();
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("create-team --json migrates the empty database and prints exactly { team: { id }, mainAccount: { id }, apiKey }", async () => {
    const result = await admin("create-team", "--name", "Acme Corp", "--balance", "5000", "--json");
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const printed = JSON.parse(lines[0]!);
    expect(printed).toEqual({
      team: { id: expect.any(String) },
      mainAccount: { id: expect.any(String) },
      apiKey: expect.stringMatching(/^zv_live_[0-9A-Za-z]{32,}$/),
    });
    expect(Object.keys(printed).sort()).toEqual(["apiKey", "mainAccount", "team"]);
    created = printed;

    // The database now exists (the CLI applied the migrations) and holds the team with its funded balance.
    db = openDatabase(databaseUrl);
    const team = await db.prisma.team.findUniqueOrThrow({ where: { id: created.team.id }, include: { accounts: true } });
    expect({ name: team.name, balance: team.balance, currency: team.currency }).toEqual({ name: "Acme Corp", balance: 5000n, currency: "USD" });
    expect(team.accounts.map((a) => ({ id: a.id, kind: a.kind }))).toEqual([{ id: created.mainAccount.id, kind: "main" }]);
    const ledger = await db.prisma.ledgerEntry.findMany({ where: { teamId: created.team.id } });
    expect(ledger.map((e) => ({ kind: e.kind, amount: e.amount, balanceAfter: e.balanceAfter }))).toEqual([
      { kind: "top_up", amount: 5000n, balanceAfter: 5000n },
    ]);
  });

  it("stores the printed key only as its SHA-256 hash and a short display prefix", async () => {
    const rows = await db.prisma.apiKey.findMany({ where: { accountId: created.mainAccount.id } });
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row.keyHash).toBe(createHash("sha256").update(created.apiKey).digest("hex"));
    expect(created.apiKey.startsWith(row.keyPrefix)).toBe(true);
    expect(row.keyPrefix.length).toBeLessThan(created.apiKey.length - 20);
    // The plaintext is in no column of any row.
    const everything = await Promise.all([db.prisma.apiKey.findMany(), db.prisma.account.findMany(), db.prisma.team.findMany()]);
    expect(JSON.stringify(everything, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain(created.apiKey);
  });

  it("the printed key works against a gateway on the same database", async () => {
    const config = loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: "silent", HOST: "127.0.0.1", PORT: "0" });
    gateway = createGateway({ config, db, logger: createLogger("silent") });
    gatewayUrl = await gateway.listen(0, "127.0.0.1");
    const { status, body } = await balanceOverHttp(created.apiKey);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      balance: { balance: 5000, currency: "USD", isSubAccount: false },
      viewer: { team: { id: created.team.id }, account: { id: created.mainAccount.id, isSubAccount: false } },
    });
  });

  it("create-team without --json prints the key once, in words", async () => {
    const result = await admin("create-team", "--name", "Second team");
    expect(result.code, result.stderr).toBe(0);
    const keys = result.stdout.match(/zv_live_[0-9A-Za-z]{32,}/g) ?? [];
    expect(keys).toHaveLength(1);
    expect(result.stdout).toMatch(/shown only once/);
    expect((await balanceOverHttp(keys[0]!)).body.data.balance).toEqual({ balance: 0, currency: "USD", isSubAccount: false });
  });

  it("top-up --team ID --amount 2500 raises the balance and writes a top_up ledger entry", async () => {
    const result = await admin("top-up", "--team", created.team.id, "--amount", "2500");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("7500");
    const team = await db.prisma.team.findUniqueOrThrow({ where: { id: created.team.id } });
    expect(team.balance).toBe(7500n);
    const ledger = await db.prisma.ledgerEntry.findMany({ where: { teamId: created.team.id }, orderBy: { createdAt: "asc" } });
    expect(ledger.map((e) => ({ kind: e.kind, amount: e.amount, balanceAfter: e.balanceAfter, accountId: e.accountId }))).toEqual([
      { kind: "top_up", amount: 5000n, balanceAfter: 5000n, accountId: null },
      { kind: "top_up", amount: 2500n, balanceAfter: 7500n, accountId: null },
    ]);
    // The API sees the new balance at once.
    expect((await balanceOverHttp(created.apiKey)).body.data.balance.balance).toBe(7500);
  });

  it("create-main-account for a team that has one fails with the one-main-account message and creates nothing", async () => {
    const before = await snapshot();
    const result = await admin("create-main-account", "--team", created.team.id, "--name", "Another main");
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(ONE_MAIN_ACCOUNT);
    expect(result.stdout).toBe("");
    expect(await snapshot()).toEqual(before);
    const mains = await db.prisma.account.findMany({ where: { teamId: created.team.id, kind: "main" } });
    expect(mains.map((a) => a.id)).toEqual([created.mainAccount.id]);
  });

  it("top-up refuses an amount that would take the balance past the largest amount, naming the amount, and changes nothing", async () => {
    const made = await admin("create-team", "--name", "Nearly full", "--balance", String(Number.MAX_SAFE_INTEGER - 10), "--json");
    expect(made.code, made.stderr).toBe(0);
    const teamId = JSON.parse(made.stdout).team.id as string;
    const before = await snapshot();
    const refusedTopUp = await admin("top-up", "--team", teamId, "--amount", "11");
    expect(refusedTopUp.code).toBe(1);
    expect(refusedTopUp.stderr).toContain("A top-up of 11 cents");
    expect(refusedTopUp.stderr).toContain(String(Number.MAX_SAFE_INTEGER));
    expect(refusedTopUp.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
    expect(await snapshot()).toEqual(before);
    // Up to the largest amount is fine, and the API shows it exactly.
    const filled = await admin("top-up", "--team", teamId, "--amount", "10", "--json");
    expect(filled.code, filled.stderr).toBe(0);
    expect(JSON.parse(filled.stdout)).toEqual({ team: { id: teamId, balance: Number.MAX_SAFE_INTEGER } });
  });

  it("list-teams prints every team with its id, name, balance and creation date; --json the same as data", async () => {
    const teams = await db.prisma.team.findMany({ orderBy: [{ createdAt: "asc" }, { id: "asc" }] });
    expect(teams.length).toBeGreaterThanOrEqual(3);
    const json = await admin("list-teams", "--json");
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      teams: teams.map((t) => ({ id: t.id, name: t.name, balance: Number(t.balance), currency: "USD", createdAt: t.createdAt.toISOString() })),
    });
    const text = await admin("list-teams");
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+BALANCE \(CENTS\)\s+CREATED$/);
    expect(lines).toHaveLength(teams.length + 1);
    teams.forEach((team, index) => {
      const line = lines[index + 1]!;
      expect(line.startsWith(team.id)).toBe(true);
      for (const cell of [team.name, String(team.balance), team.createdAt.toISOString()]) expect(line).toContain(cell);
    });
    expect(text.stdout + json.stdout).not.toMatch(/zv_live_/);
  });

  it("list-teams on an empty database says how to create a team", async () => {
    const result = await run(TSX, ["src/cli/admin.ts", "list-teams"], childEnv({ DATABASE_URL: `file:${path.join(dir, "empty.db")}` }), CLI_TIMEOUT_MS);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("No teams yet");
    expect(result.stdout).toContain("npm run admin -- create-team --name NAME");
  });

  it("purge refuses a --now in the future (exit 2, nothing purged), and never removes a sub-account inside its grace period", async () => {
    const createdSub = await fetch(`${gatewayUrl}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${created.apiKey}` },
      body: JSON.stringify({ query: `mutation { createSubAccount(input: { name: "Leaving" }) { subAccount { id } } }` }),
    });
    const subId = ((await createdSub.json()) as any).data.createSubAccount.subAccount.id as string;
    const deactivated = await fetch(`${gatewayUrl}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${created.apiKey}` },
      body: JSON.stringify({ query: `mutation($id: ID!) { deactivateSubAccount(id: $id) { deletionScheduledAt } }`, variables: { id: subId } }),
    });
    expect(((await deactivated.json()) as any).data.deactivateSubAccount.deletionScheduledAt).toEqual(expect.any(String));
    const still = async () => (await db.prisma.account.findUnique({ where: { id: subId }, select: { status: true } }))?.status;
    const before = await snapshot();

    const future = new Date(Date.now() + 15 * 86_400_000).toISOString();
    const refusedPurge = await admin("purge", "--now", future, "--json");
    expect(refusedPurge.code).toBe(2);
    expect(refusedPurge.stderr).toMatch(/--now .* is in the future/);
    expect(refusedPurge.stderr).toMatch(/grace period/);
    expect(refusedPurge.stdout).toBe("");
    expect(await still()).toBe("inactive");
    expect(await snapshot()).toEqual(before);

    // A past date, or none, is harmless: the grace period has not ended.
    for (const args of [["--now", new Date(Date.now() - 60_000).toISOString()], []]) {
      const purged = await admin("purge", ...args, "--json");
      expect(purged.code, purged.stderr).toBe(0);
      expect(JSON.parse(purged.stdout)).toEqual({ purged: [] });
    }
    expect(await still()).toBe("inactive");
  });

  const refused: [string, () => string[], RegExp][] = [
    ["top-up with a negative amount", () => ["top-up", "--team", created.team.id, "--amount", "-5"], /--amount must be positive, got -5/],
    ["top-up with a non-numeric amount", () => ["top-up", "--team", created.team.id, "--amount", "abc"], /--amount must be a whole number of cents/],
    ["top-up with a fractional amount", () => ["top-up", "--team", created.team.id, "--amount", "12.50"], /--amount must be a whole number of cents/],
    ["top-up of zero", () => ["top-up", "--team", created.team.id, "--amount", "0"], /amount.*at least 1 cent/],
    ["top-up without --amount", () => ["top-up", "--team", created.team.id], /--amount is required/],
    ["top-up without --team", () => ["top-up", "--amount", "100"], /--team is required/],
    ["top-up of an unknown team", () => ["top-up", "--team", "cmnosuchteam000000000000", "--amount", "100"], /Team "cmnosuchteam000000000000" was not found/],
    ["an unknown command", () => ["delete-team", "--team", created.team.id], /unknown command "delete-team"/],
    ["create-team without --name", () => ["create-team", "--balance", "100"], /--name is required/],
    ["create-team with a name of spaces", () => ["create-team", "--name", "   "], /name.*must not be empty/],
    ["create-team with a negative balance", () => ["create-team", "--name", "Negative", "--balance", "-1"], /--balance must be positive, got -1/],
    ["top-up beyond the largest amount", () => ["top-up", "--team", created.team.id, "--amount", "9007199254740992"], /--amount 9007199254740992 is too large: the largest amount is 9007199254740991 cents/],
    ["top-up of a 20-digit amount", () => ["top-up", "--team", created.team.id, "--amount", "99999999999999999999"], /--amount 99999999999999999999 is too large/],
    ["create-team with a balance beyond the largest amount", () => ["create-team", "--name", "Huge", "--balance", "9007199254740992"], /--balance 9007199254740992 is too large/],
    ["create-team with an unknown option", () => ["create-team", "--name", "Typo", "--balanse", "100"], /Unknown option '--balanse'/],
  ];

  it.each(refused)("refuses %s with a non-zero exit, a clear message, and no change", async (_what, args, message) => {
    const before = await snapshot();
    const result = await admin(...args());
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).not.toMatch(/zv_live_/);
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
    expect(await snapshot()).toEqual(before);
  });
});
