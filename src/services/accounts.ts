import { z } from "zod";
import { Prisma } from "../generated/sqlite/client.ts";
import { generateApiKey } from "../domain/apiKeys.ts";
import { notFound } from "../domain/errors.ts";
import {
  LIMITS,
  accountStatusSchema,
  centsSchema,
  externalIdSchema,
  idSchema,
  metadataSchema,
  nameSchema,
  pageSizeSchema,
  parseInput,
} from "../domain/validation.ts";
import { requireMainKey } from "./auth.ts";
import type { Actor, ServiceDeps } from "./deps.ts";

/** Days between deactivation and the purge (DESIGN.md section 2). */
export const DELETION_GRACE_DAYS = 14;
const DAY_MS = 86_400_000;

/** `0` and `null` both mean "no limit", stored as NULL. */
function storedCreditLimit(limit: number | null | undefined): bigint | null | undefined {
  if (limit === undefined) return undefined;
  return limit === null || limit === 0 ? null : BigInt(limit);
}

/** Also the REST body schema (src/rest): one rule, one place. */
export const createSubAccountInput = z
  .object({
    name: nameSchema,
    externalId: externalIdSchema.nullish(),
    creditLimit: centsSchema.nullish(),
    metadata: metadataSchema.nullish(),
  })
  .strict();
export type CreateSubAccountInput = z.input<typeof createSubAccountInput>;

export const updateSubAccountInput = z
  .object({
    name: nameSchema.optional(),
    externalId: externalIdSchema.nullish(),
    creditLimit: centsSchema.nullish(),
    metadata: metadataSchema.nullish(),
    status: accountStatusSchema.optional(),
  })
  .strict();
export type UpdateSubAccountInput = z.input<typeof updateSubAccountInput>;

const listFilters = z
  .object({
    status: accountStatusSchema.nullish(),
    externalId: z.string().max(LIMITS.externalIdMaxChars, `must be at most ${LIMITS.externalIdMaxChars} characters`).nullish(),
    first: pageSizeSchema.nullish(),
    // GraphQL's connection also takes `last`: it must not bypass the page-size limit.
    last: pageSizeSchema.nullish(),
    limit: pageSizeSchema.nullish(),
    after: z.string().max(512).nullish(),
    before: z.string().max(512).nullish(),
    cursor: z.string().max(512).nullish(),
  })
  .passthrough();

/** Spread into a Prisma query: the Pothos selection for GraphQL, nothing for REST. */
type Query = { select?: Prisma.AccountSelect; include?: Prisma.AccountInclude };

