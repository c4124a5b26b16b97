/** The periods a budget renews over (README.md, "Budgets and alerts"): UTC days, weeks from Monday, calendar months. */
export const BUDGET_PERIODS = ["day", "week", "month"] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

const DAY_MS = 86_400_000;

/** The start (00:00 UTC) of the period that contains `at`. */
export function periodStart(period: BudgetPeriod, at: Date): Date {
  const day = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
  if (period === "day") return new Date(day);
  if (period === "month") return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  const sinceMonday = (new Date(day).getUTCDay() + 6) % 7; // Sunday is 0; Monday starts the week
  return new Date(day - sinceMonday * DAY_MS);
}

/** The start of the period after the one that starts at `start`. */
export function nextPeriodStart(period: BudgetPeriod, start: Date): Date {
  if (period === "day") return new Date(start.getTime() + DAY_MS);
  if (period === "week") return new Date(start.getTime() + 7 * DAY_MS);
  return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
}

/** The starts of every kind of period containing `at`: what the charge path picks from by the account's budget period. */
export function periodStarts(at: Date): Record<BudgetPeriod, Date> {
  return { day: periodStart("day", at), week: periodStart("week", at), month: periodStart("month", at) };
}

/** The UTC day of an instant, "YYYY-MM-DD": the key of the daily spend totals. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}
