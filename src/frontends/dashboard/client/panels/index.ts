import { alertsPanel } from "./alerts.ts";
import { chartPanel } from "./chart.ts";
import { feedPanel } from "./feed.ts";
import type { PanelFactory } from "./panel.ts";
import { subAccountsPanel } from "./subAccounts.ts";
import { teamPanel } from "./team.ts";

/** The panels, in page order (the order a screen reader and the keyboard meet them). Add one here (see panel.ts). */
export const PANELS: PanelFactory[] = [teamPanel, alertsPanel, chartPanel, subAccountsPanel, feedPanel];
