import type { SpendAlertEvent } from "../../events/types.ts";
import { builder } from "../builder.ts";
import { connectionOf } from "../connections.ts";
import { streamOf, valueOf, type StreamItem } from "../streams.ts";
import { SubAccount } from "./subAccount.ts";

export const SpendAlertKind = builder.enumType("SpendAlertKind", {
  values: {
    CREDIT_LIMIT: { value: "credit_limit", description: "totalSpent crossed a threshold of the credit limit." },
    BUDGET: { value: "budget", description: "The budget period's spend crossed a threshold of the budget (once per period)." },
    LOW_BALANCE: { value: "low_balance", description: "The team balance fell below the team's lowBalanceThreshold." },
  } as const,
});

export const SpendAlert = builder.objectRef<SpendAlertEvent>("SpendAlert").implement({
  description: "A threshold crossed by a charge: raised exactly once per crossing, inside the charge's transaction.",
  fields: (t) => ({
    id: t.exposeID("id"),
    kind: t.field({ type: SpendAlertKind, resolve: (alert) => alert.kind }),
    subAccount: t.field({
      type: SubAccount,
      nullable: true,
      description: "The sub-account whose charge crossed it; null for the main account's (or once purged).",
      resolve: async (alert, _args, ctx) => {
        if (alert.subAccountId === null) return null;
        const row = await ctx.loaders.accountById.load(alert.subAccountId);
        return row && row.teamId === alert.teamId ? row : null;
      },
    }),
    subAccountId: t.id({ nullable: true, resolve: (alert) => alert.subAccountId }),
    thresholdPercent: t.exposeInt("thresholdPercent", { nullable: true, description: "Of the credit limit or budget; null for LOW_BALANCE." }),
    threshold: t.expose("threshold", { type: "Cents", description: "The amount the threshold stands at (for LOW_BALANCE, the threshold itself)." }),
    value: t.expose("value", { type: "Cents", description: "The spend (or balance, for LOW_BALANCE) the charge left." }),
    messageId: t.exposeID("messageId"),
    sequence: t.exposeInt("sequence", { description: "The team's alert number: 1, 2, 3... with no gaps (spendAlertRaised resumes after it)." }),
    createdAt: t.field({ type: "DateTime", resolve: (alert) => new Date(alert.createdAt) }),
  }),
});

const SpendAlertConnection = builder.connectionObject({ type: SpendAlert, name: "QuerySpendAlertsConnection" }, { name: "QuerySpendAlertsConnectionEdge" });

builder.queryFields((t) => ({
  spendAlerts: t.field({
    type: SpendAlertConnection,
    description: "The caller's spend alerts, newest first (scope spend:read): a main key's team or one sub-account; a sub-account key its own. `first` is 1 to 100 (default 20).",
    args: { first: t.arg.int(), after: t.arg.string(), subAccountId: t.arg.id(), kind: t.arg({ type: SpendAlertKind }) },
    resolve: async (_root, args, ctx) =>
      connectionOf(await ctx.services.alerts.list(ctx.actor, { ...args, subAccountId: args.subAccountId == null ? args.subAccountId : String(args.subAccountId) })),
  }),
}));

builder.subscriptionField("spendAlertRaised", (t) =>
  t.field({
    type: SpendAlert,
    description:
      "Every spend alert as it is raised (scope spend:read): a main key's team or one sub-account; a sub-account key its own. None missed and none twice; resumable with afterSequence (the team's alert sequence).",
    args: { subAccountId: t.arg.id(), afterSequence: t.arg.int({ description: "Replay the alerts after this team alert sequence first, then continue live." }) },
    subscribe: async (_root, args, ctx) =>
      streamOf(await ctx.services.alerts.watch(ctx.actor, { subAccountId: args.subAccountId == null ? null : String(args.subAccountId), afterSequence: args.afterSequence })),
    resolve: (item: StreamItem<SpendAlertEvent>) => valueOf(item),
  }),
);
