import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config.ts";
import { openDatabase, type Database } from "../db/client.ts";
import { applyMigrations } from "../db/migrate.ts";
import { DomainError, invalidRequest } from "../domain/errors.ts";
import { MAX_CENTS, centsToNumber } from "../domain/money.ts";
import { parseDateTime } from "../domain/validation.ts";
import { systemClock } from "../services/clock.ts";
import { loadPriceTable } from "../domain/pricing.ts";
import { SimulatedProvider } from "../services/delivery.ts";
import { OPERATOR } from "../services/audit.ts";
import { createServices } from "../services/index.ts";
import { createInProcessBus } from "../events/inProcess.ts";
import { WEBHOOKS_UNSERVED } from "../services/webhooks/index.ts";
import { resolveSecretsKey } from "../services/webhooks/secrets.ts";

const USAGE = `Operator CLI (honours DATABASE_URL)

  npm run admin -- create-team --name NAME [--balance CENTS] [--json]
  npm run admin -- top-up --team ID --amount CENTS [--json]
  npm run admin -- list-teams [--json]
  npm run admin -- create-main-account --team ID --name NAME
  npm run admin -- create-main-key --team ID [--name NAME] [--json]
  npm run admin -- purge [--now ISO-8601] [--json]
  npm run admin -- reseal-secrets [--json]

Amounts are whole cents (100000 is $1,000.00), at most ${MAX_CENTS}.
purge --now takes a date that is not in the future: it purges what had passed
its 14-day grace period by then (default: now).
reseal-secrets seals every webhook signing secret again under SECRETS_KEY,
opening those sealed under an earlier key with SECRETS_KEY_PREVIOUS (the last
step of rotating SECRETS_KEY); it exits with 1 if a secret no key opens remains.
`;

const COMMANDS = ["create-team", "top-up", "list-teams", "create-main-account", "create-main-key", "purge", "reseal-secrets"] as const;
type Command = (typeof COMMANDS)[number];

class UsageError extends Error {}

function requireOption(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

/** Whole cents from an option: `--amount` must be at least 1 (the service says so), `--balance` may be 0. */
function parseCents(raw: string, option: string): number {
  if (/^-\s*\d/.test(raw)) throw new UsageError(`--${option} must be positive, got ${raw}`);
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${option} must be a whole number of cents, e.g. 100000 for $1,000.00`);
  if (BigInt(raw) > MAX_CENTS) throw new UsageError(`--${option} ${raw} is too large: the largest amount is ${MAX_CENTS} cents`);
  return Number(raw);
}

/** `--now` for purge: a date, never later than the real clock (a purge must not end a grace period early). */
function parsePurgeDate(raw: string | undefined): Date {
  const realNow = new Date();
  if (raw === undefined) return realNow;
  const now = parseDateTime(raw);
  if (now === null) throw new UsageError("--now must be an ISO-8601 date, e.g. 2026-12-31T00:00:00Z");
  if (now.getTime() > realNow.getTime()) {
    throw new UsageError(
      `--now ${now.toISOString()} is in the future (it is ${realNow.toISOString()}): a purge never removes a sub-account ` +
        `before its 14-day grace period has ended. Nothing was changed. Leave --now out to purge as of now.`,
    );
  }
  return now;
}

/**
 * `--amount -5`: parseArgs would reject -5 as an "ambiguous" option; hand it over as
 * the option's value instead, so the amount check explains what is wrong.
 */
function joinNegativeValues(args: string[]): string[] {
  const joined: string[] = [];
  for (const arg of args) {
    const previous = joined[joined.length - 1];
    if (/^-\d/.test(arg) && previous?.startsWith("--") && !previous.includes("=")) joined[joined.length - 1] = `${previous}=${arg}`;
    else joined.push(arg);
  }
  return joined;
}

/** A top-up the balance column could hold but the API could not show (beyond MAX_CENTS) is refused before it runs. */
function overflowingTopUp(teamId: string, amount: number, balance?: bigint): DomainError {
  const from = balance === undefined ? "" : ` from ${balance} to ${balance + BigInt(amount)} cents`;
  return invalidRequest(
    `A top-up of ${amount} cents would take team ${teamId}'s balance${from}, past the largest amount the gateway ` +
      `can represent (${MAX_CENTS} cents). Nothing was changed.`,
    { amount },
  );
}

