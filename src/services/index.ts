import type { CommittedCharge } from "../db/charges.ts";
import type { Database } from "../db/client.ts";
import type { PriceTable } from "../domain/pricing.ts";
import type { EventBus } from "../events/bus.ts";
import { AccountsService } from "./accounts.ts";
import { ApiKeysService } from "./apiKeys.ts";
import { createAuditService } from "./audit.ts";
import { authenticate, type KeyState } from "./auth.ts";
import { createBalanceService } from "./balance.ts";
import type { Clock } from "./clock.ts";
import { createDeliveryService, type DeliveryProvider } from "./delivery.ts";
import type { Actor, ServiceDeps } from "./deps.ts";
import { MessagesService } from "./messages.ts";
import { AlertsService, alertSource } from "./alerts.ts";
import { createLiveHub } from "./live/index.ts";
import { ReportsService } from "./reports.ts";
import { createSpendService } from "./spend/index.ts";
import { spendSource } from "./spend/ledger.ts";
import { TeamsService } from "./teams.ts";
import { KeyCache } from "./keyCache.ts";
import { createViewerService } from "./viewer.ts";
import { OutboxSignal } from "./webhooks/events.ts";
import { WEBHOOKS_UNSERVED, createWebhooksService, type WebhookSettings } from "./webhooks/index.ts";

export interface ServicesOptions {
  db: Database;
  clock: Clock;
  prices: PriceTable;
  /** Spend updates and access revocations, to every instance. */
  bus: EventBus;
  deliveryProvider: DeliveryProvider;
  /** How long a key that authenticated is trusted without reading it again (KEY_CACHE_TTL_MS); 0 or omitted: never. */
  keyCacheTtlMs?: number;
  onBackgroundError: (error: unknown) => void;
  /** Told of every committed live charge, after its commit (the metrics count them). */
  onCharged?: (charge: CommittedCharge) => void;
  /** Told how many charges live subscribers received from the ledger because their event was missing. */
  onEventsRecovered?: (count: number) => void;
  /** Webhook settings (src/services/webhooks/index.ts); without them, webhooks are not served (the CLI). */
  webhooks?: WebhookSettings;
}

/** The one domain layer: GraphQL resolvers, REST routes and the CLI all call this. */
export function createServices(options: ServicesOptions) {
  const { db } = options;
  const prisma = db.prisma;
  const keyCache = new KeyCache(options.keyCacheTtlMs ?? 0);
  // Another instance's access change: forget the keys it concerns here too.
  options.bus.onAccessChange((change) => keyCache.forget(change));
  const deps: ServiceDeps = {
    prisma,
    clock: options.clock,
    keyCache,
    signals: {
      publish(change) {
        // This instance forgets at once; the others when the bus brings it, before the change is answered.
        keyCache.forget(change);
        return options.bus.publishAccessChange(change);
      },
    },
    store: db.charges,
    outbox: new OutboxSignal(),
  };
  const accounts = new AccountsService(deps);
  const hub = createLiveHub({
    bus: options.bus,
    clock: options.clock,
    onError: options.onBackgroundError,
    onRecovered: options.onEventsRecovered,
    async keyStates(apiKeyIds) {
      const rows = await prisma.apiKey.findMany({
        where: { id: { in: apiKeyIds } },
        select: { id: true, revokedAt: true, expiresAt: true, permissions: true, account: { select: { status: true, kind: true } } },
      });
      return new Map<string, KeyState>(rows.map((row) => [row.id, row]));
    },
  });
  const requireSubAccounts = (actor: Actor, subAccountIds: readonly string[]) => accounts.requireSubAccounts(actor, subAccountIds);
  const spend = createSpendService({ hub, source: spendSource(prisma), requireSubAccounts, publish: (update) => options.bus.publish("spend", update) });
  const alerts = new AlertsService({ prisma, hub, source: alertSource(prisma), accounts, publish: (event) => options.bus.publish("alert", event) });
  const delivery = createDeliveryService(db.charges, options.deliveryProvider, options.onBackgroundError);
  const webhooks = createWebhooksService(deps, db.webhooks, options.webhooks ?? WEBHOOKS_UNSERVED, options.onBackgroundError);
  return {
    /** The clock every rule of time reads (a test's ManualClock, or the system's). */
    clock: options.clock,
    /** The caller of a key; `unauthorized` for any key that does not authenticate. */
    authenticate: (key: string) => authenticate(deps, key),
    accounts,
    apiKeys: new ApiKeysService(deps, accounts),
    audit: createAuditService(deps),
    balance: createBalanceService(deps, accounts),
    teams: new TeamsService(deps),
    viewer: createViewerService(deps),
    spend,
    alerts,
    reports: new ReportsService(prisma, accounts),
    /** Live subscriptions open on this instance, of every kind. */
    get openSubscriptions() {
      return hub.openSubscriptions;
    },
    webhooks,
    messages: new MessagesService(deps, {
      chargeStore: db.charges,
      prices: options.prices,
      delivery,
      accounts,
      onCommitted: (charge) => {
        spend.publishCharge(charge);
        alerts.publishCharge(charge);
        options.onCharged?.(charge);
      },
    }),
    close() {
      hub.close();
      delivery.close();
    },
  };
}

export type Services = ReturnType<typeof createServices>;
