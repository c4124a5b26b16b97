/**
 * When a charge raises a spend alert (README.md, "Budgets and alerts"): a
 * threshold T% of a limit L is crossed when `before < L*T/100 <= after`, so
 * 100% fires when the limit is exactly reached; the team's low-balance
 * threshold B is crossed when `before >= B > after`. Decided from the values
 * before and after one charge, inside its transaction: exactly once per
 * crossing, whatever the number of instances, retries or replays. The SQLite
 * charge path calls this; prisma/postgresql/functions.sql holds the same rule
 * in SQL, and the tests recompute every alert from the ledger with this one.
 */

export const ALERT_KINDS = ["credit_limit", "budget", "low_balance"] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const DEFAULT_ALERT_THRESHOLDS: readonly number[] = [80, 100];
export const ALERT_THRESHOLDS_MAX = 5;

export interface Crossing {
  kind: AlertKind;
  /** Of the credit limit or budget; null for low_balance. */
  thresholdPercent: number | null;
  /** Cents: the smallest amount at which the threshold is reached (for low_balance, the threshold itself). */
  threshold: bigint;
  /** Cents: the spend (or balance) the charge left. */
  value: bigint;
}

/** The percentages of `limit` that one step from `before` to `after` crosses, ascending. */
export function crossedPercents(before: bigint, after: bigint, limit: bigint, percents: readonly number[]): number[] {
  return [...percents].sort((a, b) => a - b).filter((percent) => before * 100n < limit * BigInt(percent) && limit * BigInt(percent) <= after * 100n);
}

/** ceil(limit * percent / 100): the cents at which `percent` of `limit` is reached. */
function thresholdCents(limit: bigint, percent: number): bigint {
  return (limit * BigInt(percent) + 99n) / 100n;
}

export interface ChargeValues {
  cost: bigint;
  totalSpentAfter: bigint;
  creditLimit: bigint | null;
  /** The budget period's spend after the charge; null without a budget. */
  periodSpentAfter: bigint | null;
  budgetAmount: bigint | null;
  /** The account's alert thresholds; null for the defaults. */
  thresholds: readonly number[] | null;
  balanceAfter: bigint;
  lowBalanceThreshold: bigint | null;
  /** Credit limits and budgets are sub-accounts'; the main account crosses only the low balance. */
  isSubAccount: boolean;
}

/** Every alert one charge raises, in a fixed order: credit limit, budget (ascending thresholds), low balance. */
export function alertsOfCharge(charge: ChargeValues): Crossing[] {
  const percents = charge.thresholds ?? DEFAULT_ALERT_THRESHOLDS;
  const crossings: Crossing[] = [];
  const limits: [AlertKind, bigint | null, bigint | null][] = charge.isSubAccount
    ? [["credit_limit", charge.creditLimit, charge.totalSpentAfter], ["budget", charge.budgetAmount, charge.periodSpentAfter]]
    : [];
  for (const [kind, limit, after] of limits) {
    if (limit === null || after === null || limit <= 0n) continue;
    for (const percent of crossedPercents(after - charge.cost, after, limit, percents)) {
      crossings.push({ kind, thresholdPercent: percent, threshold: thresholdCents(limit, percent), value: after });
    }
  }
  const low = charge.lowBalanceThreshold;
  if (low !== null && charge.balanceAfter + charge.cost >= low && charge.balanceAfter < low) {
    crossings.push({ kind: "low_balance", thresholdPercent: null, threshold: low, value: charge.balanceAfter });
  }
  return crossings;
}

/** An alert's id, derived from the charge that raised it: the same on every instance and every replay. */
export function alertId(messageId: string, crossing: Pick<Crossing, "kind" | "thresholdPercent">): string {
  return `al_${messageId}_${crossing.kind === "low_balance" ? "lb" : `${crossing.kind === "credit_limit" ? "cl" : "bu"}${crossing.thresholdPercent}`}`;
}