function teamsTable(teams: { id: string; name: string; balance: bigint; createdAt: Date }[]): string {
  if (teams.length === 0) return "No teams yet. Create one with: npm run admin -- create-team --name NAME";
  const rows = [["ID", "NAME", "BALANCE (CENTS)", "CREATED"], ...teams.map((t) => [t.id, t.name, String(t.balance), t.createdAt.toISOString()])];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) => row.map((cell, column) => (column === 2 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join("  ").trimEnd())
    .join("\n");
}

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: joinNegativeValues(rest),
    options: {
      name: { type: "string" },
      balance: { type: "string" },
      team: { type: "string" },
      amount: { type: "string" },
      now: { type: "string" },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (!command || command === "help" || command === "--help") {
    process.stdout.write(USAGE);
    return;
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }

  // Every argument is checked before the database is opened: a usage error touches nothing.
  const task = prepare(command as Command, values);
  const config = loadConfig();
  await applyMigrations(config.DATABASE_URL);
  const db = openDatabase(config.DATABASE_URL);
  const services = createServices({
    db,
    clock: systemClock,
    prices: loadPriceTable(config.PRICES_FILE),
    bus: createInProcessBus(),
    deliveryProvider: new SimulatedProvider(config.DELIVERY_STEP_MS),
    onBackgroundError: (error) => process.stderr.write(`${String(error)}\n`),
    // Only resealing needs the secrets keys; the CLI never delivers webhooks (nothing starts the dispatcher).
    webhooks: command === "reseal-secrets" ? { ...WEBHOOKS_UNSERVED, secretsKey: resolveSecretsKey(config.SECRETS_KEY), previousSecretsKeys: config.SECRETS_KEY_PREVIOUS } : undefined,
  });
  const print = (json: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
  try {
    await task({ db, services, print });
  } finally {
    services.close();
    await db.close();
  }
}

interface Context {
  db: Database;
  services: ReturnType<typeof createServices>;
  print(json: unknown, text: string): void;
}

/** Checks a command's arguments and returns the work to do with the database. */
function prepare(command: Command, values: Record<string, unknown>): (context: Context) => Promise<void> {
  switch (command) {
    case "create-team": {
      const name = requireOption(values, "name");
      const balance = values.balance === undefined ? undefined : parseCents(String(values.balance), "balance");
      return async ({ services, print }) => {
        const created = await services.teams.createTeam({ name, balance }, OPERATOR);
        print(
          { team: { id: created.team.id }, mainAccount: { id: created.mainAccount.id }, apiKey: created.apiKey },
          `Team ${created.team.id} created with main account ${created.mainAccount.id}.\n` +
            `Main API key (shown only once, store it now):\n  ${created.apiKey}`,
        );
      };
    }
    case "top-up": {
      const teamId = requireOption(values, "team");
      const amount = parseCents(requireOption(values, "amount"), "amount");
      return async ({ db, services, print }) => {
        const current = await db.prisma.team.findUnique({ where: { id: teamId }, select: { balance: true } });
        if (current && current.balance + BigInt(amount) > MAX_CENTS) throw overflowingTopUp(teamId, amount, current.balance);
        const team = await services.teams.topUp(teamId, amount, OPERATOR).catch((error: unknown) => {
          // Another top-up got there between the read above and this one.
          throw error instanceof RangeError ? overflowingTopUp(teamId, amount) : error;
        });
        print({ team: { id: team.id, balance: Number(team.balance) } }, `Team ${team.id} balance is now ${team.balance} cents.`);
      };
    }
    case "list-teams":
      return async ({ db, print }) => {
        const teams = await db.prisma.team.findMany({
          orderBy: [{ createdAt: "asc" }, { id: "asc" }],
          select: { id: true, name: true, balance: true, currency: true, createdAt: true },
        });
        print(
          { teams: teams.map((t) => ({ id: t.id, name: t.name, balance: centsToNumber(t.balance), currency: t.currency, createdAt: t.createdAt.toISOString() })) },
          teamsTable(teams),
        );
      };
    case "create-main-account": {
      const teamId = requireOption(values, "team");
      const name = requireOption(values, "name");
      return async ({ services, print }) => {
        const account = await services.teams.createMainAccount(teamId, name, OPERATOR);
        print({ account: { id: account.id } }, `Main account ${account.id} created.`);
      };
    }
    case "create-main-key": {
      const teamId = requireOption(values, "team");
      const name = values.name === undefined ? undefined : String(values.name);
      return async ({ services, print }) => {
        const created = await services.apiKeys.createMainKeyAsOperator(teamId, name, OPERATOR);
        print(
          { apiKey: { id: created.apiKey.id, key: created.key }, mainAccount: { id: created.mainAccountId } },
          `Main key ${created.apiKey.id} created for team ${teamId}, with every permission and no expiry.
` +
            `Main API key (shown only once, store it now):
  ${created.key}`,
        );
      };
    }
    case "purge": {
      const now = parsePurgeDate(values.now === undefined ? undefined : String(values.now));
      return async ({ services, print }) => {
        const ids = await services.accounts.purgeExpired(now, OPERATOR);
        print({ purged: ids }, `Purged ${ids.length} sub-account(s) past their grace period.`);
      };
    }
    case "reseal-secrets":
      return async ({ services, print }) => {
        const report = await services.webhooks.resealSecrets();
        const unreadable = report.unreadable.length === 0 ? "" : `\n${report.unreadable.length} endpoint(s) have a signing secret that neither SECRETS_KEY nor SECRETS_KEY_PREVIOUS opens; each needs rotateWebhookSecret:\n  ${report.unreadable.join("\n  ")}`;
        print(report, `Resealed the secrets of ${report.resealed} webhook endpoint(s) under SECRETS_KEY; ${report.alreadyCurrent} already were.${unreadable}`);
        if (report.unreadable.length > 0) process.exitCode = 1;
      };
  }
}

run(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof DomainError) {
    process.stderr.write(`Error (${error.code}): ${error.message}\n`);
    process.exit(1);
  }
  if (error instanceof UsageError || error instanceof ConfigError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  process.stderr.write(`Failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
