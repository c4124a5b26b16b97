import { z } from "zod";
import { generateApiKey } from "../domain/apiKeys.ts";
import { assert, invalidRequest, notFound } from "../domain/errors.ts";
import { centsToNumber } from "../domain/money.ts";
import { centsSchema, idSchema, nameSchema, parseInput } from "../domain/validation.ts";
import type { Prisma } from "../generated/sqlite/client.ts";
import { OPERATOR, recordAuditEvent, type AuditActor } from "./audit.ts";
import type { ServiceDeps } from "./deps.ts";

export const ONE_MAIN_ACCOUNT_MESSAGE =
  "Team already has a main account. Create a sub-account instead, or create a new team for another main account.";

const createTeamInput = z.object({ name: nameSchema, balance: centsSchema.optional() }).strict();

function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: string }).code === "P2002";
}

const topUpAmountSchema = centsSchema.min(1, "must be at least 1 cent");

/**
 * Operator-side operations (the CLI, and the demo team at first start): no API
 * key involved, so they are audited as the operator's.
 */
export function createTeamsService(deps: ServiceDeps) {
  const { prisma, clock } = deps;

  /** The top-up, its ledger entry and its audit event, in the caller's transaction. */
  async function topUpIn(tx: Prisma.TransactionClient, teamId: string, amount: number, actor: AuditActor) {
    const now = clock.now();
    const team = await tx.team.update({
      where: { id: teamId },
      data: { balance: { increment: BigInt(amount) } },
      select: { id: true, balance: true },
    }).catch((error: unknown) => {
      if ((error as { code?: string }).code === "P2025") throw notFound("Team", teamId);
      throw error;
    });
    await tx.ledgerEntry.create({
      data: { teamId, kind: "top_up", amount: BigInt(amount), balanceAfter: team.balance, createdAt: now },
    });
    await recordAuditEvent(tx, {
      teamId,
      actor,
      action: "team.top_up",
      target: { type: "team", id: teamId },
      details: { amount, balanceAfter: centsToNumber(team.balance) },
      at: now,
    });
    return team;
  }

  async function topUp(teamIdInput: string, amountInput: number, actor: AuditActor = OPERATOR) {
    const teamId = parseInput(idSchema, teamIdInput, "team");
    const amount = parseInput(topUpAmountSchema, amountInput, "amount");
    return prisma.$transaction((tx) => topUpIn(tx, teamId, amount, actor));
  }

  return {
    /** The team, its main account and key, and its initial top-up: all or nothing. */
    async createTeam(input: { name: string; balance?: number }, actor: AuditActor = OPERATOR) {
      const data = parseInput(createTeamInput, input);
      const key = generateApiKey("main", "live");
      return prisma.$transaction(async (tx) => {
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
          at: clock.now(),
        });
        const funded = data.balance ? await topUpIn(tx, team.id, data.balance, actor) : team;
        return { team: { id: team.id, name: team.name, balance: funded.balance }, mainAccount, apiKey: key.key };
      });
    },

    topUp,

    /** Always refused for an existing team: the database's one-main-account index has the last word. */
    async createMainAccount(teamIdInput: string, nameInput: string, actor: AuditActor = OPERATOR) {
      const teamId = parseInput(idSchema, teamIdInput, "team");
      const name = parseInput(nameSchema, nameInput, "name");
      const team = await prisma.team.findUnique({ where: { id: teamId }, select: { id: true } });
      if (!team) throw notFound("Team", teamId);
      try {
        return await prisma.$transaction(async (tx) => {
          const account = await tx.account.create({ data: { teamId, kind: "main", name } });
          await recordAuditEvent(tx, {
            teamId,
            actor,
            action: "main_account.create",
            target: { type: "main_account", id: account.id },
            details: { name },
            at: clock.now(),
          });
          return account;
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw invalidRequest(ONE_MAIN_ACCOUNT_MESSAGE);
        throw error;
      }
    },

    async isEmpty() {
      return (await prisma.team.count()) === 0;
    },
  };
}

export type TeamsService = ReturnType<typeof createTeamsService>;
