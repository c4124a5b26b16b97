import { z } from "zod";
import { generateApiKey } from "../domain/apiKeys.ts";
import { assert, invalidRequest, notFound } from "../domain/errors.ts";
import { centsSchema, idSchema, nameSchema, parseInput } from "../domain/validation.ts";
import type { ServiceDeps } from "./deps.ts";

export const ONE_MAIN_ACCOUNT_MESSAGE =
  "Team already has a main account. Create a sub-account instead, or create a new team for another main account.";

const createTeamInput = z.object({ name: nameSchema, balance: centsSchema.optional() }).strict();

function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: string }).code === "P2002";
}

/** Operator-side operations (the CLI): no API key involved. */
export function createTeamsService(deps: ServiceDeps) {
  const { prisma, clock } = deps;

  async function topUp(teamIdInput: string, amountInput: number) {
    const teamId = parseInput(idSchema, teamIdInput, "team");
    const amount = parseInput(centsSchema.min(1, "must be at least 1 cent"), amountInput, "amount");
    return prisma.$transaction(async (tx) => {
      const team = await tx.team.update({
        where: { id: teamId },
        data: { balance: { increment: BigInt(amount) } },
        select: { id: true, balance: true },
      }).catch((error: unknown) => {
        if ((error as { code?: string }).code === "P2025") throw notFound("Team", teamId);
        throw error;
      });
      await tx.ledgerEntry.create({
        data: { teamId, kind: "top_up", amount: BigInt(amount), balanceAfter: team.balance, createdAt: clock.now() },
      });
      return team;
    });
  }

  return {
    async createTeam(input: { name: string; balance?: number }) {
      const data = parseInput(createTeamInput, input);
      const key = generateApiKey("main", "live");
      const team = await prisma.team.create({
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
      const funded = data.balance ? await topUp(team.id, data.balance) : team;
      return { team: { id: team.id, name: team.name, balance: funded.balance }, mainAccount, apiKey: key.key };
    },

    topUp,

    /** Always refused for an existing team: the database's one-main-account index has the last word. */
    async createMainAccount(teamIdInput: string, nameInput: string) {
      const teamId = parseInput(idSchema, teamIdInput, "team");
      const name = parseInput(nameSchema, nameInput, "name");
      const team = await prisma.team.findUnique({ where: { id: teamId }, select: { id: true } });
      if (!team) throw notFound("Team", teamId);
      try {
        return await prisma.account.create({ data: { teamId, kind: "main", name } });
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
