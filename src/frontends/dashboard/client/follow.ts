/**
 * One dashboard session: the key, what the page shows (state, alerts, chart),
 * and how it stays true. The state is fetched, then every charge and alert
 * arrives over graphql-ws; after a dropped connection the state is fetched
 * again and both subscriptions resume after the last charge and alert the
 * page received, so nothing made meanwhile is lost or counted twice
 * (README.md, "Live spend dashboard").
 */
import { addAlert, alertFeedFrom, type AlertFeed } from "./alerts.ts";
import { chargeChart, rollTo, type SpendChart } from "./chart.ts";
import { followLive, retryDelay, type LiveStatus, type LiveStream } from "./live.ts";
import type { Panel, View } from "./panels/panel.ts";
import { applySpend, mergeState, nextBudgetReset, type DashboardState, type SpendAlert, type SpendUpdate } from "./state.ts";
import { fetchAlerts, fetchState, loadChart, type Api } from "./sync.ts";

/** A chart read while charges kept coming, or that found a gap, is read again after this long (and no sooner). */
const CHART_RETRY_MS = 5_000;
/** The latest a timer may be set for (setTimeout's limit is about 24.8 days). */
const TIMER_MAX_MS = 2_000_000_000;
const DAY_MS = 86_400_000;

export interface SessionHooks {
  documents: Record<string, string>;
  status(status: LiveStatus): void;
  notice(message: string): void;
  /** The key no longer opens the dashboard, or the gateway cannot be reached for the first fetch. */
  failed(error: unknown): void;
}

interface ChartSlot {
  chart: SpendChart | null;
  /** While it is read: the charges that arrive meanwhile, added once it is. */
  log: SpendUpdate[] | null;
  again: boolean;
  timer?: ReturnType<typeof setTimeout>;
}

export interface Session {
  key: string;
  api: Api;
  panels: Panel[];
  hooks: SessionHooks;
  state: DashboardState;
  alerts: AlertFeed;
  chart: ChartSlot;
  /**
   * Per sub-account, the sequence of the last charge a subscription delivered
   * (or the state's, for the sub-accounts the page started with): where the
   * next subscription resumes. A sub-account missing here is new since the
   * page started: all of its charges are new to it.
   */
  received: Map<string, number>;
  /** Per sub-account, the sequence fetched when the page last reconnected: charges up to it were made while it was away. */
  missedUpTo: Map<string, number>;
  /** The state was just fetched by start: the first connection need not fetch it again. */
  fresh: boolean;
  refreshing: Promise<void> | null;
  again: boolean;
  live: { close(): void } | null;
  /** Refusals in a row (a resume point too old...), for the backoff. */
  refusals: number;
  timers: { reset?: ReturnType<typeof setTimeout>; day?: ReturnType<typeof setTimeout> };
  closed: boolean;
}

export const viewOf = (session: Session): View => ({ state: session.state, alerts: session.alerts, chart: session.chart.chart });

function renderAll(session: Session): void {
  const view = viewOf(session);
  for (const panel of session.panels) panel.render(view);
  scheduleTimers(session);
}

const sequencesOf = (state: DashboardState) => new Map(state.subAccounts.map((account) => [account.id, account.chargeSequence]));

/** The first fetch: state and alerts. Throws what the API answered (a refused key, say). */
export async function openSession(key: string, api: Api, panels: Panel[], hooks: SessionHooks): Promise<Session> {
  const [state, listed] = await Promise.all([fetchState(api), fetchAlerts(api)]);
  const session: Session = {
    key,
    api,
    panels,
    hooks,
    state,
    alerts: alertFeedFrom(listed),
    chart: { chart: null, log: null, again: false },
    received: sequencesOf(state),
    missedUpTo: new Map(),
    fresh: true,
    refreshing: null,
    again: false,
    live: null,
    refusals: 0,
    timers: {},
    closed: false,
  };
  renderAll(session);
  void reloadChart(session);
  return session;
}

/** Fetches the state again and merges it into the one shown; asked while fetching, fetches once more after. */
export function refresh(session: Session): Promise<void> {
  if (session.refreshing) {
    session.again = true;
    return session.refreshing;
  }
  session.again = false;
  session.refreshing = fetchState(session.api)
    .then((fetched) => {
      if (session.closed) return;
      session.state = mergeState(session.state, fetched);
      renderAll(session);
    })
    .finally(() => {
      session.refreshing = null;
      if (session.again && !session.closed) return refresh(session);
      return undefined;
    });
  return session.refreshing;
}

