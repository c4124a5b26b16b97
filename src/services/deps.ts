import type { Db } from "../db/client.ts";
import type { HotPathStore } from "../db/charges.ts";
import type { AccountKind, KeyEnvironment } from "../domain/apiKeys.ts";
import type { Scope } from "../domain/scopes.ts";
import type { AccessChange } from "../events/types.ts";
import type { Clock } from "./clock.ts";
import type { KeyCache } from "./keyCache.ts";
import type { OutboxSignal } from "./webhooks/events.ts";

/** Who is calling: resolved from the bearer key on every request. */
export interface Actor {
  apiKeyId: string;
  accountId: string;
  teamId: string;
  kind: AccountKind;
  environment: KeyEnvironment;
  /** What the key may do (its permissions, src/domain/scopes.ts). */
  scopes: readonly Scope[];
}

/**
 * Where services announce access changes, to every instance (the event bus).
 * Resolves once the bus has taken the change (at once in-process; Redis's
 * acknowledgement, or REDIS_TIMEOUT_MS, when scaled out), so the operation is
 * answered after the other instances were told; it never rejects.
 */
export interface AccessSignals {
  publish(signal: AccessChange): Promise<void>;
}

export interface ServiceDeps {
  prisma: Db;
  clock: Clock;
  signals: AccessSignals;
  /** The hot paths through the driver: charges, delivery status, key usage, and the per-request reads. */
  store: HotPathStore;
  /** Told after a transaction that wrote webhook events commits (src/services/webhooks/events.ts). */
  outbox: OutboxSignal;
  /** The keys that authenticated on this instance lately; `signals` forgets the ones an access change concerns. */
  keyCache: KeyCache;
}
