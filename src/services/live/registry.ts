import { DomainError, unauthorized } from "../../domain/errors.ts";
import type { Scope } from "../../domain/scopes.ts";
import type { AccessChange } from "../../events/types.ts";

/** One open live subscription, as the registry knows it. */
export interface OpenSubscription {
  apiKeyId: string;
  accountId: string;
  /** The scope its key must keep holding. */
  scope: Scope;
  end(error: DomainError): void;
  notify(error: DomainError): void;
}

/** Open subscriptions on this instance, by key and by account, so access changes can end them at once. */
export class SubscriptionRegistry {
  readonly #open = new Set<OpenSubscription>();

  add(subscription: OpenSubscription): () => void {
    this.#open.add(subscription);
    return () => this.#open.delete(subscription);
  }

  get size(): number {
    return this.#open.size;
  }

  get keyIds(): string[] {
    return [...new Set([...this.#open].map((subscription) => subscription.apiKeyId))];
  }

  notifyAll(error: DomainError): void {
    for (const subscription of this.#open) subscription.notify(error);
  }

  /** Ends each subscription `reason` gives an error for, with that error. */
  endWhere(reason: (subscription: OpenSubscription) => DomainError | null): number {
    let ended = 0;
    for (const subscription of [...this.#open]) {
      const error = reason(subscription);
      if (!error) continue;
      subscription.end(error);
      this.#open.delete(subscription);
      ended += 1;
    }
    return ended;
  }

  endMatching(signal: AccessChange): number {
    return this.endWhere((subscription) => {
      if (signal.type === "keys_revoked" && signal.apiKeyIds.includes(subscription.apiKeyId)) {
        return unauthorized("This API key has been revoked; the subscription has ended.");
      }
      if (signal.type === "account_suspended" && signal.accountId === subscription.accountId) {
        return unauthorized("This sub-account is no longer active; the subscription has ended.");
      }
      return null;
    });
  }
}
