import { z } from "zod";
import { CHANNELS } from "../domain/channels.ts";
import { ERROR_STATUS, type ErrorCode } from "../domain/errors.ts";
import { centsToNumber } from "../domain/money.ts";
import type { BalanceView } from "../services/balance.ts";
import { MESSAGE_STATUSES } from "../services/messages.ts";
import { apiKeySchema, budgetJson, budgetSchema, cents, isoDate, jsonObject, subAccountSchema } from "../services/views.ts";

export { apiKeySchema, apiKeyView, budgetJson, budgetSchema, subAccountSchema, subAccountView } from "../services/views.ts";

/**
 * Response shapes of the REST surface, following the types of the official SDK
 * (@zavudev/sdk). Each serializer is typed by its schema, and the schemas feed
 * /v1/openapi.json: the document cannot drift from what is sent.
 */


export const errorSchema = z
  .object({
    code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
    message: z.string().describe("What went wrong and what to do"),
    details: jsonObject.optional().describe("E.g. the field at fault, or cost/totalSpent/creditLimit/balance for a 402"),
  })
  .describe("Error");

export const subAccountResponse = z.object({ subAccount: subAccountSchema });

export const subAccountPage = z.object({
  items: z.array(subAccountSchema),
  nextCursor: z.string().nullable().describe("Pass as `cursor` for the next page; null on the last page"),
});

export const deactivateResponse = z.object({
  keysRevoked: z.number().int(),
  message: z.string(),
  deletionScheduledAt: isoDate,
  subAccount: subAccountSchema,
});

export const balanceSchema = z.object({
  balance: cents("The team's shared balance"),
  currency: z.string(),
  isSubAccount: z.boolean(),
  totalSpent: cents("The sub-account's spending; null for the main account").nullable(),
  creditLimit: cents("The sub-account's cap; null without a limit or for the main account").nullable(),
  remainingCredit: cents("creditLimit - totalSpent, never below 0; null without a limit").nullable(),
  budget: budgetSchema.nullable().describe("A sub-account's budget as of now; null without one or for the main account"),
});

const nullableCents = (value: bigint | null) => (value === null ? null : centsToNumber(value));

export function balanceView(view: BalanceView): z.input<typeof balanceSchema> {
  return {
    balance: centsToNumber(view.balance),
    currency: view.currency,
    isSubAccount: view.isSubAccount,
    totalSpent: nullableCents(view.totalSpent),
    creditLimit: nullableCents(view.creditLimit),
    remainingCredit: nullableCents(view.remainingCredit),
    budget: budgetJson(view.budget),
  };
}

export const apiKeyCreateResponse = z.object({
  apiKey: apiKeySchema.extend({ key: z.string().describe("The API key: shown only in this response") }),
});
export const apiKeyList = z.object({ items: z.array(apiKeySchema) });
export const apiKeyResponse = z.object({ apiKey: apiKeySchema });
export const apiKeyRollResponse = z.object({
  apiKey: apiKeySchema.extend({ key: z.string().describe("The new API key: shown only in this response") }),
  previous: apiKeySchema.describe("The rolled key, with the expiresAt after which it stops working"),
});

export const meSchema = z.object({
  apiKey: z.object({ id: z.string(), name: z.string(), environment: z.enum(["live", "test"]), keyPrefix: z.string() }),
  project: z.object({ id: z.string(), name: z.string().nullable(), isSubAccount: z.boolean() }),
  team: z.object({ id: z.string(), name: z.string().nullable() }),
  isTestMode: z.boolean(),
});

export const messageSchema = z.object({
  id: z.string(),
  to: z.string(),
  channel: z.enum(CHANNELS),
  text: z.string(),
  status: z.enum(MESSAGE_STATUSES),
  direction: z.literal("outbound"),
  messageType: z.literal("text"),
  cost: cents("What the message cost (priced but not charged in test mode)"),
  segments: z.number().int(),
  isTestMode: z.boolean(),
  idempotencyKey: z.string().nullable(),
  metadata: jsonObject.nullable(),
  accountId: z.string().describe("The account (main or sub) it was sent as, and charged to"),
  apiKeyId: z.string().nullable().describe("The key that sent it: a main key sending for a sub-account is recorded here"),
  createdAt: isoDate,
  updatedAt: isoDate,
  sentAt: isoDate.nullable(),
  deliveredAt: isoDate.nullable(),
});

type MessageRow = {
  id: string;
  to: string;
  channel: string;
  text: string;
  status: string;
  cost: bigint;
  segments: number;
  isTestMode: boolean;
  idempotencyKey: string | null;
  metadata: unknown;
  accountId: string;
  apiKeyId: string | null;
  createdAt: Date;
  updatedAt: Date;
  sentAt: Date | null;
  deliveredAt: Date | null;
};

function jsonObjectOrNull(value: unknown): Record<string, unknown> | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") {
    try {
      return JSON.parse(value) as Record<string, unknown>;
    } catch {
      return null;
    }
  }
  return value as Record<string, unknown>;
}

export function messageView(row: MessageRow): z.input<typeof messageSchema> {
  return {
    id: row.id,
    to: row.to,
    channel: row.channel as (typeof CHANNELS)[number],
    text: row.text,
    status: row.status as (typeof MESSAGE_STATUSES)[number],
    direction: "outbound",
    messageType: "text",
    cost: centsToNumber(row.cost),
    segments: row.segments,
    isTestMode: row.isTestMode,
    idempotencyKey: row.idempotencyKey,
    metadata: jsonObjectOrNull(row.metadata),
    accountId: row.accountId,
    apiKeyId: row.apiKeyId,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    sentAt: row.sentAt?.toISOString() ?? null,
    deliveredAt: row.deliveredAt?.toISOString() ?? null,
  };
}

export const messageResponse = z.object({ message: messageSchema });
export const messagePage = z.object({
  items: z.array(messageSchema),
  nextCursor: z.string().nullable().describe("Pass as `cursor` for the next page; null on the last page"),
});
