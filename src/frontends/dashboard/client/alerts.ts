/**
 * The alert feed's data: the team's latest alerts (`spendAlerts`), newest
 * first, then each one `spendAlertRaised` delivers. Alerts are numbered by a
 * gapless per-team sequence: the feed keeps the last it has, resumes the
 * subscription after it, and never shows one twice. Pure functions, no DOM.
 */
import { formatCents } from "./format.ts";
import type { SpendAlert } from "./state.ts";

/** Alerts kept on the page; older ones are dropped. */
export const ALERTS_SHOWN = 50;

export interface AlertFeed {
  /** Newest first. */
  alerts: SpendAlert[];
  /** The team sequence of the newest alert the page has: the subscription resumes after it. */
  sequence: number;
}

/** The feed from the latest alerts listed (newest first). */
export function alertFeedFrom(listed: SpendAlert[]): AlertFeed {
  const alerts = [...listed].sort((a, b) => b.sequence - a.sequence).slice(0, ALERTS_SHOWN);
  return { alerts, sequence: alerts[0]?.sequence ?? 0 };
}

/** One alert added, unless the feed already has it (a replay after a reconnect). */
export function addAlert(feed: AlertFeed, alert: SpendAlert): { feed: AlertFeed; added: boolean } {
  if (alert.sequence <= feed.sequence) return { feed, added: false };
  return { feed: { alerts: [alert, ...feed.alerts].slice(0, ALERTS_SHOWN), sequence: alert.sequence }, added: true };
}

export const ALERT_TITLES = { LOW_BALANCE: "Low balance", CREDIT_LIMIT: "Credit limit", BUDGET: "Budget" } as const;

/** Whose charge raised it: the sub-account's name, or what is known of it. */
function whose(alert: SpendAlert, name: string | null): string {
  if (name) return name;
  if (alert.subAccount) return alert.subAccount.name;
  return alert.subAccountId ? "A sub-account since removed" : "The main account";
}

/** What an alert says, in words: what crossed which mark, whose charge, and the figures. */
export function describeAlert(alert: SpendAlert, name: string | null, currency: string): string {
  const money = (cents: number) => formatCents(cents, currency);
  const who = whose(alert, name);
  const percent = alert.thresholdPercent === null ? "" : `${alert.thresholdPercent}% of `;
  switch (alert.kind) {
    case "LOW_BALANCE":
      return `The team balance fell below ${money(alert.threshold)}: ${money(alert.value)} left (a charge of ${who}).`;
    case "CREDIT_LIMIT":
      return `${who} reached ${percent}its credit limit: ${money(alert.value)} spent (the mark is ${money(alert.threshold)}).`;
    case "BUDGET":
      return `${who} reached ${percent}its budget: ${money(alert.value)} spent this period (the mark is ${money(alert.threshold)}).`;
  }
}
