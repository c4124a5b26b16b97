import type { Documents } from "../api.ts";
import type { AlertFeed } from "../alerts.ts";
import type { SpendChart } from "../chart.ts";
import type { DashboardState, SpendAlert, SpendUpdate, SubAccount } from "../state.ts";

/**
 * One panel of the dashboard: it owns its section of the page. `render`
 * draws the whole view (after each fetch, and when the chart is read);
 * `onSpend` applies one live charge; `onAlert` one new alert; `onReconnected`
 * follows the fetch after a dropped connection.
 *
 * A new panel is a module in this folder that returns a Panel, listed in
 * panels/index.ts; the documents it needs go in
 * src/graphql/dashboardDocuments.ts, and the panel returns null when the page
 * lacks them (a gateway whose schema does not have their fields).
 */
export interface View {
  state: DashboardState;
  alerts: AlertFeed;
  /** Null until it is read (or while it cannot be). */
  chart: SpendChart | null;
}

export interface Charge {
  update: SpendUpdate;
  /** The sub-account as it is now. */
  subAccount: SubAccount;
  /** Made while the page was disconnected: replayed when it resumed. */
  missed: boolean;
}

export interface Panel {
  render(view: View): void;
  onSpend?(charge: Charge, view: View): void;
  onAlert?(alert: SpendAlert, view: View): void;
  /** The live connection came back: the state was fetched again and the subscriptions resume where they stopped. */
  onReconnected?(view: View): void;
  /** Something the page did that a person should know (read again after falling too far behind...). */
  onNote?(text: string): void;
}

export interface PanelContext {
  documents: Documents;
}

export type PanelFactory = (container: HTMLElement, context: PanelContext) => Panel | null;
