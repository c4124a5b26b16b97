import type { CommittedCharge } from "../../db/charges.ts";
import { forbidden, invalidRequest } from "../../domain/errors.ts";
import { idSchema, parseInput } from "../../domain/validation.ts";
import type { SpendUpdate } from "../../events/types.ts";
import { authorize } from "../auth.ts";
import type { Actor } from "../deps.ts";
import { checkResumePoints, type EventSource, type LiveHub, type Sink } from "../live/index.ts";
import { spendUpdateOf } from "./ledger.ts";

export { RESUME_MAX } from "../live/index.ts";

/** Cursors one team-wide subscription may resume from: one per sub-account of a large team. */
export const RESUME_CURSORS_MAX = 10_000;

/** Starts a checked subscription's stream into `sink`; returns its stop. */
export type LiveWatch<E> = (sink: Sink<E>) => Promise<() => void>;

export interface SpendServiceDeps {
  hub: LiveHub;
  source: EventSource<SpendUpdate>;
  /** Throws `not_found` unless each sub-account belongs to the caller's team (the accounts service's rule), in one query. */
  requireSubAccounts(actor: Actor, subAccountIds: readonly string[]): Promise<void>;
  publish(update: SpendUpdate): void;
}

/** What a subscription asks for: one sub-account or the team, and where to resume. */
export interface SpendWatchArgs {
  subAccountId?: string | null;
  /** With one sub-account: replay its charges after this sequence, then go on live. */
  afterSequence?: number | null;
  /** With the team: replay each named sub-account's charges after its sequence. */
  after?: readonly { subAccountId: string; afterSequence: number }[] | null;
}

/** The sub-account a subscription is limited to, or null for the main key's whole team. */
async function subscriptionScope(deps: SpendServiceDeps, actor: Actor, subAccountIdInput: string | null | undefined): Promise<string | null> {
  if (subAccountIdInput == null) return actor.kind === "sub" ? actor.accountId : null;
  const only = parseInput(idSchema, subAccountIdInput, "subAccountId");
  if (actor.kind === "sub" && only !== actor.accountId) throw forbidden("A sub-account key can only subscribe to its own spend.");
  if (actor.kind === "main") await deps.requireSubAccounts(actor, [only]);
  return only;
}

/** Per sub-account, the sequence to resume after. */
async function resumePoints(deps: SpendServiceDeps, actor: Actor, only: string | null, args: SpendWatchArgs): Promise<Map<string, number>> {
  const points = new Map<string, number>();
  if (args.afterSequence != null) {
    if (only === null) throw invalidRequest("afterSequence resumes one sub-account: name it with subAccountId, or use after for the whole team.", { field: "afterSequence" });
    points.set(only, args.afterSequence);
  }
  const cursors = args.after ?? [];
  if (cursors.length > RESUME_CURSORS_MAX) {
    throw invalidRequest(`Invalid after: at most ${RESUME_CURSORS_MAX} cursors (one per sub-account).`, { field: "after", max: RESUME_CURSORS_MAX });
  }
  for (const [index, cursor] of cursors.entries()) {
    const field = `after.${index}`;
    const id = parseInput(idSchema, cursor.subAccountId, `${field}.subAccountId`);
    if (only !== null && id !== only) throw invalidRequest(`Invalid ${field}.subAccountId: this subscription follows ${only} only.`, { field: `${field}.subAccountId` });
    points.set(id, cursor.afterSequence);
  }
  if (actor.kind === "main" && only === null) await deps.requireSubAccounts(actor, [...points.keys()]);
  await checkResumePoints(deps.source, points, (accountId) => `sub-account ${accountId}`);
  return points;
}

/** Live spend: each committed charge of a sub-account, to its team's subscribers on every instance. */
export function createSpendService(deps: SpendServiceDeps) {
  return {
    /** Publishes a committed charge of a sub-account to every subscriber of its team, on every instance. */
    publishCharge(charge: CommittedCharge): void {
      if (charge.accountKind !== "sub") return;
      deps.publish(spendUpdateOf(charge));
    },

    /**
     * Checks a spend subscription (a main key: its whole team or one of its
     * sub-accounts; a sub-account key: its own account only) and where it
     * resumes, and returns how to start its stream. Refusals are thrown here,
     * before anything streams.
     */
    async watch(actorOrNull: Actor | null, args: SpendWatchArgs): Promise<LiveWatch<SpendUpdate>> {
      const actor = authorize(actorOrNull, "spend:read");
      const only = await subscriptionScope(deps, actor, args.subAccountId);
      const resume = await resumePoints(deps, actor, only, args);
      return (sink) =>
        deps.hub.stream({
          topic: "spend",
          actor,
          scope: "spend:read",
          source: deps.source,
          watch: only === null ? { team: actor.teamId } : { key: only },
          wants: () => true,
          resume,
          sink,
        });
    },
  };
}
