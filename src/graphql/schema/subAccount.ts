import { queryFromInfo } from "@pothos/plugin-prisma";
import type { Account as AccountRow } from "../../generated/sqlite/client.ts";
import { subAccountBalanceView } from "../../services/balance.ts";
import { budgetView } from "../../services/budgets.ts";
import { DEFAULT_ALERT_THRESHOLDS } from "../../domain/alerts.ts";
import { assert } from "../../domain/errors.ts";
import type { Page } from "../../domain/paging.ts";
import { builder } from "../builder.ts";
import { connectionOf } from "../connections.ts";
import { Balance } from "./balance.ts";
import { Budget, BudgetInput } from "./budget.ts";

export const SubAccountStatus = builder.enumType("SubAccountStatus", {
  values: {
    ACTIVE: { value: "active" },
    INACTIVE: { value: "inactive", description: "Suspended or deactivated: its keys do not authenticate and it cannot send." },
  } as const,
});

// Without a type-level select, every query of this type reads all the account's columns (Pothos's include mode), and the
// listing's rows carry every column a field reads (src/db/subAccountListing.ts): fields that read columns need no `select`,
// which would make Pothos look up, for each row, which query loaded it.
export const SubAccount = builder.prismaObject("Account", {
  variant: "SubAccount",
  description: "An isolated account of the team, with its own keys and usage, charged to the team's balance.",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name"),
    externalId: t.exposeString("externalId", { nullable: true, description: "Your own reference for this sub-account." }),
    status: t.field({ type: SubAccountStatus, resolve: (row) => row.status as "active" | "inactive" }),
    totalSpent: t.expose("totalSpent", { type: "Cents" }),
    chargeSequence: t.exposeInt("chargeCount", {
      description: "The sequence number of its latest charge (0 before the first). spendUpdated resumes after it (afterSequence, after).",
    }),
    creditLimit: t.expose("creditLimit", { type: "Cents", nullable: true, description: "Spending cap in cents; null means no limit." }),
    metadata: t.expose("metadata", { type: "JSONObject", nullable: true }),
    apiKeys: t.relation("apiKeys", { query: { orderBy: { id: "asc" } } }),
    budget: t.field({
      type: Budget,
      nullable: true,
      description: "Its spending cap that renews each period, as of now; null without one.",
      resolve: (row, _args, ctx) => budgetView(row, ctx.services.clock.now()),
    }),
    alertThresholds: t.intList({
      description: "Percentages of its credit limit and of its budget whose crossing raises a spend alert (default 80 and 100).",
      resolve: (row) => (row.alertThresholds as number[] | null) ?? [...DEFAULT_ALERT_THRESHOLDS],
    }),
    balance: t.field({
      type: Balance,
      // The team as this request read it: at once when the listing read it with the page, else one loader read for the whole page.
      resolve: (row, _args, ctx) => {
        const known = ctx.loaders.knownTeam(row.teamId);
        if (known) return subAccountBalanceView(known, row, ctx.services.clock.now());
        return ctx.loaders.teamById.load(row.teamId).then((team) => {
          assert(team !== null, "a sub-account's team exists");
          return subAccountBalanceView(team, row, ctx.services.clock.now());
        });
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
    budget: t.field({ type: BudgetInput, description: "A cap that renews each day, week or month." }),
    alertThresholds: t.intList({ description: "Percentages (1 to 100, at most 5) of the credit limit and budget that raise an alert; default 80 and 100." }),
    metadata: t.field({ type: "JSONObject", description: "Arbitrary keys, at most 16 KB as JSON." }),
  }),
});

const UpdateSubAccountInput = builder.inputType("UpdateSubAccountInput", {
  fields: (t) => ({
    name: t.string(),
    externalId: t.string({ description: "null clears it." }),
    creditLimit: t.field({ type: "Cents", description: "null or 0 removes the limit. Below totalSpent blocks the next send." }),
    budget: t.field({ type: BudgetInput, description: "null removes the budget. A new period counts what was already charged in it." }),
    alertThresholds: t.intList({ description: "null restores the defaults (80 and 100)." }),
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
  subAccounts: t.connection(
    {
      type: SubAccount,
      description: "The team's sub-accounts in a stable order (main key only). `first` is 1 to 100 (default 20); forward paging only.",
      args: {
        status: t.arg({ type: SubAccountStatus }),
        externalId: t.arg.string(),
      },
      resolve: async (_root, args, ctx, info) => {
        // The plan of the nodes' selection: it records that the listing's rows carry what SubAccount's fields read
        // (src/db/subAccountListing.ts reads every column they expose, and the keys when apiKeys is asked for).
        const query = queryFromInfo({ context: ctx, info, path: ["edges", "node"] });
        const selected = query as { select?: Record<string, unknown>; include?: Record<string, unknown> };
        const withKeys = (selected.include ?? selected.select)?.apiKeys !== undefined;
        const { page, totalCount, team } = await ctx.services.accounts.listing(ctx.actor, args, { withKeys });
        if (team) ctx.loaders.rememberTeam(team);
        // Rows of the SubAccount type, without the columns no field reads (deactivatedAt).
        return { ...connectionOf(page as unknown as Page<AccountRow>), totalCount };
      },
    },
    {
      fields: (connection) => ({
        totalCount: connection.int({ description: "Sub-accounts matching the filters, over every page.", resolve: (parent) => parent.totalCount }),
      }),
    },
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
