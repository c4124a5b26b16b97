import { z } from "zod";
import { ALERT_THRESHOLDS_MAX } from "../domain/alerts.ts";
import { centsToNumber, MAX_CENTS } from "../domain/money.ts";
import { BUDGET_PERIODS, nextPeriodStart, periodStart, utcDay, type BudgetPeriod } from "../domain/periods.ts";
import type { Prisma } from "../generated/sqlite/client.ts";

/** A budget as given by create and update: `null` removes it. */
export const budgetInput = z
  .object({
    amount: z
      .number({ invalid_type_error: "must be an integer number of cents" })
      .int("must be an integer number of cents")
      .min(1, "must be at least 1 cent; send budget: null to remove the budget")
      .max(Number(MAX_CENTS), `must be at most ${MAX_CENTS}`),
    period: z.enum(BUDGET_PERIODS, { errorMap: () => ({ message: `must be one of ${BUDGET_PERIODS.join(", ")}` }) }),
  })
  .strict();

/** Percentages of the credit limit and of the budget whose crossing raises an alert; `null` restores [80, 100]. */
export const alertThresholdsInput = z
  .array(z.number().int("must be whole percentages").min(1, "must be 1 to 100").max(100, "must be 1 to 100"))
  .min(1, "must list at least one percentage; send null for the defaults (80 and 100)")
  .max(ALERT_THRESHOLDS_MAX, `must list at most ${ALERT_THRESHOLDS_MAX} percentages`)
  .transform((percents) => [...new Set(percents)].sort((a, b) => a - b));

/** The account's budget columns. */
export interface BudgetColumns {
  budgetAmount: bigint | null;
  budgetPeriod: string | null;
  periodStart: Date | null;
  periodSpent: bigint;
}

/** What the API shows of a budget (SubAccount.budget, Balance.budget), as of `now`. */
export interface BudgetView {
  amount: bigint;
  period: BudgetPeriod;
  /** Spent in the current period (0 when the stored period has ended: it renews without a timer). */
  spent: bigint;
  periodStart: Date;
  resetsAt: Date;
  remaining: bigint;
}

export function budgetView(account: BudgetColumns, now: Date): BudgetView | null {
  if (account.budgetAmount === null || account.budgetPeriod === null) return null;
  const period = account.budgetPeriod as BudgetPeriod;
  const start = periodStart(period, now);
  const spent = account.periodStart && account.periodStart.getTime() >= start.getTime() ? account.periodSpent : 0n;
  const remaining = account.budgetAmount - spent;
  return { amount: account.budgetAmount, period, spent, periodStart: start, resetsAt: nextPeriodStart(period, start), remaining: remaining > 0n ? remaining : 0n };
}

/** A budget for the audit log: `{ amount, period }` in cents, or null. */
export function auditedBudget(account: Pick<BudgetColumns, "budgetAmount" | "budgetPeriod">) {
  return account.budgetAmount === null ? null : { amount: centsToNumber(account.budgetAmount), period: account.budgetPeriod };
}

/**
 * The budget columns a create or update writes. A new budget, or a new period,
 * starts counting from what the account was already charged in the current
 * period (its daily totals: periods start on UTC days), so setting a budget
 * mid-month does not forget the month's spend. The same period with another
 * amount keeps counting as it was.
 */
export async function budgetColumnsFor(
  tx: Prisma.TransactionClient,
  /** Null for an account being created: it has spent nothing yet. */
  accountId: string | null,
  budget: z.output<typeof budgetInput> | null,
  current: Pick<BudgetColumns, "budgetPeriod"> | null,
  now: Date,
): Promise<Partial<BudgetColumns>> {
  if (budget === null) return { budgetAmount: null, budgetPeriod: null, periodStart: null, periodSpent: 0n };
  if (current?.budgetPeriod === budget.period) return { budgetAmount: BigInt(budget.amount) };
  const start = periodStart(budget.period, now);
  const spent = accountId === null ? null : await tx.spendDaily.aggregate({ where: { accountId, day: { gte: utcDay(start) } }, _sum: { amount: true } });
  return { budgetAmount: BigInt(budget.amount), budgetPeriod: budget.period, periodStart: start, periodSpent: spent?._sum.amount ?? 0n };
}
