import { ALERT_TITLES, describeAlert } from "../alerts.ts";
import { h } from "../dom.ts";
import { whenOf } from "../format.ts";
import type { DashboardState, SpendAlert } from "../state.ts";
import type { PanelFactory, View } from "./panel.ts";

/**
 * The team's spend alerts, newest first: the latest ones listed when the page
 * opens, then each one as it is raised (`spendAlertRaised`), in a live region
 * that assistive technology announces. Each says its kind, whose charge, the
 * threshold and the figures, and when.
 */
export const alertsPanel: PanelFactory = (container, { documents }) => {
  if (!documents.DashboardAlertList) return null;
  // It scrolls past a few alerts, so it takes the keyboard's focus (to scroll it) like any scrolling region.
  const list = h("ol", { class: "feed alerts", id: "alerts", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-labelledby": "alerts-title", tabindex: "0" });
  const empty = h("p", { class: "empty", id: "alerts-empty" }, "No alerts yet. An alert is raised when a charge crosses a sub-account's credit-limit or budget threshold, or takes the team balance below its low-balance threshold.");
  container.append(h("section", { class: "panel panel-alerts", "aria-labelledby": "alerts-title" }, h("h2", { id: "alerts-title" }, "Alerts"), empty, list));
  let shown: View["alerts"] | null = null;

  const entry = (alert: SpendAlert, state: DashboardState) => {
    const name = alert.subAccountId ? (state.subAccounts.find((account) => account.id === alert.subAccountId)?.name ?? null) : null;
    return h(
      "li",
      { class: `alert alert-${alert.kind.toLowerCase()}`, "data-sequence": String(alert.sequence), "data-kind": alert.kind },
      h("time", { datetime: alert.createdAt }, whenOf(alert.createdAt)),
      " ",
      h("strong", { class: "alert-kind" }, ALERT_TITLES[alert.kind]),
      " ",
      describeAlert(alert, name, state.team.currency),
    );
  };

  return {
    render({ state, alerts }) {
      if (shown === alerts) return;
      shown = alerts;
      list.replaceChildren(...alerts.alerts.map((alert) => entry(alert, state)));
      empty.hidden = alerts.alerts.length > 0;
    },
    onAlert(alert, { state, alerts }) {
      shown = alerts;
      list.prepend(entry(alert, state));
      while (list.children.length > alerts.alerts.length) list.lastElementChild?.remove();
      empty.hidden = true;
    },
  };
};
