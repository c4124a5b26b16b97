import { createServer } from "node:net";
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { openDatabase } from "./db/client.ts";
import { applyMigrations, withStartupLock } from "./db/migrate.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createGateway } from "./server.ts";
import { createInProcessBus } from "./events/inProcess.ts";
import { createRedisBus } from "./events/redis.ts";
import type { EventBus } from "./events/bus.ts";

/** How long the start waits for Redis before giving up. */
const REDIS_CONNECT_TIMEOUT_MS = 5_000;
/** How long a shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

/** A start that cannot go on, with a message that says what to do; printed as is, without a stack. */
class StartupError extends Error {}

/** A port the server cannot listen on, explained in one line. */
function listenError(error: unknown, config: Config): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") {
    return new StartupError(
      `Port ${config.PORT} is already in use on ${config.HOST}: stop the program listening there, or set the PORT variable to a free port (e.g. PORT=${config.PORT === 65535 ? 4000 : config.PORT + 1} npm start).`,
    );
  }
  if (code === "EACCES") {
    return new StartupError(`Not allowed to listen on port ${config.PORT}: set the PORT variable to a port above 1023 (e.g. PORT=4000 npm start).`);
  }
  if (code === "EADDRNOTAVAIL") return new StartupError(`HOST=${config.HOST} is not an address of this machine: set HOST to one of its addresses, or leave it unset.`);
  return error;
}

/** Fails early, before migrations and the demo team, when the port is taken (PORT=0 picks a free one). */
async function checkPortIsFree(config: Config): Promise<void> {
  if (config.PORT === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(config.PORT, config.HOST, () => probe.close(() => resolve()));
  }).catch((error: unknown) => {
    throw listenError(error, config);
  });
}

/** REDIS_URL without its password, fit for a message. */
function shownRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable)";
  }
}

/** The Redis bus, or a StartupError naming REDIS_URL within REDIS_CONNECT_TIMEOUT_MS. */
async function connectRedisBus(config: Config & { REDIS_URL: string }, logger: Logger): Promise<EventBus> {
  let connected = false;
  let lastError: unknown;
  const connecting = createRedisBus({
    url: config.REDIS_URL,
    prefix: config.REDIS_PREFIX,
    timeoutMs: config.REDIS_TIMEOUT_MS,
    // While starting, a refused connection is the start's error below, not a log line per retry.
    onError: (error) => (connected ? logger.warn({ err: error }, "event bus (Redis) error") : (lastError = error)),
  });
  connecting.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${REDIS_CONNECT_TIMEOUT_MS / 1000} s`)), REDIS_CONNECT_TIMEOUT_MS);
  });
  try {
    const bus = await Promise.race([connecting, timeout]);
    connected = true;
    return bus;
  } catch (error) {
    const cause = lastError ?? error;
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new StartupError(
      `Redis is unreachable at REDIS_URL=${shownRedisUrl(config.REDIS_URL)} (${reason}). Start Redis there, correct REDIS_URL, or leave REDIS_URL unset to run a single instance with in-process events.`,
    );
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  await checkPortIsFree(config);
  await applyMigrations(config.DATABASE_URL);
  const db = openDatabase(config.DATABASE_URL, {
    onConnectionError: (error) => logger.warn({ err: error }, "database connection lost; reconnecting on the next query"),
  });
  const bus = config.REDIS_URL ? await connectRedisBus({ ...config, REDIS_URL: config.REDIS_URL }, logger) : createInProcessBus();
  bus.onStateChange((state) => logger.warn({ state }, `event bus (Redis) is ${state}`));
  const gateway = createGateway({ config, db, logger, bus });

  // Under the startup lock: two instances starting together on an empty database create one demo team.
  const { empty, demo } = await withStartupLock(config.DATABASE_URL, async () => {
    const empty = await gateway.services.teams.isEmpty();
    const demo = empty && config.DEMO_TEAM && config.NODE_ENV !== "production" ? await gateway.services.teams.createTeam({ name: "Demo team", balance: 100_000 }) : null;
    return { empty, demo };
  });
  if (demo) {
    // Printed to the terminal once, on purpose, and never logged: it is the only copy.
    process.stdout.write(
      `\nDemo team created (balance $1,000.00). Its main API key, shown only this once:\n\n  ${demo.apiKey}\n\n` +
        `Open http://localhost:${config.PORT}/graphql and send it as the header  Authorization: Bearer <key>\n\n`,
    );
  } else if (empty) {
    process.stdout.write(
      `\nThe database has no team yet, so no API key can authenticate. Create a team and its main API key with\n\n` +
        `  npm run admin -- create-team --name NAME\n\n(with the same DATABASE_URL; it prints the key once).\n\n`,
    );
  }

  const url = await gateway.listen().catch((error: unknown) => {
    throw listenError(error, config);
  });
  logger.info({ url: `${url}/graphql`, database: db.provider, eventBus: bus.kind }, "gateway listening");

  const purgeTimer = setInterval(() => {
    gateway.services.accounts
      .purgeExpired()
      .then((ids) => ids.length > 0 && logger.info({ purged: ids.length }, "purged sub-accounts past their grace period"))
      .catch((error: unknown) => logger.error({ err: error }, "purge failed"));
    gateway.services.webhooks
      .pruneHistory()
      .then((count) => count > 0 && logger.info({ pruned: count }, "pruned webhook events past their retention"))
      .catch((error: unknown) => logger.error({ err: error }, "webhook history pruning failed"));
  }, config.PURGE_INTERVAL_MS);
  purgeTimer.unref();

  // `on`, not `once`: Ctrl-C reaches this process twice under npm (from the terminal, and relayed by
  // npm), and a second signal with no listener would kill it in the middle of the shutdown.
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    clearInterval(purgeTimer);
    setTimeout(() => {
      logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, "shutdown took too long; exiting");
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    (async () => {
      await gateway.close();
      await bus.close();
      await db.close();
    })().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof StartupError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`Gateway failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  process.exit(1);
});
