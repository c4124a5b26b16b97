import type { BalanceView } from "../../services/balance.ts";
import { builder } from "../builder.ts";
import { Budget } from "./budget.ts";

export const Balance = builder.objectRef<BalanceView>("Balance").implement({
  description:
    "A balance as an account sees it: the team's shared balance, plus, for a sub-account, its own spending and cap.",
  fields: (t) => ({
    balance: t.expose("balance", { type: "Cents", description: "The team's shared balance, in cents." }),
    currency: t.exposeString("currency"),
    isSubAccount: t.exposeBoolean("isSubAccount"),
    totalSpent: t.expose("totalSpent", { type: "Cents", nullable: true, description: "Sub-accounts only." }),
    creditLimit: t.expose("creditLimit", { type: "Cents", nullable: true, description: "Sub-accounts only; null means no limit." }),
    remainingCredit: t.expose("remainingCredit", {
      type: "Cents",
      nullable: true,
      description: "creditLimit - totalSpent (never below 0); null without a limit.",
    }),
    budget: t.field({ type: Budget, nullable: true, description: "Sub-accounts only: its budget as of now; null without one.", resolve: (view) => view.budget }),
  }),
});

builder.queryFields((t) => ({
  balance: t.field({
    type: Balance,
    description: "The caller's balance: the team's for a main key; with totalSpent and creditLimit for a sub-account key.",
    resolve: (_root, _args, ctx) => ctx.services.balance.forActor(ctx.actor),
  }),
  subAccountBalance: t.field({
    type: Balance,
    description: "A sub-account's balance view, as its own key would see it (main key only).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.balance.forSubAccount(ctx.actor, String(args.id)),
  }),
}));
