import { ConfigError, loadConfig } from "./config.ts";
import { openDatabase } from "./db/client.ts";
import { applyMigrations, withStartupLock } from "./db/migrate.ts";
import { createLogger } from "./logger.ts";
import { createGateway } from "./server.ts";
import { createInProcessBus } from "./bus/inProcess.ts";
import { createRedisBus } from "./bus/redis.ts";

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  await applyMigrations(config.DATABASE_URL);
  const db = openDatabase(config.DATABASE_URL, {
    onConnectionError: (error) => logger.warn({ err: error }, "database connection lost; reconnecting on the next query"),
  });
  const bus = config.REDIS_URL
    ? await createRedisBus({
        url: config.REDIS_URL,
        prefix: config.REDIS_PREFIX,
        onError: (error) => logger.warn({ err: error }, "event bus (Redis) error"),
      })
    : createInProcessBus();
  bus.onStateChange((state) => logger.warn({ state }, `event bus (Redis) is ${state}`));
  const gateway = createGateway({ config, db, logger, bus });

  // Under the startup lock: two instances starting together on an empty database create one demo team.
  const demo = await withStartupLock(config.DATABASE_URL, async () =>
    config.DEMO_TEAM && config.NODE_ENV !== "production" && (await gateway.services.teams.isEmpty())
      ? gateway.services.teams.createTeam({ name: "Demo team", balance: 100_000 })
      : null,
  );
  if (demo) {
    // Printed to the terminal once, on purpose, and never logged: it is the only copy.
    process.stdout.write(
      `\nDemo team created (balance $1,000.00). Its main API key, shown only this once:\n\n  ${demo.apiKey}\n\n` +
        `Open http://localhost:${config.PORT}/graphql and send it as the header  Authorization: Bearer <key>\n\n`,
    );
  }

  const url = await gateway.listen();
  logger.info({ url: `${url}/graphql`, database: db.provider, eventBus: bus.kind }, "gateway listening");

  const purgeTimer = setInterval(() => {
    gateway.services.accounts
      .purgeExpired()
      .then((ids) => ids.length > 0 && logger.info({ purged: ids.length }, "purged sub-accounts past their grace period"))
      .catch((error: unknown) => logger.error({ err: error }, "purge failed"));
  }, config.PURGE_INTERVAL_MS);
  purgeTimer.unref();

  const shutdown = async (signal: string) => {
    logger.info({ signal }, "shutting down");
    clearInterval(purgeTimer);
    await gateway.close();
    await bus.close();
    await db.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`Gateway failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  process.exit(1);
});
