import type { SpendReport as SpendReportValue, SpendReportRow as Row, SpendTotals } from "../../services/reports.ts";
import { builder } from "../builder.ts";
import { Channel } from "./message.ts";

const SpendGroup = builder.enumType("SpendGroup", {
  values: {
    DAY: { value: "day", description: "By UTC day: period is YYYY-MM-DD." },
    MONTH: { value: "month", description: "By UTC month: period is YYYY-MM." },
    CHANNEL: { value: "channel" },
    ACCOUNT: { value: "account", description: "By account (the main account included)." },
  } as const,
});

const SpendTotal = builder.objectRef<SpendTotals>("SpendTotal").implement({
  fields: (t) => ({
    messages: t.exposeInt("messages"),
    segments: t.exposeInt("segments"),
    amount: t.expose("amount", { type: "Cents" }),
  }),
});

const SpendReportRow = builder.objectRef<Row>("SpendReportRow").implement({
  description: "The spend of one group; a grouping not asked for is null.",
  fields: (t) => ({
    period: t.exposeString("period", { nullable: true }),
    channel: t.field({ type: Channel, nullable: true, resolve: (row) => row.channel as "sms" | null }),
    accountId: t.exposeID("accountId", { nullable: true }),
    messages: t.exposeInt("messages"),
    segments: t.exposeInt("segments"),
    amount: t.expose("amount", { type: "Cents" }),
  }),
});

const SpendReport = builder.objectRef<SpendReportValue>("SpendReport").implement({
  description: "Live charges over [from, to), from the daily totals the charge path keeps: equal to the ledger to the cent.",
  fields: (t) => ({
    from: t.expose("from", { type: "DateTime" }),
    to: t.expose("to", { type: "DateTime" }),
    rows: t.field({ type: [SpendReportRow], resolve: (report) => report.rows }),
    total: t.field({ type: SpendTotal, resolve: (report) => report.total }),
  }),
});

builder.queryFields((t) => ({
  spendReport: t.field({
    type: SpendReport,
    description:
      "Spend over [from, to) (UTC midnights, at most 366 days), grouped by DAY (default), MONTH, CHANNEL and/or ACCOUNT (scope spend:read). A main key: the whole team (main account included) or one sub-account; a sub-account key: its own.",
    args: {
      from: t.arg({ type: "DateTime", required: true }),
      to: t.arg({ type: "DateTime", required: true }),
      groupBy: t.arg({ type: [SpendGroup] }),
      subAccountId: t.arg.id(),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.reports.spendReport(ctx.actor, { ...args, subAccountId: args.subAccountId == null ? args.subAccountId : String(args.subAccountId) }),
  }),
}));
