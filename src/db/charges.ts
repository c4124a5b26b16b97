import { alertId, alertsOfCharge, type AlertKind } from "../domain/alerts.ts";
import type { GroupCommitStats } from "./groupCommit.ts";
import { assert } from "../domain/errors.ts";
import { centsToNumber } from "../domain/money.ts";
import type { Channel } from "../domain/channels.ts";
import { periodStarts, utcDay, type BudgetPeriod } from "../domain/periods.ts";
import type { SubAccountListing, SubAccountListingQuery } from "./subAccountListing.ts";

/** Everything the charge rule needs, decided before the transaction starts. */
export interface ChargeAttempt {
  teamId: string;
  accountId: string;
  apiKeyId: string;
  /** Cents, > 0 (test-mode messages are priced too but never charged). */
  cost: bigint;
  isTestMode: boolean;
  now: Date;
  /** The starts of the periods containing `now`: a budget's period rolls over inside the charge. */
  periods: Record<BudgetPeriod, Date>;
  /** The UTC day of `now`, "YYYY-MM-DD": the key of the daily spend totals. */
  day: string;
  ledgerEntryId: string;
  message: {
    id: string;
    to: string;
    channel: Channel;
    text: string;
    segments: number;
    idempotencyKey: string | null;
    /** JSON text or null. */
    metadata: string | null;
  };
}

/** The period starts and UTC day of a charge at `now`. */
export function chargeTime(now: Date): Pick<ChargeAttempt, "now" | "periods" | "day"> {
  return { now, periods: periodStarts(now), day: utcDay(now) };
}

/** An alert a charge raised, with its place in the team's gapless alert sequence. */
export interface RaisedAlert {
  id: string;
  sequence: number;
  kind: AlertKind;
  thresholdPercent: number | null;
  threshold: bigint;
  value: bigint;
}

/** An alert as the API shows it (REST, the spend.alert webhook's data; GraphQL adds nothing of its own). */
export function alertJson(charge: { accountId: string; accountKind: "main" | "sub"; messageId: string; chargedAt: Date }, alert: RaisedAlert) {
  return {
    id: alert.id,
    kind: alert.kind,
    subAccountId: charge.accountKind === "sub" ? charge.accountId : null,
    thresholdPercent: alert.thresholdPercent,
    threshold: centsToNumber(alert.threshold),
    value: centsToNumber(alert.value),
    messageId: charge.messageId,
    sequence: alert.sequence,
    createdAt: charge.chargedAt.toISOString(),
  };
}

/** A committed charge, as subscribers see it. */
export interface CommittedCharge {
  teamId: string;
  accountId: string;
  accountKind: "main" | "sub";
  messageId: string;
  amount: bigint;
  totalSpentAfter: bigint;
  creditLimit: bigint | null;
  balanceAfter: bigint;
  /** The budget's period spend after this charge, and the budget; null without one. */
  periodSpentAfter: bigint | null;
  budgetAmount: bigint | null;
  /** The account's gapless charge sequence number (1 for its first charge). */
  sequence: number;
  chargedAt: Date;
  /** The alerts this charge raised, in the order of the team's alert sequence. */
  alerts: RaisedAlert[];
}

export type RejectionCode = "credit_limit_exceeded" | "budget_exceeded" | "insufficient_balance" | "account_inactive";

export interface ChargeSnapshot {
  totalSpent: bigint;
  creditLimit: bigint | null;
  balance: bigint;
  /** The budget, and what its current period has spent (0 when the stored period has ended). */
  budget: { amount: bigint; period: BudgetPeriod; periodSpent: bigint; periodStart: Date } | null;
}

export type ChargeResult =
  /** The message is stored; `charge` is null for test mode (priced, not charged). */
  | { kind: "stored"; messageId: string; charge: CommittedCharge | null }
  /** The idempotency key was used before by this account: the original message, nothing charged. */
  | { kind: "duplicate"; messageId: string }
  | { kind: "rejected"; code: RejectionCode; snapshot: ChargeSnapshot };

/**
 * The charge rule (README.md, "Messages and charging"), atomic on its database: a live
 * message is stored and charged if and only if the account is active, within
 * its credit limit, and the team balance covers the cost; otherwise nothing
 * changes. `onCommitted` runs right after the commit, before any other charge
 * of this store can commit, so in-process events leave in commit order.
 */
export interface ChargeStore {
  /**
   * Settles once the charge's batch committed (src/db/groupCommit.ts): the charges that arrive while a batch
   * commits go together in the next, each decided in order and answered with its own outcome.
   */
  charge(attempt: ChargeAttempt, onCommitted: (charge: CommittedCharge) => void): Promise<ChargeResult>;
  /** How the charges were grouped so far (the metrics show it). */
  readonly chargeBatches: GroupCommitStats;
  /** Moves a message's delivery status forward only (queued, sent, delivered; or failed). */
  advanceMessageStatus(messageId: string, status: "sent" | "delivered" | "failed", at: Date): Promise<void>;
  /** Records that a key was used, at most once per `resolutionMs`. */
  touchApiKey(apiKeyId: string, at: Date, resolutionMs: number): Promise<void>;
  close(): Promise<void>;
}

/** An API key and the account it acts for, read in one statement (src/services/keyCache.ts keeps it a while). */
export interface KeyRecord {
  id: string;
  environment: string;
  revokedAt: Date | null;
  expiresAt: Date | null;
  /** As stored: a JSON list of scopes (src/domain/scopes.ts). */
  permissions: unknown;
  lastUsedAt: Date | null;
  account: { id: string; teamId: string; kind: string; status: string };
}

