import { h, setText } from "../dom.ts";
import { formatCents } from "../format.ts";
import { isLowBalance } from "../state.ts";
import type { PanelFactory, View } from "./panel.ts";

/**
 * The team: its name, its shared balance (as of the latest charge), its
 * low-balance threshold, and whether the balance is below it now
 * (`Team.lowBalance`, kept as charges arrive).
 */
export const teamPanel: PanelFactory = (container) => {
  const name = h("p", { class: "team-name", id: "team-name" });
  const balance = h("p", { class: "team-balance", id: "team-balance" });
  const threshold = h("p", { class: "team-threshold", id: "team-threshold", hidden: true });
  const low = h("p", { class: "badge badge-warning", id: "team-low-balance", role: "status", hidden: true });
  const section = h("section", { class: "panel panel-team", "aria-labelledby": "team-title" }, h("h2", { id: "team-title" }, "Team"), name, h("p", { class: "team-label" }, "Shared balance"), balance, low, threshold);
  container.append(section);
  const render = ({ state }: View) => {
    const { team } = state;
    setText(name, team.name);
    setText(balance, formatCents(team.balance, team.currency));
    const hasThreshold = typeof team.lowBalanceThreshold === "number";
    threshold.hidden = team.lowBalanceThreshold === undefined; // a schema without it
    setText(threshold, hasThreshold ? `Low-balance threshold: ${formatCents(team.lowBalanceThreshold!, team.currency)}` : "No low-balance threshold set (updateTeam sets one).");
    low.hidden = !isLowBalance(team);
    if (!low.hidden) setText(low, `Low balance: below ${formatCents(team.lowBalanceThreshold!, team.currency)}. Top up soon.`);
    section.classList.toggle("is-low", !low.hidden);
  };
  return { render, onSpend: (_charge, view) => render(view), onAlert: (_alert, view) => render(view) };
};
