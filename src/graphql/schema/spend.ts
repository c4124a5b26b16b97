import type { SpendStreamItem, SpendUpdate } from "../../services/spend.ts";
import { builder } from "../builder.ts";
import { SubAccountStatus } from "./subAccount.ts";

const SpendSubAccount = builder.objectRef<SpendUpdate["subAccount"]>("SpendSubAccount").implement({
  description: "The sub-account's spending state right after the charge.",
  fields: (t) => ({
    id: t.exposeID("id"),
    totalSpent: t.expose("totalSpent", { type: "Cents" }),
    creditLimit: t.expose("creditLimit", { type: "Cents", nullable: true }),
    status: t.field({ type: SubAccountStatus, resolve: (state) => state.status }),
  }),
});

const SpendUpdateType = builder.objectRef<SpendUpdate>("SpendUpdate").implement({
  description: "One committed charge of a sub-account.",
  fields: (t) => ({
    subAccount: t.field({ type: SpendSubAccount, resolve: (update) => update.subAccount }),
    amount: t.expose("amount", { type: "Cents" }),
    messageId: t.exposeID("messageId"),
    teamBalance: t.expose("teamBalance", { type: "Cents", description: "The team balance right after this charge." }),
    remainingCredit: t.expose("remainingCredit", { type: "Cents", nullable: true, description: "Null without a credit limit." }),
    limitReached: t.exposeBoolean("limitReached"),
    chargedAt: t.field({ type: "DateTime", resolve: (update) => new Date(update.chargedAt) }),
    sequence: t.exposeInt("sequence", { description: "The sub-account's charge number: 1, 2, 3... with no gaps." }),
  }),
});

builder.subscriptionType({});

builder.subscriptionField("spendUpdated", (t) =>
  t.field({
    type: SpendUpdateType,
    description:
      "Every committed charge of the team's sub-accounts (main key: all, or the one named) or of the caller's own sub-account (sub-account key), in charge order per sub-account. Ends with an UNAUTHORIZED error when the key is revoked or its account suspended.",
    args: { subAccountId: t.arg.id() },
    subscribe: (_root, args, ctx) => ctx.services.spend.subscribe(ctx.actor, args.subAccountId == null ? null : String(args.subAccountId)),
    resolve: (item: SpendStreamItem) => {
      if (item.type !== "update") throw item.error;
      return item.update;
    },
  }),
);