const isRefusal = (error: unknown) => {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "unauthorized" || code === "forbidden";
};

/** A refresh nobody waits for: a refused key ends the session; any other failure is shown, and the next refresh tries again. */
function refreshLater(session: Session): Promise<void> {
  return refresh(session).catch((error: unknown) => {
    if (session.closed) return;
    if (isRefusal(error)) session.hooks.failed(error);
    else session.hooks.notice(error instanceof Error ? error.message : String(error));
  });
}

/** One charge as a subscription delivered it: the chart, the state, then the panels. */
function receiveSpend(session: Session, update: SpendUpdate): void {
  const id = update.subAccount.id;
  session.received.set(id, Math.max(update.sequence, session.received.get(id) ?? 0));
  chartCharge(session, update);
  apply(session, update, false);
}

function apply(session: Session, update: SpendUpdate, fetchedAgain: boolean): void {
  const applied = applySpend(session.state, update);
  session.state = applied.state;
  if (!applied.known || !applied.subAccount) {
    // A sub-account created since the state was fetched: fetch it again (once), then show this charge.
    if (!fetchedAgain) void refreshLater(session).then(() => apply(session, update, true));
    return;
  }
  if (applied.reread) void refreshLater(session);
  const missed = update.sequence <= (session.missedUpTo.get(update.subAccount.id) ?? 0);
  const view = viewOf(session);
  for (const panel of session.panels) panel.onSpend?.({ update, subAccount: applied.subAccount, missed }, view);
}

function receiveAlert(session: Session, alert: SpendAlert): void {
  const { feed, added } = addAlert(session.alerts, alert);
  if (!added) return;
  session.alerts = feed;
  // The team's threshold may have been set since the page read it (no event says so): read the team again.
  if (alert.kind === "LOW_BALANCE") void refreshLater(session);
  const view = viewOf(session);
  for (const panel of session.panels) panel.onAlert?.(alert, view);
}

function chartCharge(session: Session, update: SpendUpdate): void {
  const slot = session.chart;
  if (slot.log) return void slot.log.push(update);
  if (!slot.chart) return;
  const charged = chargeChart(slot.chart, { subAccountId: update.subAccount.id, sequence: update.sequence, amount: update.amount, chargedAt: update.chargedAt });
  slot.chart = charged.chart;
  if (charged.gap) scheduleChartReload(session, CHART_RETRY_MS);
}

function scheduleChartReload(session: Session, inMs: number): void {
  if (session.chart.timer !== undefined || session.closed) return;
  session.chart.timer = setTimeout(() => {
    session.chart.timer = undefined;
    void reloadChart(session);
  }, inMs);
}

/**
 * Reads the chart (see loadChart in sync.ts) from the sequences the page has
 * seen, then adds the charges that arrived meanwhile that it does not count.
 */
export async function reloadChart(session: Session): Promise<void> {
  const slot = session.chart;
  if (slot.log) return void (slot.again = true);
  slot.log = [];
  slot.again = false;
  let exact = true;
  try {
    const loaded = await loadChart(session.api, sequencesOf(session.state));
    exact = loaded.exact;
    slot.chart = loaded.chart;
  } catch {
    exact = false; // shown without it, or with the one it had; read again later
  }
  const log = slot.log;
  slot.log = null;
  for (const update of log) chartCharge(session, update);
  if (session.closed) return;
  renderAll(session);
  if (slot.again) return reloadChart(session);
  if (!exact) scheduleChartReload(session, CHART_RETRY_MS);
}

/** Where the spend subscription resumes, per sub-account: what the page received, and no later than what the chart counts. */
function spendCursors(session: Session): { subAccountId: string; afterSequence: number }[] {
  const ids = new Set([...session.received.keys(), ...session.state.subAccounts.map((account) => account.id), ...(session.chart.chart?.counted.keys() ?? [])]);
  return [...ids].map((id) => {
    const received = session.received.get(id) ?? 0;
    const chart = session.chart.chart;
    return { subAccountId: id, afterSequence: chart && !session.chart.log ? Math.min(received, chart.counted.get(id) ?? 0) : received };
  });
}

