import type { BudgetView } from "../../services/budgets.ts";
import { builder } from "../builder.ts";

export const BudgetPeriod = builder.enumType("BudgetPeriod", {
  values: {
    DAY: { value: "day", description: "A UTC day." },
    WEEK: { value: "week", description: "From Monday 00:00 UTC." },
    MONTH: { value: "month", description: "From the 1st, 00:00 UTC." },
  } as const,
});

export const Budget = builder.objectRef<BudgetView>("Budget").implement({
  description: "A spending cap that renews each period; the charge rule refuses a charge that would take the period past it (budget_exceeded).",
  fields: (t) => ({
    amount: t.expose("amount", { type: "Cents" }),
    period: t.field({ type: BudgetPeriod, resolve: (budget) => budget.period }),
    spent: t.expose("spent", { type: "Cents", description: "Charged in the current period." }),
    periodStart: t.expose("periodStart", { type: "DateTime" }),
    resetsAt: t.expose("resetsAt", { type: "DateTime", description: "When the next period starts." }),
    remaining: t.expose("remaining", { type: "Cents", description: "amount - spent, never below 0." }),
  }),
});

export const BudgetInput = builder.inputType("BudgetInput", {
  fields: (t) => ({
    amount: t.field({ type: "Cents", required: true, description: "Cents per period, at least 1." }),
    period: t.field({ type: BudgetPeriod, required: true }),
  }),
});
