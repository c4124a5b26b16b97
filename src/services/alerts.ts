import { z } from "zod";
import { alertJson, type CommittedCharge, type RaisedAlert } from "../db/charges.ts";
import type { Db } from "../db/client.ts";
import { ALERT_KINDS } from "../domain/alerts.ts";
import { forbidden } from "../domain/errors.ts";
import { centsToNumber } from "../domain/money.ts";
import { pageRequest, readPage } from "../domain/paging.ts";
import { idSchema, parseInput } from "../domain/validation.ts";
import type { SpendAlertEvent } from "../events/types.ts";
import type { AccountsService } from "./accounts.ts";
import { authorize } from "./auth.ts";
import type { Actor } from "./deps.ts";
import { checkResumePoints, type EventSource, type LiveHub } from "./live/index.ts";
import type { LiveWatch } from "./spend/index.ts";

/** One alert as subscribers see it: its API shape (alertJson) and its team. */
export function alertEventOf(charge: Pick<CommittedCharge, "teamId" | "accountId" | "accountKind" | "messageId" | "chargedAt">, alert: RaisedAlert): SpendAlertEvent {
  return { teamId: charge.teamId, ...alertJson(charge, alert) };
}

type AlertRow = { id: string; teamId: string; sequence: number; kind: string; accountId: string | null; thresholdPercent: number | null; threshold: bigint; value: bigint; messageId: string; createdAt: Date };

function eventOfRow(row: AlertRow): SpendAlertEvent {
  return {
    teamId: row.teamId,
    id: row.id,
    sequence: row.sequence,
    kind: row.kind as SpendAlertEvent["kind"],
    subAccountId: row.accountId,
    thresholdPercent: row.thresholdPercent,
    threshold: centsToNumber(row.threshold),
    value: centsToNumber(row.value),
    messageId: row.messageId,
    createdAt: row.createdAt.toISOString(),
  };
}

/** Spend alerts as the live streams read them back: ordered per team by its gapless alert sequence. */
export function alertSource(prisma: Db): EventSource<SpendAlertEvent> {
  return {
    keyOf: (event) => event.teamId,
    sequenceOf: (event) => event.sequence,
    async read(teamId, from, to) {
      const rows = await prisma.spendAlert.findMany({ where: { teamId, sequence: { gte: from, lte: to } }, orderBy: { sequence: "asc" } });
      return rows.map(eventOfRow);
    },
    async latest({ teamIds, keys }) {
      const ids = [...new Set([...teamIds, ...keys])];
      if (ids.length === 0) return new Map();
      const teams = await prisma.team.findMany({ where: { id: { in: ids } }, select: { id: true, alertCount: true } });
      return new Map(teams.map((team) => [team.id, { teamId: team.id, sequence: team.alertCount }]));
    },
  };
}

const listFilters = z
  .object({
    subAccountId: idSchema.nullish(),
    kind: z.enum(ALERT_KINDS, { errorMap: () => ({ message: `must be one of ${ALERT_KINDS.join(", ")}` }) }).nullish(),
  })
  .passthrough();

/** Newest first: a cursor is the team sequence of the last alert of a page. */
const ALERT_CURSOR = { arity: 1, isValid: ([sequence]: string[]) => /^[1-9]\d{0,9}$/.test(sequence!) };

export interface AlertsDeps {
  prisma: Db;
  hub: LiveHub;
  source: EventSource<SpendAlertEvent>;
  accounts: AccountsService;
  publish(event: SpendAlertEvent): void;
}

/** Spend alerts (README.md, "Budgets and alerts"): raised by the charge path, listed, and streamed live. */
export class AlertsService {
  constructor(private readonly deps: AlertsDeps) {}

  /** Publishes the alerts a committed charge raised, to every subscriber of its team, on every instance. */
  publishCharge(charge: CommittedCharge): void {
    for (const alert of charge.alerts) this.deps.publish(alertEventOf(charge, alert));
  }

  /** The sub-account an alert list or stream is limited to: a sub-account key's own; a main key's choice (null: the team). */
  async #scope(actor: Actor, subAccountId: string | null | undefined): Promise<string | null> {
    if (actor.kind === "sub") {
      if (subAccountId != null && subAccountId !== actor.accountId) throw forbidden("A sub-account key sees only its own alerts.");
      return actor.accountId;
    }
    if (subAccountId == null) return null;
    return (await this.deps.accounts.requireSubAccount(actor, subAccountId, { select: { id: true } })).id;
  }

  /** One page of the caller's alerts, newest first (spendAlerts). */
  async list(actorOrNull: Actor | null, args: object) {
    const actor = authorize(actorOrNull, "spend:read");
    const filters = parseInput(listFilters, args);
    const only = await this.#scope(actor, filters.subAccountId);
    const request = pageRequest(args, ALERT_CURSOR);
    const page = await readPage(
      request,
      (take) =>
        this.deps.prisma.spendAlert.findMany({
          where: {
            teamId: actor.teamId,
            ...(only !== null ? { accountId: only } : {}),
            ...(filters.kind ? { kind: filters.kind } : {}),
            ...(request.after ? { sequence: { lt: Number(request.after[0]) } } : {}),
          },
          orderBy: { sequence: "desc" },
          take,
        }),
      (row) => [String(row.sequence)],
    );
    return { ...page, items: page.items.map(eventOfRow) };
  }

  /** Checks a spendAlertRaised subscription (and its resume point, the team's alert sequence), and returns how to start it. */
  async watch(actorOrNull: Actor | null, args: { subAccountId?: string | null; afterSequence?: number | null }): Promise<LiveWatch<SpendAlertEvent>> {
    const actor = authorize(actorOrNull, "spend:read");
    const only = await this.#scope(actor, args.subAccountId == null ? null : parseInput(idSchema, args.subAccountId, "subAccountId"));
    const resume = new Map(args.afterSequence == null ? [] : [[actor.teamId, args.afterSequence]]);
    await checkResumePoints(this.deps.source, resume, () => "the team's alerts");
    return (sink) =>
      this.deps.hub.stream({
        topic: "alert",
        actor,
        scope: "spend:read",
        source: this.deps.source,
        watch: { key: actor.teamId },
        wants: (event) => only === null || event.subAccountId === only,
        resume,
        sink,
      });
  }
}
