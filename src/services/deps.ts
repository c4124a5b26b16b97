import type { Db } from "../db/client.ts";
import type { HotPathStore } from "../db/charges.ts";
import type { Clock } from "./clock.ts";
import type { AccountKind, KeyEnvironment } from "../domain/apiKeys.ts";

/** Who is calling: resolved from the bearer key on every request. */
export interface Actor {
  apiKeyId: string;
  accountId: string;
  teamId: string;
  kind: AccountKind;
  environment: KeyEnvironment;
}

/**
 * Access changes every instance must hear at once: the keys named (or every
 * key of the account) stop authenticating and their subscriptions end.
 */
export type AccessRevoked =
  | { type: "keys_revoked"; apiKeyIds: string[] }
  | { type: "account_suspended"; accountId: string };

export interface AccessSignals {
  publish(signal: AccessRevoked): void;
}

export interface ServiceDeps {
  prisma: Db;
  clock: Clock;
  signals: AccessSignals;
  /** The hot paths through the driver: charges, delivery status, key usage, and the per-request reads. */
  store: HotPathStore;
}

