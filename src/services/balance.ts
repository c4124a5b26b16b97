import { notFound } from "../domain/errors.ts";
import type { AccountsService } from "./accounts.ts";
import { budgetView, type BudgetColumns, type BudgetView } from "./budgets.ts";
import { authorize } from "./auth.ts";
import type { Actor, ServiceDeps } from "./deps.ts";

export interface BalanceView {
  /** The team's shared balance, cents. */
  balance: bigint;
  currency: string;
  isSubAccount: boolean;
  totalSpent: bigint | null;
  creditLimit: bigint | null;
  /** creditLimit - totalSpent, never below 0; null without a limit or for the main account. */
  remainingCredit: bigint | null;
  /** The sub-account's budget as of now; null without one or for the main account. */
  budget: BudgetView | null;
}

export function mainBalanceView(team: { balance: bigint; currency: string }): BalanceView {
  return { balance: team.balance, currency: team.currency, isSubAccount: false, totalSpent: null, creditLimit: null, remainingCredit: null, budget: null };
}

export function subAccountBalanceView(
  team: { balance: bigint; currency: string },
  account: { totalSpent: bigint; creditLimit: bigint | null } & BudgetColumns,
  now: Date,
): BalanceView {
  const remaining = account.creditLimit === null ? null : account.creditLimit - account.totalSpent;
  return {
    balance: team.balance,
    currency: team.currency,
    isSubAccount: true,
    totalSpent: account.totalSpent,
    creditLimit: account.creditLimit,
    remainingCredit: remaining === null ? null : remaining > 0n ? remaining : 0n,
    budget: budgetView(account, now),
  };
}

/** The account columns a sub-account's balance view reads. */
const BALANCE_COLUMNS = { totalSpent: true, creditLimit: true, budgetAmount: true, budgetPeriod: true, periodStart: true, periodSpent: true } as const;

const accountBalanceSelect = { ...BALANCE_COLUMNS, team: { select: { balance: true, currency: true } } } as const;

export function createBalanceService(deps: ServiceDeps, accounts: AccountsService) {
  const { prisma } = deps;
  return {
    /** The caller's own view: the team for a main key, the team plus its own spending for a sub-account key. */
    async forActor(actorOrNull: Actor | null): Promise<BalanceView> {
      const actor = authorize(actorOrNull, "balance:read");
      const row = await deps.store.readAccountBalance(actor.accountId);
      // Authentication just found this account active; only a purge racing this request removes it.
      if (!row) throw notFound("Account", actor.accountId);
      return actor.kind === "main" ? mainBalanceView(row) : subAccountBalanceView(row, row, deps.clock.now());
    },

    /** A main key reading one of its sub-accounts' views. */
    async forSubAccount(actorOrNull: Actor | null, id: string): Promise<BalanceView> {
      const actor = authorize(actorOrNull, "sub_accounts:read");
      const account = await prisma.account.findUnique({ where: accounts.subAccountWhere(actor, id), select: accountBalanceSelect });
      if (!account) throw notFound("Sub-account", id);
      return subAccountBalanceView(account.team, account, deps.clock.now());
    },
  };
}