export function createAccountsService(deps: ServiceDeps) {
  const { prisma, clock } = deps;

  function subAccountWhere(actor: Actor, id: string): Prisma.AccountWhereUniqueInput {
    return { id: parseInput(idSchema, id, "id"), teamId: actor.teamId, kind: "sub" };
  }

  /** Throws `not_found` unless `id` is a sub-account of the caller's team; another team's id looks unknown. */
  async function requireSubAccount<Q extends Query>(actor: Actor, id: string, query?: Q) {
    const row = await prisma.account.findUnique({ ...(query as object), where: subAccountWhere(actor, id) });
    if (!row) throw notFound("Sub-account", id);
    return row as NonNullable<typeof row>;
  }

  function filterWhere(actor: Actor, filters: object): Prisma.AccountWhereInput {
    const parsed = parseInput(listFilters, filters);
    return {
      teamId: actor.teamId,
      kind: "sub",
      ...(parsed.status ? { status: parsed.status } : {}),
      ...(parsed.externalId != null ? { externalId: parsed.externalId } : {}),
    };
  }

  return {
    subAccountWhere,

    async create(actorOrNull: Actor | null, input: unknown) {
      const actor = requireMainKey(actorOrNull);
      const data = parseInput(createSubAccountInput, input, "input");
      const key = generateApiKey("sub", actor.environment);
      const subAccount = await prisma.account.create({
        data: {
          teamId: actor.teamId,
          kind: "sub",
          name: data.name,
          externalId: data.externalId ?? null,
          creditLimit: storedCreditLimit(data.creditLimit) ?? null,
          metadata: (data.metadata ?? undefined) as Prisma.InputJsonValue | undefined,
          apiKeys: {
            create: {
              name: "Default",
              environment: actor.environment,
              keyHash: key.keyHash,
              keyPrefix: key.keyPrefix,
              permissions: [],
            },
          },
        },
      });
      return { subAccount, apiKey: key.key };
    },

    async get<Q extends Query>(actorOrNull: Actor | null, id: string, query?: Q) {
      return requireSubAccount(requireMainKey(actorOrNull), id, query);
    },

    /** One page in a stable order (by id), for GraphQL (Pothos supplies take/skip/cursor) and REST. */
    async findPage<Q extends Query & { take?: number; skip?: number; cursor?: Prisma.AccountWhereUniqueInput }>(
      actorOrNull: Actor | null,
      filters: object,
      query: Q,
    ) {
      const actor = requireMainKey(actorOrNull);
      return prisma.account.findMany({ ...(query as object), where: filterWhere(actor, filters), orderBy: { id: "asc" } });
    },

    async count(actorOrNull: Actor | null, filters: object) {
      const actor = requireMainKey(actorOrNull);
      return prisma.account.count({ where: filterWhere(actor, filters) });
    },

    async update<Q extends Query>(actorOrNull: Actor | null, id: string, input: unknown, query?: Q) {
      const actor = requireMainKey(actorOrNull);
      const where = subAccountWhere(actor, id);
      const data = parseInput(updateSubAccountInput, input, "input");
      const current = await requireSubAccount(actor, id, { select: { status: true } });
      const reactivating = data.status === "active" && current.status !== "active";
      const suspending = data.status === "inactive" && current.status === "active";
      const updated = await prisma.account.update({
        ...(query as object),
        where,
        data: {
          name: data.name,
          externalId: data.externalId,
          creditLimit: storedCreditLimit(data.creditLimit),
          metadata: data.metadata === null ? Prisma.DbNull : (data.metadata as Prisma.InputJsonValue | undefined),
          status: data.status,
          // Reactivating within the grace period cancels the scheduled deletion; revoked keys stay revoked.
          ...(reactivating ? { deactivatedAt: null, deletionScheduledAt: null } : {}),
        },
      });
      if (suspending) deps.signals.publish({ type: "account_suspended", accountId: updated.id as string });
      return updated;
    },

    async deactivate<Q extends Query>(actorOrNull: Actor | null, id: string, query?: Q) {
      const actor = requireMainKey(actorOrNull);
      const where = subAccountWhere(actor, id);
      const current = await requireSubAccount(actor, id, { select: { deletionScheduledAt: true } });
      const now = clock.now();
      const deletionScheduledAt = current.deletionScheduledAt ?? new Date(now.getTime() + DELETION_GRACE_DAYS * DAY_MS);
      const revokedKeys = await prisma.apiKey.findMany({ where: { accountId: where.id, revokedAt: null }, select: { id: true } });
      const [revoked, subAccount] = await prisma.$transaction([
        prisma.apiKey.updateMany({ where: { accountId: where.id, revokedAt: null }, data: { revokedAt: now } }),
        prisma.account.update({
          ...(query as object),
          where,
          data: { status: "inactive", deactivatedAt: now, deletionScheduledAt },
        }),
      ]);
      deps.signals.publish({ type: "account_suspended", accountId: where.id! });
      if (revokedKeys.length > 0) deps.signals.publish({ type: "keys_revoked", apiKeyIds: revokedKeys.map((k) => k.id) });
      return {
        subAccount,
        keysRevoked: revoked.count,
        deletionScheduledAt,
        message:
          `Sub-account deactivated and ${revoked.count} API key(s) revoked. It will be deleted on ` +
          `${deletionScheduledAt.toISOString()} unless reactivated before then (revoked keys stay revoked; create new ones).`,
      };
    },

    /**
     * Removes sub-accounts whose grace period has ended, with their keys and
     * messages (cascade). The ledger is kept for audit. Returns the ids removed.
     */
    async purgeExpired(now: Date = clock.now()) {
      const expired = await prisma.account.findMany({
        where: { kind: "sub", status: "inactive", deletionScheduledAt: { lte: now } },
        select: { id: true },
        take: 1000,
      });
      if (expired.length === 0) return [];
      const ids = expired.map((row) => row.id);
      await prisma.account.deleteMany({ where: { id: { in: ids }, kind: "sub", status: "inactive", deletionScheduledAt: { lte: now } } });
      return ids;
    },
  };
}

export type AccountsService = ReturnType<typeof createAccountsService>;
