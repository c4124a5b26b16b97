import { z } from "zod";
import type { Prisma } from "../generated/sqlite/client.ts";
import { generateApiKey } from "../domain/apiKeys.ts";
import { notFound } from "../domain/errors.ts";
import { apiKeyNameSchema, idSchema, keyEnvironmentSchema, parseInput, storableString } from "../domain/validation.ts";
import type { AccountsService } from "./accounts.ts";
import { keyActor, recordAuditEvent } from "./audit.ts";
import { requireMainKey } from "./auth.ts";
import type { Actor, ServiceDeps } from "./deps.ts";

/** Also the REST body schema (src/rest). */
export const createKeyInput = z
  .object({
    name: apiKeyNameSchema.optional(),
    environment: keyEnvironmentSchema.optional(),
    permissions: z.array(storableString().pipe(z.string().max(100))).max(50).optional(),
  })
  .strict();
export type CreateApiKeyInput = z.input<typeof createKeyInput>;

type Query = { select?: Prisma.ApiKeySelect; include?: Prisma.ApiKeyInclude };

export function createApiKeysService(deps: ServiceDeps, accounts: AccountsService) {
  const { prisma, clock } = deps;

  return {
    async create<Q extends Query>(actorOrNull: Actor | null, subAccountId: string, input: unknown = {}, query?: Q) {
      const actor = requireMainKey(actorOrNull);
      const data = parseInput(createKeyInput, input, "input");
      const subAccount = await accounts.get(actor, parseInput(idSchema, subAccountId, "subAccountId"), { select: { id: true } });
      const environment = data.environment ?? actor.environment;
      const key = generateApiKey("sub", environment);
      const apiKey = await prisma.$transaction(async (tx) => {
        const created = await tx.apiKey.create({
          ...(query as object),
          data: {
            accountId: subAccount.id,
            name: data.name ?? "API key",
            environment,
            keyHash: key.keyHash,
            keyPrefix: key.keyPrefix,
            permissions: data.permissions ?? [],
          },
        });
        await recordAuditEvent(tx, {
          teamId: actor.teamId,
          actor: keyActor(actor),
          action: "api_key.create",
          target: { type: "api_key", id: created.id },
          details: { subAccountId: subAccount.id, name: created.name, environment: created.environment },
          at: clock.now(),
        });
        return created;
      });
      return { apiKey, key: key.key };
    },

    async list(actorOrNull: Actor | null, subAccountId: string) {
      const subAccount = await accounts.get(actorOrNull, subAccountId, { select: { id: true } });
      return prisma.apiKey.findMany({ where: { accountId: subAccount.id }, orderBy: { id: "asc" } });
    },

    /** Revokes at once; revoking a revoked key returns it unchanged (and records no event). */
    async revoke<Q extends Query>(actorOrNull: Actor | null, subAccountId: string, apiKeyId: string, query?: Q) {
      const actor = requireMainKey(actorOrNull);
      const checkedSubAccountId = parseInput(idSchema, subAccountId, "subAccountId");
      const id = parseInput(idSchema, apiKeyId, "apiKeyId");
      const subAccount = await accounts.get(actor, checkedSubAccountId, { select: { id: true } });
      const now = clock.now();
      const { apiKey, revoked } = await prisma.$transaction(async (tx) => {
        const { count } = await tx.apiKey.updateMany({
          where: { id, accountId: subAccount.id, revokedAt: null },
          data: { revokedAt: now },
        });
        const apiKey = await tx.apiKey.findFirst({ ...(query as object), where: { id, accountId: subAccount.id } });
        if (!apiKey) throw notFound("API key", id);
        if (count > 0) {
          await recordAuditEvent(tx, {
            teamId: actor.teamId,
            actor: keyActor(actor),
            action: "api_key.revoke",
            target: { type: "api_key", id },
            details: { subAccountId: subAccount.id },
            at: now,
          });
        }
        return { apiKey, revoked: count > 0 };
      });
      if (revoked) deps.signals.publish({ type: "keys_revoked", apiKeyIds: [id] });
      return apiKey;
    },
  };
}

export type ApiKeysService = ReturnType<typeof createApiKeysService>;
