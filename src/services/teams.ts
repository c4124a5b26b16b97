import { z } from "zod";
import { generateApiKey } from "../domain/apiKeys.ts";
import { assert, invalidRequest, notFound } from "../domain/errors.ts";
import { centsToNumber } from "../domain/money.ts";
import { centsSchema, idSchema, nameSchema, parseInput } from "../domain/validation.ts";
import type { Prisma } from "../generated/sqlite/client.ts";
import { OPERATOR, keyActor, recordAuditEvent, type AuditActor } from "./audit.ts";
import { authorize } from "./auth.ts";
import type { Actor, ServiceDeps } from "./deps.ts";
import { recordWebhookEvent, topUpEventData } from "./webhooks/events.ts";

export const ONE_MAIN_ACCOUNT_MESSAGE =
  "Team already has a main account. Create a sub-account instead, or create a new team for another main account.";

const createTeamInput = z.object({ name: nameSchema, balance: centsSchema.optional() }).strict();

function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: string }).code === "P2002";
}

const topUpAmountSchema = centsSchema.min(1, "must be at least 1 cent");

/** Also the REST body schema (src/rest). */
export const updateTeamInput = z.object({ lowBalanceThreshold: centsSchema.nullish() }).strict();

/**
 * Operator-side operations (the CLI, and the demo team at first start): no API
 * key involved, so they are audited as the operator's.
 */
export class TeamsService {
  constructor(private readonly deps: ServiceDeps) {}

  /** The team, its main account and key, and its initial top-up: all or nothing. */
  async createTeam(input: { name: string; balance?: number }, actor: AuditActor = OPERATOR) {
    const data = parseInput(createTeamInput, input);
    const key = generateApiKey("main", "live");
    const created = await this.deps.prisma.$transaction(async (tx) => {
      const team = await tx.team.create({
        data: {
          name: data.name,
          accounts: {
            create: {
              kind: "main",
              name: data.name,
              apiKeys: { create: { name: "Main key", environment: "live", keyHash: key.keyHash, keyPrefix: key.keyPrefix, permissions: [] } },
            },
          },
        },
        include: { accounts: { select: { id: true } } },
      });
      const mainAccount = team.accounts[0];
      assert(mainAccount, "a new team has its main account");
      await recordAuditEvent(tx, {
        teamId: team.id,
        actor,
        action: "team.create",
        target: { type: "team", id: team.id },
        details: { name: team.name, mainAccountId: mainAccount.id },
        at: this.deps.clock.now(),
      });
      const funded = data.balance ? await this.#topUpIn(tx, team.id, data.balance, actor) : team;
      return { team: { id: team.id, name: team.name, balance: funded.balance }, mainAccount, apiKey: key.key };
    });
    this.deps.outbox.written();
    return created;
  }

  async topUp(teamIdInput: string, amountInput: number, actor: AuditActor = OPERATOR) {
    const teamId = parseInput(idSchema, teamIdInput, "team");
    const amount = parseInput(topUpAmountSchema, amountInput, "amount");
    const team = await this.deps.prisma.$transaction((tx) => this.#topUpIn(tx, teamId, amount, actor));
    this.deps.outbox.written();
    return team;
  }

  /** The top-up, its ledger entry and its audit event, in the caller's transaction. */
  async #topUpIn(tx: Prisma.TransactionClient, teamId: string, amount: number, actor: AuditActor) {
    const now = this.deps.clock.now();
    const team = await tx.team
      .update({ where: { id: teamId }, data: { balance: { increment: BigInt(amount) } }, select: { id: true, name: true, balance: true, currency: true } })
      .catch((error: unknown) => {
        if ((error as { code?: string }).code === "P2025") throw notFound("Team", teamId);
        throw error;
      });
    await tx.ledgerEntry.create({ data: { teamId, kind: "top_up", amount: BigInt(amount), balanceAfter: team.balance, createdAt: now } });
    await recordAuditEvent(tx, {
      teamId,
      actor,
      action: "team.top_up",
      target: { type: "team", id: teamId },
      details: { amount, balanceAfter: centsToNumber(team.balance) },
      at: now,
    });
    await recordWebhookEvent(tx, { teamId, type: "team.topped_up", data: topUpEventData(team, amount), at: now });
    return team;
  }

  /** Always refused for an existing team: the database's one-main-account index has the last word. */
  async createMainAccount(teamIdInput: string, nameInput: string, actor: AuditActor = OPERATOR) {
    const teamId = parseInput(idSchema, teamIdInput, "team");
    const name = parseInput(nameSchema, nameInput, "name");
    const team = await this.deps.prisma.team.findUnique({ where: { id: teamId }, select: { id: true } });
    if (!team) throw notFound("Team", teamId);
    try {
      return await this.deps.prisma.$transaction(async (tx) => {
        const account = await tx.account.create({ data: { teamId, kind: "main", name } });
        await recordAuditEvent(tx, {
          teamId,
          actor,
          action: "main_account.create",
          target: { type: "main_account", id: account.id },
          details: { name },
          at: this.deps.clock.now(),
        });
        return account;
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw invalidRequest(ONE_MAIN_ACCOUNT_MESSAGE);
      throw error;
    }
  }

  /** A team's own settings (updateTeam, scope team:write): the low-balance threshold of its alerts. */
  async update(actorOrNull: Actor | null, input: unknown) {
    const actor = authorize(actorOrNull, "team:write");
    const data = parseInput(updateTeamInput, input, "input");
    const now = this.deps.clock.now();
    return this.deps.prisma.$transaction(async (tx) => {
      const before = await tx.team.findUniqueOrThrow({ where: { id: actor.teamId }, select: { lowBalanceThreshold: true } });
      const team = await tx.team.update({
        where: { id: actor.teamId },
        data: { ...(data.lowBalanceThreshold !== undefined ? { lowBalanceThreshold: data.lowBalanceThreshold === null ? null : BigInt(data.lowBalanceThreshold) } : {}) },
      });
      const changed = data.lowBalanceThreshold !== undefined && before.lowBalanceThreshold !== team.lowBalanceThreshold;
      if (changed) {
        const cents = (value: bigint | null) => (value === null ? null : centsToNumber(value));
        await recordAuditEvent(tx, {
          teamId: actor.teamId,
          actor: keyActor(actor),
          action: "team.update",
          target: { type: "team", id: actor.teamId },
          details: { changedFields: ["lowBalanceThreshold"], before: { lowBalanceThreshold: cents(before.lowBalanceThreshold) }, after: { lowBalanceThreshold: cents(team.lowBalanceThreshold) } },
          at: now,
        });
      }
      return team;
    });
  }

  async isEmpty() {
    return (await this.deps.prisma.team.count()) === 0;
  }
}
