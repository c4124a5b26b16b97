/**
 * The dashboard's state, built from the public GraphQL API only: the
 * `DashboardState` query's pages, then `DashboardSpend` events applied one by
 * one. Pure functions, no DOM: the panels render what these return.
 *
 * Every figure of a sub-account is as of its `chargeSequence` (the gapless
 * number of its latest charge): a charge event is applied only when it is
 * newer than the row, and a row fetched again replaces the figures only when
 * it is not older than what the page already shows. So events and fetches may
 * arrive in any order, a charge is never counted twice, and a resumed
 * subscription may replay charges the page already has.
 */

export interface Team {
  id: string;
  name: string;
  balance: number;
  currency: string;
  /** Present once the schema has them (src/graphql/dashboardDocuments.ts). */
  lowBalance?: boolean;
  /** Cents, or null for none. */
  lowBalanceThreshold?: number | null;
}

export type BudgetPeriod = "DAY" | "WEEK" | "MONTH";

export interface Budget {
  amount: number;
  period: BudgetPeriod;
  /** Charged in the current period. */
  spent: number;
  remaining: number;
  periodStart: string;
  resetsAt: string;
}

export interface SubAccount {
  id: string;
  name: string;
  externalId: string | null;
  status: "ACTIVE" | "INACTIVE";
  totalSpent: number;
  creditLimit: number | null;
  /** The sequence of the latest charge these figures include (0 before the first). */
  chargeSequence: number;
  budget: Budget | null;
}

export interface SpendUpdate {
  subAccount: { id: string; totalSpent: number; creditLimit: number | null; status: "ACTIVE" | "INACTIVE" };
  amount: number;
  messageId: string;
  teamBalance: number;
  remainingCredit: number | null;
  limitReached: boolean;
  chargedAt: string;
  sequence: number;
  /** What the budget's period has left after this charge; null without a budget. */
  budgetRemaining: number | null;
}

export type AlertKind = "LOW_BALANCE" | "CREDIT_LIMIT" | "BUDGET";

export interface SpendAlert {
  id: string;
  kind: AlertKind;
  /** The team's gapless alert number. */
  sequence: number;
  subAccountId: string | null;
  subAccount: { id: string; name: string } | null;
  thresholdPercent: number | null;
  threshold: number;
  value: number;
  messageId: string;
  createdAt: string;
}

export interface DashboardState {
  /** The main account (whose own charges have no live event). */
  accountId: string;
  team: Team;
  /** When the charge whose `teamBalance` is shown was made; null: the balance is the one fetched. */
  balanceAt: string | null;
  /** In the API's order. */
  subAccounts: SubAccount[];
}

