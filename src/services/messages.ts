import { z } from "zod";
import type { Message as MessageRow, Prisma } from "../generated/sqlite/client.ts";
import { chargeTime, type ChargeAttempt, type ChargeSnapshot, type ChargeStore, type CommittedCharge, type RejectionCode } from "../db/charges.ts";
import { nextPeriodStart } from "../domain/periods.ts";
import { CHANNELS, resolveDestination, type Channel } from "../domain/channels.ts";
import { DomainError, forbidden, notFound } from "../domain/errors.ts";
import { newId } from "../domain/ids.ts";
import { centsToNumber } from "../domain/money.ts";
import { quote, type PriceTable } from "../domain/pricing.ts";
import { pageRequest, readPage } from "../domain/paging.ts";
import { charactersBetween, dateTimeSchema, idSchema, metadataSchema, parseInput } from "../domain/validation.ts";
import type { AccountsService } from "./accounts.ts";
import { authorize } from "./auth.ts";
import type { DeliveryService } from "./delivery.ts";
import type { Actor, ServiceDeps } from "./deps.ts";

export const IDEMPOTENCY_KEY_MAX_CHARS = 255;

/** Also the REST body schema (src/rest). */
export const sendInput = z
  .object({
    to: z.string().trim().min(1, "must not be empty").pipe(charactersBetween(0, 320)),
    text: charactersBetween(0, 100_000),
    channel: z.enum(CHANNELS, { errorMap: () => ({ message: `must be one of ${CHANNELS.join(", ")}` }) }).nullish(),
    idempotencyKey: z
      .string()
      .min(1, "must not be empty")
      .max(IDEMPOTENCY_KEY_MAX_CHARS, `must be at most ${IDEMPOTENCY_KEY_MAX_CHARS} characters`)
      .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces")
      .nullish(),
    metadata: metadataSchema.nullish(),
    /** A main key sending as one of its sub-accounts (REST: the X-Sub-Account-Id header). */
    subAccountId: idSchema.nullish(),
  })
  .strict();

export const MESSAGE_STATUSES = ["queued", "sent", "delivered", "failed"] as const;

/** Optional list filters (REST exposes them as query parameters). */
export const messageListFilters = z.object({
  subAccountId: idSchema.nullish(),
  channel: z.enum(CHANNELS, { errorMap: () => ({ message: `must be one of ${CHANNELS.join(", ")}` }) }).nullish(),
  status: z.enum(MESSAGE_STATUSES, { errorMap: () => ({ message: `must be one of ${MESSAGE_STATUSES.join(", ")}` }) }).nullish(),
  to: charactersBetween(0, 320).nullish(),
  since: dateTimeSchema().nullish(),
  until: dateTimeSchema().nullish(),
});

/** The filters; paging arguments beside them are read by src/domain/paging.ts. */
const listInput = messageListFilters.passthrough();

/** What the charge rule receives for one message, with fresh ids (also the benchmark's raw ceiling's input). */
export function chargeAttemptFor(
  sender: { teamId: string; accountId: string; apiKeyId: string; isTestMode: boolean },
  message: { to: string; channel: Channel; text: string; segments: number; idempotencyKey: string | null; metadata: Record<string, unknown> | null },
  cost: bigint,
  now: Date,
): ChargeAttempt {
  return {
    ...sender,
    cost,
    ...chargeTime(now),
    ledgerEntryId: newId(now.getTime()),
    message: {
      id: newId(now.getTime()),
      to: message.to,
      channel: message.channel,
      text: message.text,
      segments: message.segments,
      idempotencyKey: message.idempotencyKey,
      metadata: message.metadata ? JSON.stringify(message.metadata) : null,
    },
  };
}

/** The Message row as inserted by the charge store (its columns, as Prisma would read them back). */
function storedMessage(attempt: ChargeAttempt, metadata: Record<string, unknown> | null) {
  const { message } = attempt;
  return {
    id: message.id,
    teamId: attempt.teamId,
    accountId: attempt.accountId,
    apiKeyId: attempt.apiKeyId,
    to: message.to,
    channel: message.channel as string,
    text: message.text,
    status: "queued",
    cost: attempt.cost,
    segments: message.segments,
    isTestMode: attempt.isTestMode,
    idempotencyKey: message.idempotencyKey,
    metadata: metadata as Prisma.JsonValue,
    createdAt: attempt.now,
    updatedAt: attempt.now,
    sentAt: null,
    deliveredAt: null,
  } satisfies MessageRow;
}

