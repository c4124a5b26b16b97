import { z } from "zod";
import type { Message as MessageRow, Prisma } from "../generated/sqlite/client.ts";
import type { ChargeAttempt, ChargeStore } from "../db/charges.ts";
import { CHANNELS, resolveDestination, type Channel } from "../domain/channels.ts";
import { DomainError, forbidden, notFound } from "../domain/errors.ts";
import { newId } from "../domain/ids.ts";
import { centsToNumber } from "../domain/money.ts";
import { quote, type PriceTable } from "../domain/pricing.ts";
import { idSchema, metadataSchema, pageSizeSchema, parseInput } from "../domain/validation.ts";
import type { AccountsService } from "./accounts.ts";
import { requireActor } from "./auth.ts";
import type { DeliveryService } from "./delivery.ts";
import type { Actor, ServiceDeps } from "./deps.ts";
import type { SpendService } from "./spend.ts";

export const IDEMPOTENCY_KEY_MAX_CHARS = 255;

/** Also the REST body schema (src/rest). */
export const sendInput = z
  .object({
    to: z.string().trim().min(1, "must not be empty").max(320, "must be at most 320 characters"),
    text: z.string().max(100_000, "must be at most 100000 characters"),
    channel: z.enum(CHANNELS, { errorMap: () => ({ message: `must be one of ${CHANNELS.join(", ")}` }) }).nullish(),
    idempotencyKey: z
      .string()
      .min(1, "must not be empty")
      .max(IDEMPOTENCY_KEY_MAX_CHARS, `must be at most ${IDEMPOTENCY_KEY_MAX_CHARS} characters`)
      .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces")
      .nullish(),
    metadata: metadataSchema.nullish(),
  })
  .strict();

export const MESSAGE_STATUSES = ["queued", "sent", "delivered", "failed"] as const;

/** Optional list filters (REST exposes them as query parameters). */
export const messageListFilters = z.object({
  subAccountId: idSchema.nullish(),
  channel: z.enum(CHANNELS, { errorMap: () => ({ message: `must be one of ${CHANNELS.join(", ")}` }) }).nullish(),
  status: z.enum(MESSAGE_STATUSES, { errorMap: () => ({ message: `must be one of ${MESSAGE_STATUSES.join(", ")}` }) }).nullish(),
  to: z.string().max(320, "must be at most 320 characters").nullish(),
});

const listInput = messageListFilters.extend({ first: pageSizeSchema.nullish() }).passthrough();

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
    now,
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
  spend: SpendService;
  delivery: DeliveryService;
  accounts: AccountsService;
}

export function createMessagesService(deps: ServiceDeps, messages: MessagesDeps) {
  const { prisma, clock } = deps;

  /** Messages a key may read: its own account's; a main key also any of its team's sub-accounts' when named. */
  async function scope(actor: Actor, subAccountId: string | null | undefined): Promise<Prisma.MessageWhereInput> {
    if (subAccountId == null || subAccountId === actor.accountId) return { accountId: actor.accountId };
    if (actor.kind !== "main") throw forbidden("A sub-account key can only read its own messages.");
    const account = await messages.accounts.get(actor, subAccountId, { select: { id: true } });
    return { accountId: account.id };
  }

  function rejection(code: "credit_limit_exceeded" | "insufficient_balance" | "account_inactive", cost: bigint, snapshot: { totalSpent: bigint; creditLimit: bigint | null; balance: bigint }): DomainError {
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

  return {
    /**
     * Validates, prices, and then stores and charges a message atomically
     * (the charge rule), or refuses it leaving nothing behind.
     */
    async send<Q extends Query>(actorOrNull: Actor | null, input: unknown, query?: Q) {
      const actor = requireActor(actorOrNull);
      const data = parseInput(sendInput, input, "input");
      const channel = resolveDestination(data.to, data.text, data.channel);
      const price = quote(messages.prices, channel, data.to, data.text);
      const now = clock.now();
      const isTestMode = actor.environment === "test";
      const attempt = chargeAttemptFor(
        { teamId: actor.teamId, accountId: actor.accountId, apiKeyId: actor.apiKeyId, isTestMode },
        { to: data.to, channel, text: data.text, segments: price.segments, idempotencyKey: data.idempotencyKey ?? null, metadata: data.metadata ?? null },
        price.cost,
        now,
      );
      const result = await messages.chargeStore.charge(attempt, (charge) => messages.spend.publishCharge(charge));
      if (result.kind === "rejected") throw rejection(result.code, price.cost, result.snapshot);
      if (result.kind === "duplicate") {
        const original = await prisma.message.findUniqueOrThrow({ where: { id: result.messageId }, select: { isTestMode: true } });
        if (original.isTestMode !== isTestMode) {
          throw new DomainError(
            "conflict",
            `This idempotencyKey was already used by a ${original.isTestMode ? "test" : "live"}-mode message of this account; use a new key for ${isTestMode ? "test" : "live"} mode.`,
            { field: "idempotencyKey", messageId: result.messageId },
          );
        }
      }
      if (result.kind === "stored") {
        if (!isTestMode) messages.delivery.dispatch({ id: result.messageId, channel, to: data.to, text: data.text });
        // Exactly the row the charge just inserted: reading it back would cost a query for nothing.
        return storedMessage(attempt, data.metadata ?? null);
      }
      const message = await prisma.message.findUnique({ ...(query as object), where: { id: result.messageId } });
      if (!message) throw notFound("Message", result.messageId);
      return message;
    },

    async get<Q extends Query>(actorOrNull: Actor | null, id: string, query?: Q) {
      const actor = requireActor(actorOrNull);
      const messageId = parseInput(idSchema, id, "id");
      const where: Prisma.MessageWhereInput =
        actor.kind === "main" ? { id: messageId, teamId: actor.teamId } : { id: messageId, accountId: actor.accountId };
      const message = await prisma.message.findFirst({ ...(query as object), where });
      if (!message) throw notFound("Message", messageId);
      return message;
    },

    /** Newest first, in a stable order. */
    async findPage<Q extends Query & { take?: number; skip?: number; cursor?: Prisma.MessageWhereUniqueInput }>(
      actorOrNull: Actor | null,
      args: object,
      query: Q,
    ) {
      const actor = requireActor(actorOrNull);
      const parsed = parseInput(listInput, args);
      const where: Prisma.MessageWhereInput = {
        ...(await scope(actor, parsed.subAccountId)),
        ...(parsed.channel ? { channel: parsed.channel } : {}),
        ...(parsed.status ? { status: parsed.status } : {}),
        ...(parsed.to != null ? { to: parsed.to } : {}),
      };
      return prisma.message.findMany({ ...(query as object), where, orderBy: { id: "desc" } });
    },
  };
}

export type MessagesService = ReturnType<typeof createMessagesService>;
