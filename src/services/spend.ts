import { FixedBuffer, Repeater } from "graphql-yoga";
import type { BusState, EventBus } from "../bus/types.ts";
import type { CommittedCharge } from "../db/charges.ts";
import { DomainError, forbidden, unauthorized } from "../domain/errors.ts";
import { centsToNumber } from "../domain/money.ts";
import { idSchema, parseInput } from "../domain/validation.ts";
import { markShareable } from "../graphql/sharedSubscriptionResults.ts";
import type { AccessRevoked, Actor } from "./deps.ts";

/** What subscribers of `spendUpdated` receive after each committed charge of a sub-account. JSON-safe. */
export interface SpendUpdate {
  teamId: string;
  subAccount: { id: string; totalSpent: number; creditLimit: number | null; status: "active" | "inactive" };
  amount: number;
  messageId: string;
  teamBalance: number;
  remainingCredit: number | null;
  limitReached: boolean;
  chargedAt: string;
  /** The sub-account's gapless charge sequence number. */
  sequence: number;
}

export type SpendStreamItem =
  | { type: "update"; update: SpendUpdate }
  /** Something the subscriber must know; the stream goes on. */
  | { type: "notice"; error: DomainError }
  /** The last item: the stream ends with this error. */
  | { type: "ended"; error: DomainError };

const BUS_DOWN_NOTICE =
  "Live spend updates are interrupted: the event bus (Redis) is unreachable. Charges continue; updates resume automatically when it is back, without replaying those missed.";

export function spendUpdateOf(charge: CommittedCharge): SpendUpdate {
  const remaining = charge.creditLimit === null ? null : charge.creditLimit - charge.totalSpentAfter;
  return {
    teamId: charge.teamId,
    subAccount: {
      id: charge.accountId,
      totalSpent: centsToNumber(charge.totalSpentAfter),
      creditLimit: charge.creditLimit === null ? null : centsToNumber(charge.creditLimit),
      status: "active",
    },
    amount: centsToNumber(charge.amount),
    messageId: charge.messageId,
    teamBalance: centsToNumber(charge.balanceAfter),
    remainingCredit: remaining === null ? null : centsToNumber(remaining),
    limitReached: remaining !== null && remaining <= 0n,
    chargedAt: charge.chargedAt.toISOString(),
    sequence: charge.sequence,
  };
}

/**
 * One stream item per update, whoever receives it: every subscriber of a charge
 * then shares one execution of its selection (src/graphql/sharedSubscriptionResults.ts).
 */
const streamItems = new WeakMap<SpendUpdate, SpendStreamItem>();

function streamItemOf(update: SpendUpdate): SpendStreamItem {
  const known = streamItems.get(update);
  if (known) return known;
  const item = markShareable<SpendStreamItem>({ type: "update", update });
  streamItems.set(update, item);
  return item;
}

interface OpenSubscription {
  apiKeyId: string;
  accountId: string;
  end(error: DomainError): void;
  notify(error: DomainError): void;
}

/** Open subscriptions on this instance, by key and by account, so access changes can end them at once. */
class SubscriptionRegistry {
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

  endMatching(signal: AccessRevoked): number {
    let ended = 0;
    for (const subscription of [...this.#open]) {
      if (signal.type === "keys_revoked" && signal.apiKeyIds.includes(subscription.apiKeyId)) {
        subscription.end(unauthorized("This API key has been revoked; the subscription has ended."));
      } else if (signal.type === "account_suspended" && signal.accountId === subscription.accountId) {
        subscription.end(unauthorized("This sub-account is no longer active; the subscription has ended."));
      } else continue;
      this.#open.delete(subscription);
      ended += 1;
    }
    return ended;
  }
}

/** How long a subscriber waits for a missing charge (lost with an event-bus outage) before moving past it. */
const GAP_WAIT_MS = 1000;
/** Out-of-order events held per subscription at most; past it the oldest gap is skipped. */
const HELD_EVENTS_MAX = 10_000;

/**
 * Puts one subscription's events in charge order per sub-account. Instances
 * publish after their own commits, so two charges of one sub-account on two
 * instances can cross on the bus; the gapless sequence numbers restore the
 * order. Starts from the counts at subscription time: earlier charges are not
 * replayed.
 */
export class ChargeOrder {
  readonly #next = new Map<string, number>();
  readonly #held = new Map<string, Map<number, SpendUpdate>>();
  #heldCount = 0;