type Query = { select?: Prisma.MessageSelect; include?: Prisma.MessageInclude };

export interface MessagesDeps {
  chargeStore: ChargeStore;
  prices: PriceTable;
  delivery: DeliveryService;
  accounts: AccountsService;
  /** Runs right after each live charge commits: its spend event, its metrics. */
  onCommitted(charge: CommittedCharge): void;
}

/** What makes two sends the same message, for an idempotency key used again. */
interface SendRequest {
  to: string;
  channel: string;
  text: string;
  metadata: unknown;
  isTestMode: boolean;
}

/** Equal as JSON values, whatever the order of object keys. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const aKeys = Object.keys(a);
  const bKeys = Object.keys(b);
  return aKeys.length === bKeys.length && aKeys.every((key) => key in b && sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

function differingFields(stored: Omit<SendRequest, "isTestMode">, request: SendRequest): string[] {
  const fields: string[] = [];
  for (const field of ["to", "channel", "text"] as const) if (stored[field] !== request[field]) fields.push(field);
  const storedMetadata = typeof stored.metadata === "string" ? JSON.parse(stored.metadata) : (stored.metadata ?? null);
  if (!sameJson(storedMetadata, request.metadata)) fields.push("metadata");
  return fields;
}

const ADJECTIVE = { day: "daily", week: "weekly", month: "monthly" } as const;

/** A budget's refusal: what the period has spent, the budget, and when it renews. */
function budgetRejection(cost: bigint, budget: NonNullable<ChargeSnapshot["budget"]>): DomainError {
  const resetsAt = nextPeriodStart(budget.period, budget.periodStart).toISOString();
  const details = { cost: centsToNumber(cost), periodSpent: centsToNumber(budget.periodSpent), budget: centsToNumber(budget.amount), period: budget.period, resetsAt };
  return new DomainError(
    "budget_exceeded",
    `This message costs ${details.cost} cents and would take the sub-account past its ${ADJECTIVE[budget.period]} budget (${details.periodSpent} of ${details.budget} spent this ${budget.period}). It renews at ${resetsAt}; or ask the main account to raise it.`,
    details,
  );
}

/** Why a charge was refused, with what the caller needs to act on it (README.md, "Messages and charging"). */
function rejection(code: RejectionCode, cost: bigint, snapshot: ChargeSnapshot): DomainError {
  if (code === "budget_exceeded" && snapshot.budget) return budgetRejection(cost, snapshot.budget);
  const details = {
    cost: centsToNumber(cost),
    totalSpent: centsToNumber(snapshot.totalSpent),
    creditLimit: snapshot.creditLimit === null ? null : centsToNumber(snapshot.creditLimit),
    balance: centsToNumber(snapshot.balance),
  };
  if (code === "credit_limit_exceeded") {
    return new DomainError(
      "credit_limit_exceeded",
      `This message costs ${details.cost} cents and would take the sub-account past its credit limit (${details.totalSpent} of ${details.creditLimit} spent). Ask the main account to raise the limit.`,
      details,
    );
  }
  if (code === "insufficient_balance") {
    return new DomainError(
      "insufficient_balance",
      `The team balance (${details.balance} cents) does not cover this message (${details.cost} cents). Top up the team balance.`,
      details,
    );
  }
  return forbidden("This account is inactive, so it cannot send messages. A main-account key can reactivate it.");
}

