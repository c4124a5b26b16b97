import { queryFromInfo } from "@pothos/plugin-prisma";
import { builder } from "../builder.ts";
import { connectionOf } from "../connections.ts";

export const Channel = builder.enumType("Channel", {
  values: { SMS: { value: "sms" }, WHATSAPP: { value: "whatsapp" }, TELEGRAM: { value: "telegram" }, EMAIL: { value: "email" } } as const,
});

export const MessageStatus = builder.enumType("MessageStatus", {
  values: {
    QUEUED: { value: "queued" },
    SENT: { value: "sent" },
    DELIVERED: { value: "delivered" },
    FAILED: { value: "failed" },
  } as const,
});

export const Message = builder.prismaObject("Message", {
  description: "A message, stored with its cost at the moment it was charged.",
  fields: (t) => ({
    id: t.exposeID("id"),
    to: t.exposeString("to"),
    channel: t.field({ type: Channel, resolve: (row) => row.channel as "sms" }),
    text: t.exposeString("text"),
    status: t.field({
      type: MessageStatus,
      description: "Test-mode messages stay QUEUED: they are never delivered.",
      resolve: (row) => row.status as "queued",
    }),
    cost: t.expose("cost", { type: "Cents", description: "What the message cost, in cents (priced but not charged in test mode)." }),
    segments: t.exposeInt("segments", { description: "SMS segments (GSM-7: 160 alone, 153 per part; UCS-2: 70 alone, 67 per part); 1 otherwise." }),
    isTestMode: t.exposeBoolean("isTestMode"),
    idempotencyKey: t.exposeString("idempotencyKey", { nullable: true }),
    metadata: t.expose("metadata", { type: "JSONObject", nullable: true }),
    accountId: t.exposeID("accountId", { description: "The account (main or sub) it was sent as, and charged to." }),
    apiKeyId: t.exposeID("apiKeyId", { nullable: true, description: "The key that sent it: a main key sending for a sub-account is recorded here." }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    sentAt: t.expose("sentAt", { type: "DateTime", nullable: true }),
    deliveredAt: t.expose("deliveredAt", { type: "DateTime", nullable: true }),
  }),
});

const SendMessageInput = builder.inputType("SendMessageInput", {
  fields: (t) => ({
    to: t.string({ required: true, description: "E.164 phone number, email address, or numeric chat id." }),
    text: t.string({ required: true }),
    channel: t.field({ type: Channel, description: "Inferred from `to` when omitted: phone gives SMS, email gives EMAIL, chat id gives TELEGRAM." }),
    idempotencyKey: t.string({ description: "Retrying with the same key returns the original message and charges once." }),
    metadata: t.field({ type: "JSONObject" }),
    subAccountId: t.id({
      description: "A main key with messages:send sends as this sub-account: charged exactly as if its own key had sent it (its limits, its spend events); the message records the main key.",
    }),
  }),
});

builder.queryFields((t) => ({
  message: t.prismaField({
    type: Message,
    description: "One message of the caller's account (a main key: of its team).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, args, ctx) => ctx.services.messages.get(ctx.actor, String(args.id), query),
  }),
  messages: t.connection({
    type: Message,
    description: "The caller's messages, newest first. A main key may name one of its sub-accounts. `first` is 1 to 100 (default 20); forward paging only.",
    args: {
      subAccountId: t.arg.id(),
      channel: t.arg({ type: Channel }),
      status: t.arg({ type: MessageStatus }),
      since: t.arg({ type: "DateTime", description: "Sent at or after." }),
      until: t.arg({ type: "DateTime", description: "Sent before." }),
    },
    resolve: async (_root, args, ctx, info) => {
      const query = queryFromInfo({ context: ctx, info, path: ["edges", "node"] });
      const filters = { ...args, subAccountId: args.subAccountId == null ? args.subAccountId : String(args.subAccountId) };
      return connectionOf(await ctx.services.messages.list(ctx.actor, filters, query));
    },
  }),
}));

builder.mutationFields((t) => ({
  sendMessage: t.prismaField({
    type: Message,
    description:
      "Sends a message (scope messages:send), charged to the team balance if and only if the account is active, within its credit limit, and the balance covers it. Otherwise credit_limit_exceeded or insufficient_balance (HTTP 402) and nothing is charged.",
    args: { input: t.arg({ type: SendMessageInput, required: true }) },
    resolve: (_query, _root, args, ctx) => ctx.services.messages.send(ctx.actor, args.input),
  }),
}));
