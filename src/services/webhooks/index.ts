import type { WebhookStore } from "../../db/webhookStore.ts";
import { WEBHOOK_RETENTION_MS, exponentialBackoff, type RetrySchedule } from "../../domain/webhooks.ts";
import type { ServiceDeps } from "../deps.ts";
import { WebhookDispatcher } from "./dispatcher.ts";
import { WebhookEndpointsService } from "./endpoints.ts";
import { resealWebhookSecrets, type ResealReport } from "./reseal.ts";
import { SecretBox } from "./secrets.ts";
import type { AttemptKind } from "./sender.ts";
import { systemResolver, type Resolver } from "./urlSafety.ts";
import type { DeliveryState } from "../../db/webhookStore.ts";

/**
 * Webhooks (README.md, "Webhooks"): the endpoints a team manages
 * (endpoints.ts), the events the services write into the outbox (events.ts),
 * and the dispatcher that delivers them (dispatcher.ts, sender.ts, signing.ts,
 * urlSafety.ts), with the secrets stored encrypted (secrets.ts).
 */

export interface WebhookSettings {
  /** SECRETS_KEY (or the generated key): null where webhooks are not served (the CLI). */
  secretsKey: Buffer | null;
  /** SECRETS_KEY_PREVIOUS: earlier keys that still open the secrets sealed under them, until `reseal-secrets` has run. */
  previousSecretsKeys?: readonly Buffer[];
  production: boolean;
  allowPrivateUrls: boolean;
  timeoutMs: number;
  backoffBaseMs: number;
  leaseMs: number;
  pollMs: number;
  /** Tests inject these: how names resolve, and the retry schedule. */
  resolver?: Resolver;
  schedule?: RetrySchedule;
  onAttempt?(kind: AttemptKind, state: DeliveryState): void;
}

/** What the CLI and other tools get: no secrets key, a dispatcher they never start. */
export const WEBHOOKS_UNSERVED: WebhookSettings = {
  secretsKey: null,
  production: false,
  allowPrivateUrls: true,
  timeoutMs: 10_000,
  backoffBaseMs: 5_000,
  leaseMs: 30_000,
  pollMs: 1_000,
};

export function createWebhooksService(deps: ServiceDeps, store: WebhookStore, settings: WebhookSettings, onError: (error: unknown) => void) {
  const box = settings.secretsKey ? new SecretBox(settings.secretsKey, settings.previousSecretsKeys) : null;
  const schedule = settings.schedule ?? exponentialBackoff(settings.backoffBaseMs);
  const policy = { allowPrivate: settings.allowPrivateUrls, resolve: settings.resolver ?? systemResolver };
  const endpoints = new WebhookEndpointsService(deps, { box, urlPolicy: { ...policy, requireHttps: settings.production }, retryWindowMs: schedule.windowMs });
  const dispatcher = new WebhookDispatcher({
    store,
    clock: deps.clock,
    policy,
    schedule,
    timeoutMs: settings.timeoutMs,
    leaseMs: settings.leaseMs,
    pollMs: settings.pollMs,
    secretsFor(delivery, now) {
      if (!box) throw new Error("no secrets key on this process");
      const current = box.open(delivery.secretCiphertext, delivery.endpointId);
      const overlap = delivery.previousSecretCiphertext && delivery.previousSecretExpiresAt && delivery.previousSecretExpiresAt.getTime() > now.getTime();
      if (!overlap) return [current];
      try {
        return [current, box.open(delivery.previousSecretCiphertext!, delivery.endpointId)];
      } catch {
        // Sealed under an earlier SECRETS_KEY: the new secret alone signs (rotating is how a team recovers from a key change).
        return [current];
      }
    },
    onEndpointFailing: (endpointId, teamId, now) => endpoints.disableFailing(endpointId, teamId, now),
    onAttempt: settings.onAttempt,
    onError,
  });
  deps.outbox.subscribe(() => dispatcher.wake());
  return {
    endpoints,
    dispatcher,
    /** Pending deliveries and the oldest waiting event, for the metrics. */
    backlog: () => store.backlog(),
    /** Seals every stored signing secret under the current SECRETS_KEY (the operator's `reseal-secrets`). */
    resealSecrets(): Promise<ResealReport> {
      if (!box) throw new Error("no secrets key on this process");
      return resealWebhookSecrets(deps.prisma, box);
    },
    /** Removes settled events older than WEBHOOK_RETENTION_MS, with their deliveries and attempts; returns how many. */
    pruneHistory: (now: Date = deps.clock.now()) => pruneHistory(deps, now),
  };
}

/** Events written more than this long ago are pruned per statement at most. */
const PRUNE_BATCH = 1000;

async function pruneHistory(deps: ServiceDeps, now: Date): Promise<number> {
  const where = { createdAt: { lt: new Date(now.getTime() - WEBHOOK_RETENTION_MS) }, fannedOutAt: { not: null }, deliveries: { none: { status: "pending" } } };
  let removed = 0;
  for (;;) {
    const batch = await deps.prisma.webhookEvent.findMany({ where, select: { id: true }, take: PRUNE_BATCH });
    if (batch.length === 0) return removed;
    removed += (await deps.prisma.webhookEvent.deleteMany({ where: { ...where, id: { in: batch.map((event) => event.id) } } })).count;
  }
}

export type WebhooksService = ReturnType<typeof createWebhooksService>;