  constructor(startCounts: Map<string, number>) {
    for (const [accountId, count] of startCounts) this.#next.set(accountId, count + 1);
  }

  /** Accepts one event; returns those now deliverable, in order. */
  accept(update: SpendUpdate): SpendUpdate[] {
    const accountId = update.subAccount.id;
    const expected = this.#next.get(accountId) ?? 1;
    if (update.sequence < expected) return []; // before this subscription began, or a duplicate
    const held = this.#held.get(accountId) ?? new Map<number, SpendUpdate>();
    if (!held.has(update.sequence)) {
      held.set(update.sequence, update);
      this.#heldCount += 1;
    }
    this.#held.set(accountId, held);
    const ready = this.#drain(accountId);
    if (this.#heldCount > HELD_EVENTS_MAX) ready.push(...this.skipGaps());
    return ready;
  }

  #drain(accountId: string): SpendUpdate[] {
    const held = this.#held.get(accountId);
    const ready: SpendUpdate[] = [];
    if (!held) return ready;
    let expected = this.#next.get(accountId) ?? 1;
    for (let update = held.get(expected); update; update = held.get(expected)) {
      held.delete(expected);
      this.#heldCount -= 1;
      ready.push(update);
      expected += 1;
    }
    this.#next.set(accountId, expected);
    if (held.size === 0) this.#held.delete(accountId);
    return ready;
  }

  get waiting(): boolean {
    return this.#heldCount > 0;
  }

  /** Gives up on missing events: moves each account past its gap and releases what follows. */
  skipGaps(): SpendUpdate[] {
    const ready: SpendUpdate[] = [];
    for (const [accountId, held] of [...this.#held]) {
      this.#next.set(accountId, Math.min(...held.keys()));
      ready.push(...this.#drain(accountId));
    }
    return ready;
  }
}

/** Updates waiting for one slow subscriber, at most (the repeater allows 1,024 more pending beyond its buffer). */
const SUBSCRIPTION_BUFFER_MAX = 10_000;

/** How often open subscriptions' keys are re-checked, in case a revocation signal was lost (bus outage). */
const REVOCATION_SWEEP_MS = 500;

export interface SpendServiceDeps {
  bus: EventBus;
  /** Of these key ids, the ones that no longer authenticate (revoked, or their account inactive). */
  invalidKeys(apiKeyIds: string[]): Promise<string[]>;
  onError(error: unknown): void;
  /** Throws unless the sub-account exists in the team (used for a main key naming one). */
  requireSubAccountOfTeam(teamId: string, subAccountId: string): Promise<void>;
  /** Re-checks the key after the subscription is registered, closing the revoke-while-subscribing gap. */
  stillAuthorized(actor: Actor): Promise<boolean>;
  /** Each of the team's sub-accounts' charge counts now (or just the one named). */
  chargeCounts(teamId: string, subAccountId: string | null): Promise<Map<string, number>>;
}

export function createSpendService(deps: SpendServiceDeps) {
  const registry = new SubscriptionRegistry();
  deps.bus.onAccessRevoked((signal) => registry.endMatching(signal));
  deps.bus.onStateChange((state: BusState) => {
    if (state === "down") registry.notifyAll(new DomainError("internal_error", BUS_DOWN_NOTICE, { eventBus: "down" }));
  });

  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping || registry.size === 0) return;
    sweeping = true;
    deps
      .invalidKeys(registry.keyIds)
      .then((invalid) => {
        if (invalid.length > 0) registry.endMatching({ type: "keys_revoked", apiKeyIds: invalid });
      })
      .catch(deps.onError)
      .finally(() => (sweeping = false));
  }, REVOCATION_SWEEP_MS);
  sweep.unref();

