import { chartTotal, type SpendChart } from "../chart.ts";
import { h, setText } from "../dom.ts";
import { formatCents } from "../format.ts";
import type { PanelFactory } from "./panel.ts";

/** "Nov 30" for a UTC day YYYY-MM-DD, in the browser's language. */
function shortDay(day: string): string {
  return new Date(`${day}T00:00:00.000Z`).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
}

interface Column {
  bar: HTMLElement;
  cells: { messages: HTMLElement; amount: HTMLElement };
}

/** The bars (hidden from assistive technology) and the table that says the same in words. */
function createColumns(count: number, bars: HTMLElement, body: HTMLElement): Column[] {
  return Array.from({ length: count }, () => {
    const bar = h("div", { class: "chart-bar" });
    bars.append(h("div", { class: "chart-col" }, bar));
    const day = h("th", { scope: "row" });
    const messages = h("td", { class: "num" });
    const amount = h("td", { class: "num" });
    body.append(h("tr", {}, day, messages, amount));
    return { bar, cells: { messages, amount } };
  });
}

function summaryOf(chart: SpendChart, currency: string): string {
  const today = chart.days[chart.days.length - 1]!;
  const peak = chart.days.reduce((best, day) => (day.amount > best.amount ? day : best), chart.days[0]!);
  const busiest = peak.amount > 0 ? ` · highest: ${formatCents(peak.amount, currency)} on ${shortDay(peak.day)}` : "";
  return `Today: ${formatCents(today.amount, currency)} · last 30 days: ${formatCents(chartTotal(chart), currency)}${busiest}`;
}

/**
 * 30 days of spend: one bar per UTC day (today's grows as charges arrive), a
 * summary in words, and the same figures as a table for screen readers and
 * anyone who prefers numbers. The main account's own messages are counted
 * when the report is read (on load and when the tab comes back), as they
 * have no live event.
 */
export const chartPanel: PanelFactory = (container, { documents }) => {
  if (!documents.DashboardReport || !documents.DashboardSequences) return null;
  const summary = h("p", { class: "chart-summary", id: "chart-summary", "aria-live": "off" }, "Reading the last 30 days…");
  const bars = h("div", { class: "chart", id: "chart-bars", "aria-hidden": "true" });
  const axis = h("p", { class: "chart-axis", "aria-hidden": "true" }, h("span", {}), h("span", {}));
  const body = h("tbody", {});
  const table = h(
    "table",
    { class: "chart-table", id: "chart-table" },
    h("caption", {}, "Spend per UTC day, the oldest first"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day (UTC)"), h("th", { scope: "col" }, "Messages"), h("th", { scope: "col" }, "Spend"))),
    body,
  );
  const details = h("details", { class: "chart-details" }, h("summary", {}, "Show the 30 days as a table"), table);
  container.append(h("section", { class: "panel panel-chart", "aria-labelledby": "chart-title" }, h("h2", { id: "chart-title" }, "Spend, last 30 days"), summary, bars, axis, details));
  let columns: Column[] = [];

  const draw = (chart: SpendChart | null, currency: string) => {
    if (!chart) return;
    if (columns.length !== chart.days.length) {
      bars.replaceChildren();
      body.replaceChildren();
      columns = createColumns(chart.days.length, bars, body);
    }
    const highest = Math.max(1, ...chart.days.map((day) => day.amount));
    chart.days.forEach((day, index) => {
      const column = columns[index]!;
      const today = index === chart.days.length - 1;
      column.bar.style.setProperty("height", `${day.amount === 0 ? 0 : Math.max(2, Math.round((day.amount * 100) / highest))}%`);
      column.bar.classList.toggle("is-today", today);
      column.bar.dataset.day = day.day;
      column.bar.dataset.amount = String(day.amount);
      column.bar.title = `${shortDay(day.day)}: ${formatCents(day.amount, currency)}`;
      const row = column.cells.amount.parentElement!;
      setText(row.firstElementChild!, today ? `${day.day} (today)` : day.day);
      setText(column.cells.messages, String(day.messages));
      setText(column.cells.amount, formatCents(day.amount, currency));
    });
    setText(axis.firstElementChild!, shortDay(chart.days[0]!.day));
    setText(axis.lastElementChild!, "Today");
    setText(summary, summaryOf(chart, currency));
  };
  return {
    render: ({ chart, state }) => draw(chart, state.team.currency),
    onSpend: (_charge, { chart, state }) => draw(chart, state.team.currency),
  };
};
