import type { SpendUpdate } from "../../events/types.ts";
import { builder } from "../builder.ts";
import { RESUME_MAX } from "../../services/spend/index.ts";
import { streamOf, valueOf, type StreamItem } from "../streams.ts";
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
    budgetRemaining: t.expose("budgetRemaining", { type: "Cents", nullable: true, description: "What the budget's current period has left after this charge; null without a budget." }),
  }),
});

const SpendCursorInput = builder.inputType("SpendCursorInput", {
  description: "Where a team-wide spendUpdated resumes for one sub-account.",
  fields: (t) => ({
    subAccountId: t.id({ required: true }),
    afterSequence: t.int({ required: true, description: "The last sequence received for this sub-account (or its chargeSequence when first subscribing)." }),
  }),
});

builder.subscriptionType({});

builder.subscriptionField("spendUpdated", (t) =>
  t.field({
    type: SpendUpdateType,
    description:
      "Every committed charge of the team's sub-accounts (main key: all, or the one named) or of the caller's own sub-account (sub-account key), in charge order per sub-account, none missed and none twice (a charge whose event was lost is read from the ledger within about a second). Resumable after a disconnect with afterSequence or after. Ends with an unauthorized error when the key is revoked or its account suspended.",
    args: {
      subAccountId: t.arg.id(),
      afterSequence: t.arg.int({
        description: `With subAccountId: first replay that sub-account's charges after this sequence (at most ${RESUME_MAX}), then continue live, with no gap and no duplicate.`,
      }),
      after: t.arg({
        type: [SpendCursorInput],
        description:
          "For the whole team: replay each listed sub-account's charges after its sequence, then continue live. Sub-accounts not listed start live; to resume the whole team after a disconnect, list every sub-account (its last sequence received, or the chargeSequence read before subscribing the first time).",
      }),
    },
    subscribe: async (_root, args, ctx) =>
      streamOf(
        await ctx.services.spend.watch(ctx.actor, {
          subAccountId: args.subAccountId == null ? null : String(args.subAccountId),
          afterSequence: args.afterSequence,
          after: args.after?.map((cursor) => ({ subAccountId: String(cursor.subAccountId), afterSequence: cursor.afterSequence })),
        }),
      ),
    resolve: (item: StreamItem<SpendUpdate>) => valueOf(item),
  }),
);