/** What a balance view needs: the team's balance and the account's spending. */
export interface AccountBalanceRecord {
  balance: bigint;
  currency: string;
  totalSpent: bigint;
  creditLimit: bigint | null;
  budgetAmount: bigint | null;
  budgetPeriod: string | null;
  periodStart: Date | null;
  periodSpent: bigint;
}

/**
 * Reads on every request's path, through the driver alone: Prisma's per-query
 * cost (milliseconds of CPU) would otherwise dominate a request (BENCHMARKS.md).
 */
export interface AccessReads {
  findKeyByHash(keyHash: string): Promise<KeyRecord | null>;
  readAccountBalance(accountId: string): Promise<AccountBalanceRecord | null>;
  /** The team, its sub-accounts' total and one page of them with their keys, in one statement (src/db/subAccountListing.ts). */
  listSubAccounts(query: SubAccountListingQuery): Promise<SubAccountListing>;
}

/** The store of the hot paths: the charge rule and the per-request reads. */
export type HotPathStore = ChargeStore & AccessReads;

/** What the charge rule's updates left: the account's and the team's values after the charge. */
export interface ValuesAfter {
  accountKind: "main" | "sub";
  totalSpent: bigint;
  creditLimit: bigint | null;
  balance: bigint;
  sequence: number;
  periodSpent: bigint | null;
  budgetAmount: bigint | null;
}

/** A committed charge as subscribers see it, asserting the invariants the charge rule guarantees. */
export function committedCharge(attempt: ChargeAttempt, after: ValuesAfter, alerts: RaisedAlert[]): CommittedCharge {
  assert(after.balance >= 0n, "team balance never negative");
  assert(after.creditLimit === null || after.totalSpent <= after.creditLimit, "totalSpent within creditLimit");
  assert(after.budgetAmount === null || (after.periodSpent !== null && after.periodSpent <= after.budgetAmount), "periodSpent within the budget");
  assert(after.sequence >= 1, "charge sequence numbers start at 1");
  return {
    teamId: attempt.teamId,
    accountId: attempt.accountId,
    accountKind: after.accountKind,
    messageId: attempt.message.id,
    amount: attempt.cost,
    totalSpentAfter: after.totalSpent,
    creditLimit: after.creditLimit,
    balanceAfter: after.balance,
    periodSpentAfter: after.budgetAmount === null ? null : after.periodSpent,
    budgetAmount: after.budgetAmount,
    sequence: after.sequence,
    chargedAt: attempt.now,
    alerts,
  };
}

/**
 * The alerts of one charge (src/domain/alerts.ts), numbered after the team's
 * `alertCount` before it: what the SQLite charge path writes in the charge's
 * transaction. The PostgreSQL function applies the same rule in SQL.
 */
export function alertsRaisedBy(
  attempt: ChargeAttempt,
  after: ValuesAfter & { thresholds: readonly number[] | null; lowBalanceThreshold: bigint | null },
  alertCountBefore: number,
): RaisedAlert[] {
  const crossings = alertsOfCharge({
    cost: attempt.cost,
    totalSpentAfter: after.totalSpent,
    creditLimit: after.creditLimit,
    periodSpentAfter: after.budgetAmount === null ? null : after.periodSpent,
    budgetAmount: after.budgetAmount,
    thresholds: after.thresholds,
    balanceAfter: after.balance,
    lowBalanceThreshold: after.lowBalanceThreshold,
    isSubAccount: after.accountKind === "sub",
  });
  return crossings.map((crossing, index) => ({ id: alertId(attempt.message.id, crossing), sequence: alertCountBefore + index + 1, ...crossing }));
}

/** An account and its team as the charge rule sees them (rejections explain themselves from it). */
export interface AccountState {
  balance: bigint;
  currency: string;
  totalSpent: bigint;
  creditLimit: bigint | null;
  status: string;
  budgetAmount: bigint | null;
  budgetPeriod: string | null;
  periodStart: Date | null;
  periodSpent: bigint;
}

/** What an account has spent in its budget's current period: nothing when the stored period has ended. */
export function currentPeriodSpent(state: Pick<AccountState, "budgetPeriod" | "periodStart" | "periodSpent">, periods: Record<BudgetPeriod, Date>): bigint {
  const current = periods[(state.budgetPeriod ?? "month") as BudgetPeriod];
  return state.periodStart && state.periodStart.getTime() >= current.getTime() ? state.periodSpent : 0n;
}

export function snapshotOf(state: AccountState, periods: Record<BudgetPeriod, Date>): ChargeSnapshot {
  const period = (state.budgetPeriod ?? "month") as BudgetPeriod;
  return {
    totalSpent: state.totalSpent,
    creditLimit: state.creditLimit,
    balance: state.balance,
    budget: state.budgetAmount === null ? null : { amount: state.budgetAmount, period, periodSpent: currentPeriodSpent(state, periods), periodStart: periods[period] },
  };
}

/**
 * Why the account's conditional update matched no row, in the order the rule
 * states its conditions: inactive, then the credit limit, then the budget. The
 * one definition of a refusal's code for both databases.
 */
export function accountRefusal(state: AccountState | undefined, attempt: ChargeAttempt): RejectionCode {
  if (!state || state.status !== "active") return "account_inactive";
  if (state.creditLimit !== null && state.totalSpent + attempt.cost > state.creditLimit) return "credit_limit_exceeded";
  if (state.budgetAmount !== null && currentPeriodSpent(state, attempt.periods) + attempt.cost > state.budgetAmount) return "budget_exceeded";
  // Changed since (a limit raised): the refusal stands, explained by the limit it met.
  return "credit_limit_exceeded";
}

export class ChargeRejected extends Error {
  constructor(readonly code: RejectionCode) {
    super(code);
  }
}

export class DuplicateIdempotencyKey extends Error {
  constructor(readonly messageId: string) {
    super("duplicate idempotency key");
  }
}
