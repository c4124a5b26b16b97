import { h, setText } from "../dom.ts";
import { formatCents, percentOf } from "../format.ts";
import type { Budget, BudgetPeriod, SubAccount } from "../state.ts";
import type { PanelFactory, View } from "./panel.ts";

/** One bar of a row: a label, the figures in words, and a progress bar carrying the same words. */
interface Meter {
  element: HTMLElement;
  text: HTMLElement;
  bar: HTMLElement;
  fill: HTMLElement;
}

interface Row {
  item: HTMLLIElement;
  name: HTMLElement;
  status: HTMLElement;
  credit: Meter;
  budget: Meter;
}

function createMeter(kind: "credit" | "budget", label: string, textClass: string): Meter {
  const text = h("span", { class: textClass });
  const fill = h("div", { class: "bar-fill" });
  const bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, fill);
  const element = h("div", { class: `meter meter-${kind}` }, h("span", { class: "meter-label" }, label), text, bar);
  return { element, text, bar, fill };
}

function createRow(account: SubAccount): Row {
  const name = h("span", { class: "account-name" });
  const status = h("span", { class: "badge", hidden: true });
  const credit = createMeter("credit", "Credit limit", "account-spent");
  const budget = createMeter("budget", "Budget", "budget-spent");
  const item = h("li", { class: "account", "data-id": account.id }, h("div", { class: "account-head" }, name, status), h("div", { class: "meters" }, credit.element, budget.element));
  return { item, name, status, credit, budget };
}

function creditWords(account: SubAccount, currency: string): { text: string; percent: number | null } {
  const total = formatCents(account.totalSpent, currency);
  if (account.creditLimit === null) return { text: `${total} spent · no limit`, percent: null };
  const percent = percentOf(account.totalSpent, account.creditLimit);
  const reached = account.totalSpent >= account.creditLimit ? " · limit reached" : "";
  return { text: `${total} of ${formatCents(account.creditLimit, currency)} (${percent}%)${reached}`, percent };
}

const PERIOD_WORDS: Record<BudgetPeriod, string> = { DAY: "today", WEEK: "this week", MONTH: "this month" };

function budgetWords(budget: Budget | null, currency: string): { text: string; percent: number | null } {
  if (budget === null) return { text: "No budget", percent: null };
  const percent = percentOf(budget.spent, budget.amount);
  const reached = budget.remaining === 0 ? " · budget reached" : "";
  const text = `${formatCents(budget.spent, currency)} of ${formatCents(budget.amount, currency)} ${PERIOD_WORDS[budget.period]} (${percent}%)${reached} · renews ${budget.resetsAt.slice(0, 10)}`;
  return { text, percent };
}

function updateMeter(meter: Meter, words: { text: string; percent: number | null }, label: string, full: boolean): void {
  setText(meter.text, words.text);
  meter.bar.hidden = words.percent === null;
  meter.element.classList.toggle("is-full", full);
  meter.element.classList.toggle("is-near", !full && words.percent !== null && words.percent >= 80);
  if (words.percent === null) return;
  meter.fill.style.setProperty("width", `${words.percent}%`);
  meter.bar.setAttribute("aria-valuenow", String(words.percent));
  meter.bar.setAttribute("aria-valuetext", words.text);
  meter.bar.setAttribute("aria-label", label);
}

function updateRow(row: Row, account: SubAccount, currency: string): void {
  setText(row.name, account.name);
  row.status.hidden = account.status === "ACTIVE";
  setText(row.status, "inactive");
  const creditFull = account.creditLimit !== null && account.totalSpent >= account.creditLimit;
  const credit = creditWords(account, currency);
  updateMeter(row.credit, credit, `${account.name}: credit limit used`, creditFull);
  const period = account.budget ? ` ${PERIOD_WORDS[account.budget.period]}` : "";
  updateMeter(row.budget, budgetWords(account.budget, currency), `${account.name}: budget used${period}`, account.budget?.remaining === 0);
  row.item.classList.toggle("is-full", creditFull);
  row.item.classList.toggle("is-near", !creditFull && credit.percent !== null && credit.percent >= 80);
}

/** Every sub-account: what it has spent against its credit limit and against its budget, as bars that move with each charge. */
export const subAccountsPanel: PanelFactory = (container) => {
  const count = h("span", { class: "count" });
  const list = h("ul", { class: "accounts", id: "accounts" });
  const empty = h("p", { class: "empty" }, "No sub-accounts yet. Create one with createSubAccount, or POST /v1/sub-accounts.");
  container.append(h("section", { class: "panel panel-accounts", "aria-labelledby": "accounts-title" }, h("h2", { id: "accounts-title" }, "Sub-accounts ", count), empty, list));
  const rows = new Map<string, Row>();

  function upsert(account: SubAccount, currency: string): Row {
    let row = rows.get(account.id);
    if (!row) {
      row = createRow(account);
      rows.set(account.id, row);
    }
    updateRow(row, account, currency);
    return row;
  }

  return {
    render({ state }: View) {
      const seen = new Set<string>();
      for (const account of state.subAccounts) {
        const row = upsert(account, state.team.currency);
        seen.add(account.id);
        list.append(row.item); // in the API's order; an existing row keeps its element (and focus)
      }
      for (const [id, row] of rows) if (!seen.has(id)) (row.item.remove(), rows.delete(id));
      setText(count, `(${state.subAccounts.length})`);
      empty.hidden = state.subAccounts.length > 0;
    },
    onSpend({ subAccount }, { state }) {
      upsert(subAccount, state.team.currency);
    },
  };
};
