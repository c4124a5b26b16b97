import type { Account as AccountRow } from "../../generated/sqlite/client.ts";
import { subAccountBalanceView } from "../../services/balance.ts";
import { assert } from "../../domain/errors.ts";
import { builder } from "../builder.ts";
import { Balance } from "./balance.ts";

export const SubAccountStatus = builder.enumType("SubAccountStatus", {
  values: {
    ACTIVE: { value: "active" },
    INACTIVE: { value: "inactive", description: "Suspended or deactivated: its keys do not authenticate and it cannot send." },
  } as const,
});

export const SubAccount = builder.prismaObject("Account", {
  variant: "SubAccount",
  description: "An isolated account of the team, with its own keys and usage, charged to the team's balance.",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name"),
    externalId: t.exposeString("externalId", { nullable: true, description: "Your own reference for this sub-account." }),
    status: t.field({ type: SubAccountStatus, resolve: (row) => row.status as "active" | "inactive" }),
    totalSpent: t.expose("totalSpent", { type: "Cents" }),
    creditLimit: t.expose("creditLimit", { type: "Cents", nullable: true, description: "Spending cap in cents; null means no limit." }),
    metadata: t.expose("metadata", { type: "JSONObject", nullable: true }),
    apiKeys: t.relation("apiKeys", { query: { orderBy: { id: "asc" } } }),
    balance: t.field({
      type: Balance,
      // The team through the request's loader: one read for the whole page, none when authentication already read it.
      select: { totalSpent: true, creditLimit: true, teamId: true },
      resolve: async (row, _args, ctx) => {
        const team = await ctx.loaders.teamById.load(row.teamId);
        assert(team !== null, "a sub-account's team exists");
        return subAccountBalanceView(team, row);
      },
    }),
    deletionScheduledAt: t.expose("deletionScheduledAt", {
      type: "DateTime",
      nullable: true,
      description: "Set by deactivation: when the purge removes this sub-account unless it is reactivated first.",
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

const CreateSubAccountInput = builder.inputType("CreateSubAccountInput", {
  fields: (t) => ({
    name: t.string({ required: true, description: "1 to 200 characters after trimming." }),
    externalId: t.string({ description: "Your own reference, at most 255 characters." }),
    creditLimit: t.field({ type: "Cents", description: "Spending cap in cents; omitted, null or 0 means no limit." }),
    metadata: t.field({ type: "JSONObject", description: "Arbitrary keys, at most 16 KB as JSON." }),
  }),
});

const UpdateSubAccountInput = builder.inputType("UpdateSubAccountInput", {
  fields: (t) => ({
    name: t.string(),
    externalId: t.string({ description: "null clears it." }),
    creditLimit: t.field({ type: "Cents", description: "null or 0 removes the limit. Below totalSpent blocks the next send." }),
    metadata: t.field({ type: "JSONObject", description: "Replaces the whole object; null clears it." }),
    status: t.field({ type: SubAccountStatus, description: "INACTIVE suspends (keys stop working); ACTIVE reactivates." }),
  }),
});

const CreateSubAccountPayload = builder.objectRef<{ subAccount: AccountRow; apiKey: string }>("CreateSubAccountPayload").implement({
  fields: (t) => ({
    subAccount: t.field({ type: SubAccount, resolve: (payload) => payload.subAccount }),
    apiKey: t.exposeString("apiKey", { description: "The sub-account's first API key. Shown only in this response: store it now." }),
  }),
});

const DeactivateSubAccountPayload = builder
  .objectRef<{ subAccount: AccountRow; keysRevoked: number; message: string; deletionScheduledAt: Date }>("DeactivateSubAccountPayload")
  .implement({
    fields: (t) => ({
      subAccount: t.field({ type: SubAccount, resolve: (payload) => payload.subAccount }),
      keysRevoked: t.exposeInt("keysRevoked"),
      message: t.exposeString("message"),
      deletionScheduledAt: t.expose("deletionScheduledAt", { type: "DateTime" }),
    }),
  });

builder.queryFields((t) => ({
  subAccount: t.prismaField({
    type: SubAccount,
    description: "One of the team's sub-accounts (main key only).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, args, ctx) => ctx.services.accounts.get(ctx.actor, String(args.id), query),
  }),
  subAccounts: t.prismaConnection(
    {
      type: SubAccount,
      cursor: "id",
      description: "The team's sub-accounts in a stable order (main key only). `first` is 1 to 100 (default 20).",
      args: {
        status: t.arg({ type: SubAccountStatus }),
        externalId: t.arg.string(),
      },
      resolve: (query, _root, args, ctx) => ctx.services.accounts.findPage(ctx.actor, args, query),
      totalCount: (_connection, args, ctx) => ctx.services.accounts.count(ctx.actor, args),
    },
    {},
  ),
}));

builder.mutationFields((t) => ({
  createSubAccount: t.field({
    type: CreateSubAccountPayload,
    description: "Creates a sub-account with its first API key, returned once (main key only).",
    args: { input: t.arg({ type: CreateSubAccountInput, required: true }) },
    resolve: (_root, args, ctx) => ctx.services.accounts.create(ctx.actor, args.input),
  }),
  updateSubAccount: t.prismaField({
    type: SubAccount,
    description: "Updates a sub-account; status INACTIVE suspends it and ACTIVE reactivates it (main key only).",
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateSubAccountInput, required: true }) },
    resolve: (query, _root, args, ctx) =>
      ctx.services.accounts.update(ctx.actor, String(args.id), args.input, query),
  }),
  deactivateSubAccount: t.field({
    type: DeactivateSubAccountPayload,
    description: "Deactivates a sub-account: revokes every key at once and schedules deletion in 14 days (main key only).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.accounts.deactivate(ctx.actor, String(args.id)),
  }),
}));