  return {
    /** Publishes a committed charge of a sub-account to every subscriber of its team, on every instance. */
    publishCharge(charge: CommittedCharge): void {
      if (charge.accountKind !== "sub") return;
      deps.bus.publishSpend(spendUpdateOf(charge));
    },

    close(): void {
      clearInterval(sweep);
    },

    /** Ends this instance's subscriptions opened with a revoked key or a suspended account's keys. */
    endSubscriptions(signal: AccessRevoked): number {
      return registry.endMatching(signal);
    },

    get openSubscriptions(): number {
      return registry.size;
    },

    /**
     * The spend stream a key may see: a main key its whole team or one of its
     * sub-accounts; a sub-account key its own account only.
     */
    async subscribe(actorOrNull: Actor | null, subAccountIdInput: string | null | undefined): Promise<AsyncIterable<SpendStreamItem>> {
      if (!actorOrNull) throw unauthorized();
      const actor = actorOrNull;
      let onlyAccountId: string | null = null;
      if (subAccountIdInput != null) {
        onlyAccountId = parseInput(idSchema, subAccountIdInput, "subAccountId");
        if (actor.kind === "sub" && onlyAccountId !== actor.accountId) {
          throw forbidden("A sub-account key can only subscribe to its own spend.");
        }
        if (actor.kind === "main") await deps.requireSubAccountOfTeam(actor.teamId, onlyAccountId);
      } else if (actor.kind === "sub") {
        onlyAccountId = actor.accountId;
      }

      return new Repeater<SpendStreamItem>(async (push, stop) => {
        let order: ChargeOrder | null = null;
        const early: SpendUpdate[] = [];
        let gapTimer: NodeJS.Timeout | undefined;
        let ended = false;
        const end = (error: DomainError) => {
          if (ended) return;
          ended = true;
          void push({ type: "ended", error }).catch(() => {});
          stop();
        };
        const send = (item: SpendStreamItem) => {
          try {
            void push(item).catch(() => {});
          } catch {
            // The repeater refuses more pending pushes: this subscriber cannot keep up.
            end(new DomainError("rate_limited", `This subscriber fell more than ${SUBSCRIPTION_BUFFER_MAX} updates behind; the subscription has ended. Subscribe again.`));
          }
        };
        const deliver = (updates: SpendUpdate[]) => {
          for (const update of updates) send(streamItemOf(update));
          clearTimeout(gapTimer);
          gapTimer = order?.waiting ? setTimeout(() => deliver(order!.skipGaps()), GAP_WAIT_MS) : undefined;
        };
        const unsubscribe = deps.bus.subscribeSpend(actor.teamId, (update) => {
          if (onlyAccountId !== null && update.subAccount.id !== onlyAccountId) return;
          if (order) deliver(order.accept(update));
          else early.push(update);
        });
        const unregister = registry.add({ apiKeyId: actor.apiKeyId, accountId: actor.accountId, end, notify: (error) => send({ type: "notice", error }) });
        void stop.then(() => {
          unsubscribe();
          unregister();
          clearTimeout(gapTimer);
        });

        if (!(await deps.stillAuthorized(actor))) {
          end(unauthorized("This API key is no longer valid; the subscription has ended."));
          return;
        }
        const counts = await deps.chargeCounts(actor.teamId, onlyAccountId);
        // Updates that arrived while the counts were read came after this subscription began, even
        // when the read already counts them: they lower the starting point rather than being dropped.
        for (const update of early) {
          const start = counts.get(update.subAccount.id);
          if (start !== undefined && update.sequence <= start) counts.set(update.subAccount.id, update.sequence - 1);
        }
        const ready = new ChargeOrder(counts);
        order = ready;
        deliver(early.flatMap((update) => ready.accept(update)));
        await stop;
      }, new FixedBuffer(SUBSCRIPTION_BUFFER_MAX));
    },
  };
}

export type SpendService = ReturnType<typeof createSpendService>;