function streams(session: Session): LiveStream[] {
  const { documents } = session.hooks;
  const all: LiveStream[] = [
    { operationName: "DashboardSpend", hash: documents.DashboardSpend ?? "", variables: { after: spendCursors(session) }, field: "spendUpdated", onEvent: (value) => receiveSpend(session, value as SpendUpdate) },
    { operationName: "DashboardAlerts", hash: documents.DashboardAlerts ?? "", variables: { afterSequence: session.alerts.sequence }, field: "spendAlertRaised", onEvent: (value) => receiveAlert(session, value as SpendAlert) },
  ];
  return all.filter((stream) => stream.hash !== ""); // a document this gateway does not offer
}

/** On each connection: after a drop, fetch the state again (what changed meanwhile), then subscribe from where the page stopped. */
async function prepare(session: Session, reconnected: boolean): Promise<LiveStream[]> {
  if (!session.fresh) {
    await refresh(session);
    session.missedUpTo = sequencesOf(session.state);
  }
  session.fresh = false;
  if (reconnected) for (const panel of session.panels) panel.onReconnected?.(viewOf(session));
  return streams(session);
}

/** Follows the team live until the session is closed. */
export function follow(session: Session): void {
  session.live?.close();
  session.live = followLive({
    key: session.key,
    prepare: (reconnected) => prepare(session, reconnected),
    onStatus: (status) => {
      if (status.state === "live") session.refusals = 0;
      session.hooks.status(status);
    },
    onNotice: session.hooks.notice,
    onEnded: (refusal) => ended(session, refusal),
  });
}

/**
 * A subscription refused or ended by the gateway. The key no longer opens the
 * dashboard: the session ends. A resume point the gateway no longer takes (too
 * far back, a sub-account since removed): start again from a fresh state.
 * Anything else: follow again, after a backoff.
 */
function ended(session: Session, refusal: { code: string; message: string }): void {
  session.live?.close();
  session.live = null;
  if (isRefusal(refusal)) return session.hooks.failed(refusal);
  const inMs = retryDelay(session.refusals++);
  session.hooks.status({ state: "reconnecting", inMs });
  const again = refusal.code === "invalid_request" || refusal.code === "not_found" ? () => restart(session) : async () => follow(session);
  setTimeout(() => !session.closed && void again().catch(() => ended(session, { code: "unreachable", message: "" })), inMs);
}

/** Everything read afresh, the subscriptions from the latest charge and alert (the page says so). */
async function restart(session: Session): Promise<void> {
  const [state, listed] = await Promise.all([fetchState(session.api), fetchAlerts(session.api)]);
  if (session.closed) return;
  session.state = state;
  session.alerts = alertFeedFrom(listed);
  session.received = sequencesOf(state);
  session.missedUpTo = new Map();
  session.chart.chart = null;
  session.fresh = true;
  for (const panel of session.panels) panel.onNote?.("Too far behind to replay what was missed: everything above was read again.");
  renderAll(session);
  void reloadChart(session);
  follow(session);
}

/** Back to a tab left in the background: read the state and the chart again rather than trust them. */
export function revisit(session: Session): void {
  void refreshLater(session);
  void reloadChart(session);
}

function scheduleTimers(session: Session): void {
  clearTimeout(session.timers.reset);
  clearTimeout(session.timers.day);
  if (session.closed) return;
  // A budget's period renews without a charge: its figures start again from 0, with a new end. Read it then.
  const reset = nextBudgetReset(session.state);
  if (reset !== null) session.timers.reset = setTimeout(() => void refreshLater(session), Math.min(TIMER_MAX_MS, Math.max(5_000, Date.parse(reset) - Date.now() + 1_000)));
  // A new UTC day: the chart moves on by one (today starts empty).
  const now = Date.now();
  session.timers.day = setTimeout(() => rollChart(session), DAY_MS - (now % DAY_MS) + 50);
}

function rollChart(session: Session): void {
  const slot = session.chart;
  if (slot.chart) slot.chart = rollTo(slot.chart, new Date().toISOString().slice(0, 10));
  renderAll(session);
}

export function closeSession(session: Session): void {
  session.closed = true;
  session.live?.close();
  session.live = null;
  clearTimeout(session.chart.timer);
  clearTimeout(session.timers.reset);
  clearTimeout(session.timers.day);
}