export interface StatePage {
  viewer: { account: { id: string; isSubAccount: boolean }; team: Team };
  subAccounts: {
    totalCount: number;
    edges: { node: SubAccount }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

export function stateFromPages(pages: StatePage[]): DashboardState {
  const first = pages[0];
  if (!first) throw new Error("no page");
  const subAccounts = pages.flatMap((page) => page.subAccounts.edges.map((edge) => edge.node));
  return { accountId: first.viewer.account.id, team: first.viewer.team, balanceAt: null, subAccounts };
}

/** Low balance: the team has a threshold and its balance is below it (Team.lowBalance, kept as the balance moves). */
export function isLowBalance(team: Team): boolean {
  return typeof team.lowBalanceThreshold === "number" && team.balance < team.lowBalanceThreshold;
}

/**
 * A fetched budget and the page's newer figures of the same period: the
 * budget as fetched (its amount may have changed), with what was spent as the
 * page knows it.
 */
function mergeBudget(fetched: Budget | null, current: Budget | null): Budget | null {
  if (!fetched || !current || fetched.periodStart !== current.periodStart) return fetched;
  return { ...fetched, spent: current.spent, remaining: Math.max(0, fetched.amount - current.spent) };
}

/** A row fetched again: its settings as fetched; its figures as fetched unless the page already has newer ones. */
function mergeRow(fetched: SubAccount, current: SubAccount | undefined): SubAccount {
  if (!current || fetched.chargeSequence >= current.chargeSequence) return fetched;
  return { ...fetched, totalSpent: current.totalSpent, chargeSequence: current.chargeSequence, budget: mergeBudget(fetched.budget, current.budget) };
}

/**
 * The state fetched again, merged into the one shown: rows by their charge
 * sequence (see mergeRow); the team balance as fetched, unless the page has
 * applied a charge the fetch did not include (then its balance is the newer).
 */
export function mergeState(current: DashboardState | null, fetched: DashboardState): DashboardState {
  if (!current) return fetched;
  const byId = new Map(current.subAccounts.map((account) => [account.id, account]));
  const subAccounts = fetched.subAccounts.map((account) => mergeRow(account, byId.get(account.id)));
  const pageIsNewer = subAccounts.some((account, index) => account.chargeSequence > fetched.subAccounts[index]!.chargeSequence);
  if (!pageIsNewer) return fetched;
  const team = { ...fetched.team, balance: current.team.balance };
  return { ...fetched, subAccounts, team: { ...team, lowBalance: isLowBalance(team) }, balanceAt: current.balanceAt };
}

/**
 * A budget after one charge. `reread`: the page cannot know it from the event
 * alone (a new period began, or the budget was set, changed or removed since
 * it was fetched): the sub-account is to be fetched again.
 */
export function budgetAfter(budget: Budget | null, update: SpendUpdate): { budget: Budget | null; reread: boolean } {
  if (update.budgetRemaining === null) return { budget: null, reread: budget !== null };
  if (budget === null) return { budget, reread: true };
  const newPeriod = update.chargedAt >= budget.resetsAt;
  const spent = (newPeriod ? 0 : budget.spent) + update.amount;
  const next = { ...budget, spent, remaining: update.budgetRemaining };
  return { budget: next, reread: newPeriod || Math.max(0, budget.amount - spent) !== update.budgetRemaining };
}

export interface Applied {
  state: DashboardState;
  /** The state has the sub-account (false: created since it was fetched; fetch again). */
  known: boolean;
  /** The sub-account as it is now, when known. */
  subAccount?: SubAccount;
  /** The row already included this charge (a replay after a reconnect, or a fetch that was newer). */
  alreadyShown: boolean;
  /** The row needs fetching again (see budgetAfter). */
  reread: boolean;
}

/** The team balance after a charge: the balance of the latest charge applied (charges of two sub-accounts may arrive in either order). */
function teamAfter(state: DashboardState, update: SpendUpdate): Pick<DashboardState, "team" | "balanceAt"> {
  if (state.balanceAt !== null && update.chargedAt < state.balanceAt) return state;
  const team = { ...state.team, balance: update.teamBalance };
  return { team: { ...team, lowBalance: isLowBalance(team) }, balanceAt: update.chargedAt };
}

/** One charge applied to the state, if the state does not include it yet. */
export function applySpend(state: DashboardState, update: SpendUpdate): Applied {
  const index = state.subAccounts.findIndex((account) => account.id === update.subAccount.id);
  if (index < 0) return { state: { ...state, ...teamAfter(state, update) }, known: false, alreadyShown: false, reread: false };
  const current = state.subAccounts[index]!;
  if (update.sequence <= current.chargeSequence) return { state, known: true, subAccount: current, alreadyShown: true, reread: false };
  const { budget, reread } = budgetAfter(current.budget, update);
  const subAccount: SubAccount = {
    ...current,
    totalSpent: update.subAccount.totalSpent,
    creditLimit: update.subAccount.creditLimit,
    status: update.subAccount.status,
    chargeSequence: update.sequence,
    budget,
  };
  const subAccounts = state.subAccounts.slice();
  subAccounts[index] = subAccount;
  return { state: { ...state, ...teamAfter(state, update), subAccounts }, known: true, subAccount, alreadyShown: false, reread };
}

/** The earliest moment a budget shown renews (its figures then start again from 0): the page fetches again then. */
export function nextBudgetReset(state: DashboardState): string | null {
  let earliest: string | null = null;
  for (const account of state.subAccounts) {
    const at = account.budget?.resetsAt;
    if (at && (earliest === null || at < earliest)) earliest = at;
  }
  return earliest;
}
