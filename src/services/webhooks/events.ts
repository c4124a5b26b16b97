import type { Prisma } from "../../generated/sqlite/client.ts";
import { centsToNumber } from "../../domain/money.ts";
import { apiKeyView, subAccountView } from "../views.ts";
import { newWebhookEventId, webhookBody, type WebhookEventType } from "../../domain/webhooks.ts";

/**
 * Writing webhook events from the services (README.md, "Webhooks"): one row in
 * the outbox, in the transaction of the change that caused it, then a signal
 * after the commit so this instance's dispatcher looks at once (other instances
 * find it on their next poll). SQL that runs outside Prisma writes the outbox
 * with src/db/webhookOutbox.ts instead.
 */

/** Told after a transaction that wrote events has committed: wakes this instance's dispatcher. */
export class OutboxSignal {
  readonly #listeners = new Set<() => void>();

  written(): void {
    for (const listener of this.#listeners) listener();
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export interface WebhookEventInput {
  teamId: string;
  type: WebhookEventType;
  /** The REST view of the object the event is about: never a key, a key hash or a secret. */
  data: unknown;
  at: Date;
}

/** Writes one event to the outbox with the client it is given: always the change's own transaction. */
export async function recordWebhookEvent(tx: Prisma.TransactionClient, event: WebhookEventInput): Promise<void> {
  await tx.webhookEvent.create({
    data: { id: newWebhookEventId(), teamId: event.teamId, type: event.type, payload: webhookBody(event.type, event.at, event.data), createdAt: event.at },
  });
}

// The events' `data`: the objects' public views (src/services/views.ts), the ones REST answers with;
// test/webhooks.test.ts checks that each equals what the REST surface answers for the same object.

type SubAccountRow = Parameters<typeof subAccountView>[0];

/** A sub-account as GET /v1/sub-accounts/{id} shows it, its budget as of `at`. */
export function subAccountEventData(row: SubAccountRow, at: Date) {
  return subAccountView(row, at);
}

/** An API key's metadata as the key listings show it, with the account it belongs to (`accountId`). Never the key. */
export function apiKeyEventData(row: Parameters<typeof apiKeyView>[0] & { accountId: string }, kind: "main" | "sub") {
  return { ...apiKeyView(row, kind), accountId: row.accountId };
}

/** A top-up: the team (id, name, its balance after it, currency) and the amount added, in cents. */
export function topUpEventData(team: { id: string; name: string; balance: bigint; currency: string }, amount: number) {
  return { id: team.id, name: team.name, balance: centsToNumber(team.balance), currency: team.currency, amount };
}

/** Events about one sub-account, its data read once, as the transaction sees it now. */
export async function recordSubAccountEvents(tx: Prisma.TransactionClient, teamId: string, accountId: string, types: WebhookEventType[], at: Date): Promise<void> {
  if (types.length === 0) return;
  const row = await tx.account.findUniqueOrThrow({ where: { id: accountId } });
  for (const type of types) await recordWebhookEvent(tx, { teamId, type, data: subAccountEventData(row, at), at });
}

/** One event of `type` per API key, each key's metadata as the transaction sees it now. */
export async function recordApiKeyEvents(tx: Prisma.TransactionClient, teamId: string, apiKeyIds: string[], type: WebhookEventType, at: Date): Promise<void> {
  if (apiKeyIds.length === 0) return;
  const rows = await tx.apiKey.findMany({ where: { id: { in: apiKeyIds } }, orderBy: { id: "asc" }, include: { account: { select: { kind: true } } } });
  for (const row of rows) await recordWebhookEvent(tx, { teamId, type, data: apiKeyEventData(row, row.account.kind as "main" | "sub"), at });
}
