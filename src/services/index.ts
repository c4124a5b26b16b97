import type { Database } from "../db/client.ts";
import { notFound } from "../domain/errors.ts";
import type { PriceTable } from "../domain/pricing.ts";
import { createAccountsService } from "./accounts.ts";
import { createApiKeysService } from "./apiKeys.ts";
import { createAuditService } from "./audit.ts";
import { authenticate } from "./auth.ts";
import { createBalanceService } from "./balance.ts";
import type { Clock } from "./clock.ts";
import { createDeliveryService, type DeliveryProvider } from "./delivery.ts";
import type { AccessRevoked, AccessSignals, Actor, ServiceDeps } from "./deps.ts";
import { createMessagesService } from "./messages.ts";
import { createSpendService } from "./spend.ts";
import type { EventBus } from "../bus/types.ts";
import { createTeamsService } from "./teams.ts";
import { createViewerService } from "./viewer.ts";

export interface ServicesOptions {
  db: Database;
  clock: Clock;
  prices: PriceTable;
  /** Spend updates and access revocations, to every instance. */
  bus: EventBus;
  deliveryProvider: DeliveryProvider;
  onBackgroundError: (error: unknown) => void;
}

/** The one domain layer: GraphQL resolvers, REST routes and the CLI all call this. */
export function createServices(options: ServicesOptions) {
  const { db } = options;
  const prisma = db.prisma;

  const spend = createSpendService({
    bus: options.bus,
    onError: options.onBackgroundError,
    async invalidKeys(apiKeyIds) {
      const valid = await prisma.apiKey.findMany({
        where: { id: { in: apiKeyIds }, revokedAt: null, account: { status: "active" } },
        select: { id: true },
      });
      const validIds = new Set(valid.map((row) => row.id));
      return apiKeyIds.filter((id) => !validIds.has(id));
    },
    async requireSubAccountOfTeam(teamId, subAccountId) {
      const row = await prisma.account.findFirst({ where: { id: subAccountId, teamId, kind: "sub" }, select: { id: true } });
      if (!row) throw notFound("Sub-account", subAccountId);
    },
    async chargeCounts(teamId, subAccountId) {
      const rows = await prisma.account.findMany({
        where: { teamId, kind: "sub", ...(subAccountId ? { id: subAccountId } : {}) },
        select: { id: true, chargeCount: true },
      });
      return new Map(rows.map((row) => [row.id, row.chargeCount]));
    },
    async stillAuthorized(actor: Actor) {
      const key = await prisma.apiKey.findUnique({ where: { id: actor.apiKeyId }, select: { revokedAt: true, account: { select: { status: true } } } });
      return key !== null && key.revokedAt === null && key.account.status === "active";
    },
  });
  const signals: AccessSignals = { publish: (signal: AccessRevoked) => options.bus.publishAccessRevoked(signal) };

  const deps: ServiceDeps = { prisma, clock: options.clock, signals, store: db.charges };
  const accounts = createAccountsService(deps);
  const delivery = createDeliveryService(db.charges, options.deliveryProvider, options.onBackgroundError);
  return {
    deps,
    /** The caller of a bearer key, with its team as read in the same statement. */
    authenticateWithTeam: (key: string) => authenticate(deps, key),
    authenticate: async (key: string) => (await authenticate(deps, key)).actor,
    accounts,
    apiKeys: createApiKeysService(deps, accounts),
    audit: createAuditService(deps),
    balance: createBalanceService(deps, accounts),
    teams: createTeamsService(deps),
    viewer: createViewerService(deps),
    spend,
    messages: createMessagesService(deps, { chargeStore: db.charges, prices: options.prices, spend, delivery, accounts }),
    close() {
      spend.close();
      delivery.close();
    },
  };
}

export type Services = ReturnType<typeof createServices>;
