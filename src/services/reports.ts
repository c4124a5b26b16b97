import { z } from "zod";
import type { Db } from "../db/client.ts";
import { forbidden, invalidRequest } from "../domain/errors.ts";
import { utcDay } from "../domain/periods.ts";
import { dateTimeSchema, idSchema, parseInput } from "../domain/validation.ts";
import { Prisma } from "../generated/sqlite/client.ts";
import type { AccountsService } from "./accounts.ts";
import { authorize } from "./auth.ts";
import type { Actor } from "./deps.ts";

export const SPEND_GROUPS = ["day", "month", "channel", "account"] as const;
export type SpendGroup = (typeof SPEND_GROUPS)[number];

/** The longest range a report covers. */
export const REPORT_RANGE_MAX_DAYS = 366;
const DAY_MS = 86_400_000;

const utcMidnight = dateTimeSchema("must be an ISO-8601 date, e.g. 2026-11-01 or 2026-11-01T00:00:00Z").refine((date) => date.getTime() % DAY_MS === 0, "must be 00:00 UTC: reports count whole UTC days");

/** Also the REST query schema (src/rest). */
export const spendReportInput = z
  .object({
    from: utcMidnight,
    to: utcMidnight,
    groupBy: z.array(z.enum(SPEND_GROUPS, { errorMap: () => ({ message: `must be among ${SPEND_GROUPS.join(", ")}` }) })).max(SPEND_GROUPS.length).nullish(),
    subAccountId: idSchema.nullish(),
  })
  .strict()
  .superRefine(({ from, to }, ctx) => {
    if (to.getTime() <= from.getTime()) ctx.addIssue({ code: "custom", path: ["to"], message: "must be after from (the range is [from, to))" });
    else if (to.getTime() - from.getTime() > REPORT_RANGE_MAX_DAYS * DAY_MS) ctx.addIssue({ code: "custom", path: ["to"], message: `must be at most ${REPORT_RANGE_MAX_DAYS} days after from` });
  });

export interface SpendTotals {
  messages: number;
  segments: number;
  amount: bigint;
}

export interface SpendReportRow extends SpendTotals {
  /** "YYYY-MM-DD" grouped by day, "YYYY-MM" by month, else null. */
  period: string | null;
  channel: string | null;
  accountId: string | null;
}

export interface SpendReport {
  from: Date;
  to: Date;
  groupBy: SpendGroup[];
  rows: SpendReportRow[];
  total: SpendTotals;
}

/** The SQL of each grouping, from a fixed list: never text from the request. */
const GROUP_COLUMNS: Record<SpendGroup, { select: string; alias: "period" | "channel" | "accountId" }> = {
  day: { select: `"day"`, alias: "period" },
  month: { select: `substr("day", 1, 7)`, alias: "period" },
  channel: { select: `"channel"`, alias: "channel" },
  account: { select: `"accountId"`, alias: "accountId" },
};

type RawRow = { period?: string; channel?: string; accountId?: string; messages: unknown; segments: unknown; amount: unknown };

/**
 * Spend reports (README.md, "Spend reports"): answered from the daily totals
 * the charge path keeps per account, channel and UTC day (and per team,
 * channel and UTC day for the team as a whole), never by scanning messages,
 * so they agree with the ledger to the cent at any history.
 */
export class ReportsService {
  constructor(
    private readonly prisma: Db,
    private readonly accounts: AccountsService,
  ) {}

  /** The account a report covers: a sub-account key's own; a main key's choice (null: the whole team). */
  async #scope(actor: Actor, subAccountId: string | null | undefined): Promise<string | null> {
    if (actor.kind === "sub") {
      if (subAccountId != null && subAccountId !== actor.accountId) throw forbidden("A sub-account key can only report its own spend.");
      return actor.accountId;
    }
    if (subAccountId == null) return null;
    return (await this.accounts.requireSubAccount(actor, subAccountId, { select: { id: true } })).id;
  }

  async spendReport(actorOrNull: Actor | null, input: unknown): Promise<SpendReport> {
    const actor = authorize(actorOrNull, "spend:read");
    const data = parseInput(spendReportInput, input);
    const groupBy: SpendGroup[] = [...new Set(data.groupBy ?? (["day"] as const))];
    if (groupBy.includes("day") && groupBy.includes("month")) throw invalidRequest("Invalid groupBy: group by day or by month, not both.", { field: "groupBy" });
    const accountId = await this.#scope(actor, data.subAccountId);
    const rows = await this.#query(actor.teamId, accountId, data.from, data.to, groupBy);
    const total = rows.reduce((sum, row) => ({ messages: sum.messages + row.messages, segments: sum.segments + row.segments, amount: sum.amount + row.amount }), {
      messages: 0,
      segments: 0,
      amount: 0n,
    });
    return { from: data.from, to: data.to, groupBy, rows, total };
  }

  async #query(teamId: string, accountId: string | null, from: Date, to: Date, groupBy: SpendGroup[]): Promise<SpendReportRow[]> {
    const columns = groupBy.map((group) => GROUP_COLUMNS[group]);
    const select = columns.map((column) => Prisma.raw(`${column.select} AS "${column.alias}"`));
    const keys = columns.map((column) => Prisma.raw(column.select));
    // The whole team, not by account: the team's own totals, one row per day and channel whatever its number of accounts.
    const table = accountId === null && !groupBy.includes("account") ? Prisma.raw(`"TeamSpendDaily"`) : Prisma.raw(`"SpendDaily"`);
    const raw = await this.prisma.$queryRaw<RawRow[]>(Prisma.sql`
      SELECT ${Prisma.join([...select, Prisma.raw(`CAST(SUM("messages") AS BIGINT) AS "messages", CAST(SUM("segments") AS BIGINT) AS "segments", CAST(SUM("amount") AS BIGINT) AS "amount"`)])}
        FROM ${table}
       WHERE "teamId" = ${teamId} AND "day" >= ${utcDay(from)} AND "day" < ${utcDay(to)}
             ${accountId === null ? Prisma.empty : Prisma.sql`AND "accountId" = ${accountId}`}
       ${keys.length > 0 ? Prisma.sql`GROUP BY ${Prisma.join(keys)} ORDER BY ${Prisma.join(keys)}` : Prisma.empty}`);
    return raw
      .filter((row) => row.amount !== null)
      .map((row) => ({
        period: row.period ?? null,
        channel: row.channel ?? null,
        accountId: row.accountId ?? null,
        messages: Number(row.messages),
        segments: Number(row.segments),
        amount: BigInt(row.amount as bigint | number | string),
      }));
  }
}
