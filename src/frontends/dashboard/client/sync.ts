/**
 * What the dashboard reads from the API, page by page: the state (team and
 * sub-accounts), where each sub-account's charges stand, the latest alerts,
 * and the 30-day chart, read so that it knows exactly which charges it counts.
 */
import { ApiError } from "./api.ts";
import { chartFromReport, chartRange, type ReportRow, type SpendChart } from "./chart.ts";
import { stateFromPages, type DashboardState, type SpendAlert, type StatePage } from "./state.ts";

/** Runs one of the page's documents with the pasted key (see api.ts). */
export interface Api {
  run<T>(name: string, variables?: Record<string, unknown>): Promise<T>;
}

/** Pages of 100 sub-accounts; a team with more is read page by page, up to this many. */
const MAX_PAGES = 100;
/** Reads of the chart before it settles for an inexact one (charges kept committing between the reads). */
const CHART_ATTEMPTS = 3;

interface Paged {
  subAccounts: { pageInfo: { hasNextPage: boolean; endCursor: string | null } };
}

async function allPages<P extends Paged>(api: Api, name: string, check: (page: P) => void = () => {}): Promise<P[]> {
  const pages: P[] = [];
  let after: string | null = null;
  do {
    const page: P = await api.run<P>(name, { after });
    check(page);
    pages.push(page);
    after = page.subAccounts.pageInfo.hasNextPage ? page.subAccounts.pageInfo.endCursor : null;
  } while (after !== null && pages.length < MAX_PAGES);
  return pages;
}

export async function fetchState(api: Api): Promise<DashboardState> {
  const pages = await allPages<StatePage>(api, "DashboardState", (page) => {
    if (page.viewer.account.isSubAccount) throw new ApiError("forbidden", "That is a sub-account key. The dashboard shows the whole team: paste the team's main key.", 403);
  });
  return stateFromPages(pages);
}

/** Every sub-account's latest charge sequence, now. */
export async function fetchSequences(api: Api): Promise<Map<string, number>> {
  type Page = Paged & { subAccounts: { edges: { node: { id: string; chargeSequence: number } }[] } };
  const pages = await allPages<Page>(api, "DashboardSequences");
  return new Map(pages.flatMap((page) => page.subAccounts.edges.map(({ node }) => [node.id, node.chargeSequence] as const)));
}

/** The team's latest alerts, newest first. */
export async function fetchAlerts(api: Api): Promise<SpendAlert[]> {
  const data = await api.run<{ spendAlerts: { edges: { node: SpendAlert }[] } }>("DashboardAlertList");
  return data.spendAlerts.edges.map((edge) => edge.node);
}

/** The sequences each sub-account's charges stand at; a sub-account missing from one map has none. */
export function sameSequences(a: Map<string, number>, b: Map<string, number>): boolean {
  for (const [id, sequence] of a) if ((b.get(id) ?? 0) !== sequence) return false;
  for (const [id, sequence] of b) if ((a.get(id) ?? 0) !== sequence) return false;
  return true;
}

/**
 * The 30-day chart and the charges it counts. `before`: sequences whose
 * charges are committed (what the page has seen). The report is read, then
 * the sequences: if they still equal `before`, no charge committed between
 * the two reads, so the report counts exactly the charges up to `before`.
 * Otherwise it tries again from the sequences just read. `exact` is false when
 * charges kept coming: the chart then counts up to the last sequences read
 * (it may lack the few charges made meanwhile) and is to be read again later.
 */
export async function loadChart(api: Api, before: Map<string, number>, now: () => Date = () => new Date()): Promise<{ chart: SpendChart; exact: boolean }> {
  let counted = before;
  for (let attempt = 1; ; attempt += 1) {
    const range = chartRange(now());
    const data = await api.run<{ spendReport: { rows: ReportRow[] } }>("DashboardReport", { from: range.from, to: range.to });
    const after = await fetchSequences(api);
    const exact = sameSequences(counted, after);
    if (exact || attempt >= CHART_ATTEMPTS) return { chart: chartFromReport(data.spendReport.rows, range.days, exact ? counted : after), exact };
    counted = after;
  }
}
