import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config.ts";
import { openDatabase } from "../db/client.ts";
import { applyMigrations } from "../db/migrate.ts";
import { DomainError } from "../domain/errors.ts";
import { systemClock } from "../services/clock.ts";
import { loadPriceTable } from "../domain/pricing.ts";
import { SimulatedProvider } from "../services/delivery.ts";
import { OPERATOR } from "../services/audit.ts";
import { createServices } from "../services/index.ts";
import { createInProcessBus } from "../bus/inProcess.ts";

const USAGE = `Operator CLI (honours DATABASE_URL)

  npm run admin -- create-team --name NAME [--balance CENTS] [--json]
  npm run admin -- top-up --team ID --amount CENTS [--json]
  npm run admin -- create-main-account --team ID --name NAME
  npm run admin -- purge [--now ISO-8601] [--json]
`;

class UsageError extends Error {}

function requireOption(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

function parseCents(raw: string, option: string): number {
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${option} must be a whole number of cents, e.g. 100000 for $1,000.00`);
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new UsageError(`--${option} is too large`);
  return value;
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
  if (!["create-team", "top-up", "create-main-account", "purge"].includes(command)) {
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }

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
  });
  const print = (json: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
  try {
    switch (command) {
      case "create-team": {
        const name = requireOption(values, "name");
        const balance = values.balance === undefined ? undefined : parseCents(values.balance, "balance");
        const created = await services.teams.createTeam({ name, balance }, OPERATOR);
        print(
          { team: { id: created.team.id }, mainAccount: { id: created.mainAccount.id }, apiKey: created.apiKey },
          `Team ${created.team.id} created with main account ${created.mainAccount.id}.\n` +
            `Main API key (shown only once, store it now):\n  ${created.apiKey}`,
        );
        break;
      }
      case "top-up": {
        const team = await services.teams.topUp(requireOption(values, "team"), parseCents(requireOption(values, "amount"), "amount"), OPERATOR);
        print({ team: { id: team.id, balance: Number(team.balance) } }, `Team ${team.id} balance is now ${team.balance} cents.`);
        break;
      }
      case "create-main-account": {
        const account = await services.teams.createMainAccount(requireOption(values, "team"), requireOption(values, "name"), OPERATOR);
        print({ account: { id: account.id } }, `Main account ${account.id} created.`);
        break;
      }
      case "purge": {
        const now = values.now === undefined ? new Date() : new Date(values.now);
        if (Number.isNaN(now.getTime())) throw new UsageError("--now must be an ISO-8601 date, e.g. 2026-12-31T00:00:00Z");
        const ids = await services.accounts.purgeExpired(now, OPERATOR);
        print({ purged: ids }, `Purged ${ids.length} sub-account(s) past their grace period.`);
        break;
      }
    }
  } finally {
    services.close();
    await db.close();
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
