/**
 * 30 days of spend: the team's `spendReport(groupBy: [DAY])` over the last 30
 * UTC days, then each live charge added to its day. Pure functions, no DOM.
 *
 * A report is a total: to add the charges that came after it, and no other,
 * the chart must know which charges it counted. It is read between two reads
 * of every sub-account's charge sequence (`counted`): when both reads agree,
 * no charge committed in between, so the report counted exactly the charges
 * up to those sequences (see loadChart in sync.ts). A live charge is added
 * only when its sequence is past its sub-account's `counted`, which then
 * moves on: a replayed charge is never added twice. A charge further on than
 * the next one means the chart missed some: it is read again.
 */
export const CHART_DAYS = 30;
const DAY_MS = 86_400_000;

export interface DaySpend {
  /** The UTC day, YYYY-MM-DD. */
  day: string;
  /** Cents. */
  amount: number;
  messages: number;
}

export interface SpendChart {
  /** CHART_DAYS days, the oldest first; the last is today (UTC). */
  days: DaySpend[];
  /** Per sub-account, the sequence of the last charge the chart counts (absent: none). */
  counted: Map<string, number>;
}

export interface ReportRow {
  period: string | null;
  amount: number;
  messages: number;
}

const dayOf = (time: number) => new Date(time).toISOString().slice(0, 10);

/** The report's range for the CHART_DAYS UTC days ending with `now`'s: [from, to), both at 00:00 UTC. */
export function chartRange(now: Date): { from: string; to: string; days: string[] } {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const first = today - (CHART_DAYS - 1) * DAY_MS;
  const days = Array.from({ length: CHART_DAYS }, (_, index) => dayOf(first + index * DAY_MS));
  return { from: new Date(first).toISOString(), to: new Date(today + DAY_MS).toISOString(), days };
}

export function chartFromReport(rows: ReportRow[], days: string[], counted: Map<string, number>): SpendChart {
  const byDay = new Map(rows.map((row) => [row.period, row]));
  return {
    days: days.map((day) => ({ day, amount: byDay.get(day)?.amount ?? 0, messages: byDay.get(day)?.messages ?? 0 })),
    counted: new Map(counted),
  };
}

/** The chart with its last day moved on to `today` (YYYY-MM-DD): new days start empty, the oldest drop out. */
export function rollTo(chart: SpendChart, today: string): SpendChart {
  const last = chart.days[chart.days.length - 1]?.day;
  if (!last || today <= last) return chart;
  const { days } = chartRange(new Date(`${today}T00:00:00.000Z`));
  const byDay = new Map(chart.days.map((day) => [day.day, day]));
  return { ...chart, days: days.map((day) => byDay.get(day) ?? { day, amount: 0, messages: 0 }) };
}

export interface Charged {
  chart: SpendChart;
  /** The chart did not count this charge before, and does now (false: it already had it, or its day is before the chart's). */
  added: boolean;
  /** Charges of this sub-account before this one are missing from the chart: read it again. */
  gap: boolean;
}

/** One live charge added to its day, if the chart does not count it yet. */
export function chargeChart(chart: SpendChart, charge: { subAccountId: string; sequence: number; amount: number; chargedAt: string }): Charged {
  const before = chart.counted.get(charge.subAccountId) ?? 0;
  if (charge.sequence <= before) return { chart, added: false, gap: false };
  const counted = new Map(chart.counted).set(charge.subAccountId, charge.sequence);
  const day = charge.chargedAt.slice(0, 10);
  const rolled = rollTo(chart, day);
  const index = rolled.days.findIndex((entry) => entry.day === day);
  const days = rolled.days.slice();
  if (index >= 0) days[index] = { day, amount: days[index]!.amount + charge.amount, messages: days[index]!.messages + 1 };
  return { chart: { days, counted }, added: index >= 0, gap: charge.sequence > before + 1 };
}

/** The total of the chart's days. */
export function chartTotal(chart: SpendChart): number {
  return chart.days.reduce((sum, day) => sum + day.amount, 0);
}
