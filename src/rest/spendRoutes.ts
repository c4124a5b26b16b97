import { z } from "zod";
import { ALERT_KINDS } from "../domain/alerts.ts";
import { centsToNumber } from "../domain/money.ts";
import type { SpendAlertEvent } from "../events/types.ts";
import { SPEND_GROUPS, type SpendReport } from "../services/reports.ts";
import { updateTeamInput } from "../services/teams.ts";
import { TextResponse } from "./text.ts";
import { listOf, pageQuery, route, type RouteDef } from "./routes.ts";

const reportRowSchema = z.object({
  period: z.string().nullable().describe("YYYY-MM-DD by day, YYYY-MM by month; null when not grouped by time"),
  channel: z.string().nullable(),
  accountId: z.string().nullable(),
  messages: z.number().int(),
  segments: z.number().int(),
  amount: z.number().int().describe("Cents"),
});

const reportSchema = z.object({
  from: z.string().datetime(),
  to: z.string().datetime(),
  rows: z.array(reportRowSchema),
  total: reportRowSchema.pick({ messages: true, segments: true, amount: true }),
});

function reportJson(report: SpendReport): z.input<typeof reportSchema> {
  return {
    from: report.from.toISOString(),
    to: report.to.toISOString(),
    rows: report.rows.map((row) => ({ ...row, amount: centsToNumber(row.amount) })),
    total: { ...report.total, amount: centsToNumber(report.total.amount) },
  };
}

function csvField(value: string | number | null): string {
  const text = value === null ? "" : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The report as CSV with a header row: the grouping columns asked for, then messages, segments and amount (cents). */
export function reportCsv(report: SpendReport): string {
  const columns: ("period" | "channel" | "accountId")[] = [];
  if (report.groupBy.includes("day") || report.groupBy.includes("month")) columns.push("period");
  if (report.groupBy.includes("channel")) columns.push("channel");
  if (report.groupBy.includes("account")) columns.push("accountId");
  const header = [...columns, "messages", "segments", "amount"];
  const lines = report.rows.map((row) => [...columns.map((column) => row[column]), row.messages, row.segments, centsToNumber(row.amount)].map(csvField).join(","));
  return `${[header.join(","), ...lines].join("\r\n")}\r\n`;
}

const alertSchema = z.object({
  id: z.string(),
  kind: z.enum(ALERT_KINDS),
  subAccountId: z.string().nullable(),
  thresholdPercent: z.number().int().nullable(),
  threshold: z.number().int().describe("Cents"),
  value: z.number().int().describe("Cents"),
  messageId: z.string(),
  sequence: z.number().int(),
  createdAt: z.string().datetime(),
});

const alertView = ({ teamId: _team, ...alert }: SpendAlertEvent): z.input<typeof alertSchema> => alert;

const commaList = z.preprocess((value) => (typeof value === "string" ? value.split(",").map((part) => part.trim()).filter(Boolean) : value), z.array(z.string()));

/** Spend over time, alerts and the team's settings (README.md, "Spend reports", "Budgets and alerts"). */
export const spendRoutes: RouteDef[] = [
  route({
    operationId: "getSpendReport",
    method: "GET",
    path: "/v1/spend",
    summary: "Spend over [from, to) from the daily totals, grouped by day (default), month, channel and/or account; format=csv (or Accept: text/csv) for CSV.",
    tag: "Spend",
    access: "spend:read",
    query: z
      .object({
        from: z.string().describe("00:00 UTC of the first day, e.g. 2026-11-01"),
        to: z.string().describe("00:00 UTC of the day after the last (at most 366 days after from)"),
        groupBy: commaList.optional().describe(`Comma-separated: ${SPEND_GROUPS.join(", ")}`),
        subAccountId: z.string().optional(),
        format: z.enum(["json", "csv"]).optional(),
      })
      .strict(),
    status: 200,
    response: reportSchema,
    async handler({ actor, query, headers, services }) {
      const { format, ...input } = query;
      const report = await services.reports.spendReport(actor, input);
      const wantsCsv = format === "csv" || (format === undefined && String(headers.accept ?? "").includes("text/csv"));
      return wantsCsv ? new TextResponse("text/csv; charset=utf-8", reportCsv(report)) : reportJson(report);
    },
  }),
  route({
    operationId: "listSpendAlerts",
    method: "GET",
    path: "/v1/spend/alerts",
    summary: "Spend alerts, newest first, with cursor pagination: a main key's team (or one sub-account), a sub-account key's own.",
    tag: "Spend",
    access: "spend:read",
    query: z.object({ ...pageQuery, subAccountId: z.string().optional(), kind: z.enum(ALERT_KINDS).optional() }).strict(),
    status: 200,
    response: z.object({ items: z.array(alertSchema), nextCursor: z.string().nullable() }),
    async handler({ actor, query, services }) {
      return listOf(await services.alerts.list(actor, query), alertView);
    },
  }),
  route({
    operationId: "updateTeam",
    method: "PATCH",
    path: "/v1/team",
    summary: "The team's own settings: lowBalanceThreshold (cents; null removes it).",
    tag: "Team",
    access: "team:write",
    body: updateTeamInput,
    bodyRequired: true,
    status: 200,
    response: z.object({ team: z.object({ id: z.string(), name: z.string(), balance: z.number().int(), currency: z.string(), lowBalanceThreshold: z.number().int().nullable() }) }),
    async handler({ actor, body, services }) {
      const team = await services.teams.update(actor, body);
      const cents = (value: bigint | null) => (value === null ? null : centsToNumber(value));
      return { team: { id: team.id, name: team.name, balance: centsToNumber(team.balance), currency: team.currency, lowBalanceThreshold: cents(team.lowBalanceThreshold) } };
    },
  }),
];