/** Messages: sending (priced, then charged by the charge rule), reading and listing. */
export class MessagesService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly messages: MessagesDeps,
  ) {}

  /**
   * The account a key acts as: its own; a main key also any of its team's
   * sub-accounts when it names one (another team's is not_found); a
   * sub-account key naming another account is forbidden.
   */
  async #actingAs(actor: Actor, subAccountId: string | null | undefined, doing: string): Promise<string> {
    if (subAccountId == null || subAccountId === actor.accountId) return actor.accountId;
    if (actor.kind !== "main") throw forbidden(`A sub-account key can only ${doing} as itself.`);
    return (await this.messages.accounts.requireSubAccount(actor, subAccountId, { select: { id: true } })).id;
  }

  /**
   * Validates, prices, and then stores and charges a message atomically
   * (the charge rule), or refuses it leaving nothing behind.
   */
  async send(actorOrNull: Actor | null, input: unknown) {
    const actor = authorize(actorOrNull, "messages:send");
    const data = parseInput(sendInput, input, "input");
    const channel = resolveDestination(data.to, data.text, data.channel);
    const price = quote(this.messages.prices, channel, data.to, data.text);
    const isTestMode = actor.environment === "test";
    const accountId = await this.#actingAs(actor, data.subAccountId, "send");
    const attempt = chargeAttemptFor(
      { teamId: actor.teamId, accountId, apiKeyId: actor.apiKeyId, isTestMode },
      { to: data.to, channel, text: data.text, segments: price.segments, idempotencyKey: data.idempotencyKey ?? null, metadata: data.metadata ?? null },
      price.cost,
      this.deps.clock.now(),
    );
    const result = await this.messages.chargeStore.charge(attempt, this.messages.onCommitted);
    if (result.kind === "rejected") throw rejection(result.code, price.cost, result.snapshot);
    if (result.kind === "stored") {
      if (!isTestMode) this.messages.delivery.dispatch({ id: result.messageId, channel, to: data.to, text: data.text });
      // Exactly the row the charge just inserted: reading it back would cost a query for nothing.
      return storedMessage(attempt, data.metadata ?? null);
    }
    return this.#original(result.messageId, { to: data.to, channel, text: data.text, metadata: data.metadata ?? null, isTestMode });
  }

  /**
   * The message an idempotency key already sent: the same request retried gets
   * it back, charged once. Reused for another message (another destination,
   * channel, text or metadata, or the other mode), it is `conflict`, naming what
   * differs: the client must never believe a new message went out.
   */
  async #original(messageId: string, request: SendRequest) {
    const stored = await this.deps.prisma.message.findUnique({ where: { id: messageId } });
    if (!stored) throw notFound("Message", messageId);
    if (stored.isTestMode !== request.isTestMode) {
      throw new DomainError(
        "conflict",
        `This idempotencyKey was already used by a ${stored.isTestMode ? "test" : "live"}-mode message of this account; use a new key for ${request.isTestMode ? "test" : "live"} mode.`,
        { field: "idempotencyKey", messageId },
      );
    }
    const fields = differingFields(stored, request);
    if (fields.length > 0) {
      throw new DomainError(
        "conflict",
        `This idempotencyKey was already used for a different message (${fields.join(", ")} differ${fields.length === 1 ? "s" : ""}); nothing was sent. Use a new idempotencyKey for a new message, or resend the original request unchanged.`,
        { field: "idempotencyKey", fields, messageId },
      );
    }
    return stored;
  }

  async get<Q extends Query>(actorOrNull: Actor | null, id: string, query?: Q) {
    const actor = authorize(actorOrNull, "messages:read");
    const messageId = parseInput(idSchema, id, "id");
    const where: Prisma.MessageWhereInput =
      actor.kind === "main" ? { id: messageId, teamId: actor.teamId } : { id: messageId, accountId: actor.accountId };
    const message = await this.deps.prisma.message.findFirst({ ...(query as object), where });
    if (!message) throw notFound("Message", messageId);
    return message;
  }

  /** One page, newest first, with the filters and paging arguments of GraphQL or REST. */
  async list<Q extends Query>(actorOrNull: Actor | null, args: object, query?: Q) {
    const actor = authorize(actorOrNull, "messages:read");
    const parsed = parseInput(listInput, args);
    const page = pageRequest(args);
    const where: Prisma.MessageWhereInput = {
      accountId: await this.#actingAs(actor, parsed.subAccountId, "read messages"),
      ...(parsed.channel ? { channel: parsed.channel } : {}),
      ...(parsed.status ? { status: parsed.status } : {}),
      ...(parsed.to != null ? { to: parsed.to } : {}),
      ...(parsed.since || parsed.until ? { createdAt: { ...(parsed.since ? { gte: parsed.since } : {}), ...(parsed.until ? { lt: parsed.until } : {}) } } : {}),
      ...(page.after ? { id: { lt: page.after[0] } } : {}),
    };
    return readPage(page, (take) => this.deps.prisma.message.findMany({ ...(query as object), where, orderBy: { id: "desc" }, take }), (row) => [row.id]);
  }
}
