import { z } from "zod";
import { CHANNELS } from "../domain/channels.ts";
import { ERROR_STATUS, type ErrorCode } from "../domain/errors.ts";
import { centsToNumber } from "../domain/money.ts";
import type { BalanceView } from "../services/balance.ts";
import { MESSAGE_STATUSES } from "../services/messages.ts";

/**
 * Response shapes of the REST surface, following the types of the official SDK
 * (@zavudev/sdk). Each serializer is typed by its schema, and the schemas feed
 * /v1/openapi.json: the document cannot drift from what is sent.
 */

const cents = (description: string) => z.number().int().describe(`${description} (integer cents)`);
const isoDate = z.string().datetime().describe("ISO 8601 date-time (UTC)");
const epochMs = z.number().int().describe("Milliseconds since the Unix epoch (as in the SDK's types)");
const jsonObject = z.record(z.unknown());

export const errorSchema = z
  .object({
    code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
    message: z.string().describe("What went wrong and what to do"),
    details: jsonObject.optional().describe("E.g. the field at fault, or cost/totalSpent/creditLimit/balance for a 402"),
  })
  .describe("Error");

export const subAccountSchema = z.object({
  id: z.string(),
  name: z.string(),
  externalId: z.string().nullable(),
  status: z.enum(["active", "inactive"]),
  totalSpent: cents("Total charged to this sub-account"),
  creditLimit: cents("Spending cap; null means no limit").nullable(),
  metadata: jsonObject.nullable(),
  apiKey: z.string().optional().describe("The sub-account's first API key: only in the creation response"),
  createdAt: isoDate,
  updatedAt: isoDate,
  deletionScheduledAt: isoDate.nullable().describe("Set by deactivation: the purge date unless reactivated before"),
});

type SubAccountRow = {
  id: string;
  name: string;
  externalId: string | null;
  status: string;
  totalSpent: bigint;
  creditLimit: bigint | null;
  metadata: unknown;
  createdAt: Date;
  updatedAt: Date;
  deletionScheduledAt: Date | null;
};

export function subAccountView(row: SubAccountRow, apiKey?: string): z.input<typeof subAccountSchema> {
  return {
    id: row.id,
    name: row.name,
    externalId: row.externalId,
    status: row.status as "active" | "inactive",
    totalSpent: centsToNumber(row.totalSpent),
    creditLimit: row.creditLimit === null ? null : centsToNumber(row.creditLimit),
    metadata: (row.metadata ?? null) as Record<string, unknown> | null,
    ...(apiKey !== undefined ? { apiKey } : {}),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    deletionScheduledAt: row.deletionScheduledAt?.toISOString() ?? null,
  };
}

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
  };
}

export const apiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  environment: z.enum(["live", "test"]),
  keyPrefix: z.string().describe("The first characters of the key, for recognising it"),
  permissions: z.array(z.string()),
  createdAt: epochMs,
  lastUsedAt: epochMs.nullable(),
  revokedAt: epochMs.nullable(),
});

type ApiKeyRow = {
  id: string;
  name: string;
  environment: string;
  keyPrefix: string;
  permissions: unknown;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
};

export function apiKeyView(row: ApiKeyRow): z.input<typeof apiKeySchema> {
  return {
    id: row.id,
    name: row.name,
    environment: row.environment as "live" | "test",
    keyPrefix: row.keyPrefix,
    permissions: Array.isArray(row.permissions) ? row.permissions.map(String) : [],
    createdAt: row.createdAt.getTime(),
    lastUsedAt: row.lastUsedAt?.getTime() ?? null,
    revokedAt: row.revokedAt?.getTime() ?? null,
  };
}

export const apiKeyCreateResponse = z.object({
  apiKey: apiKeySchema.extend({ key: z.string().describe("The API key: shown only in this response") }),
});
export const apiKeyList = z.object({ items: z.array(apiKeySchema) });

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
  accountId: z.string().describe("The account (main or sub) that sent it"),
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
