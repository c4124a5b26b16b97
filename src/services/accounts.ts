import { z } from "zod";
import { Prisma } from "../generated/sqlite/client.ts";
import { generateApiKey } from "../domain/apiKeys.ts";
import { notFound } from "../domain/errors.ts";
import { centsToNumber } from "../domain/money.ts";
import {
  LIMITS,
  accountStatusSchema,
  centsSchema,
  externalIdSchema,
  idSchema,
  metadataSchema,
  nameSchema,
  storableString,
  pageSizeSchema,
  parseInput,
} from "../domain/validation.ts";
import { SYSTEM, keyActor, recordAuditEvent, type AuditActor } from "./audit.ts";
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
    externalId: storableString().pipe(z.string().max(LIMITS.externalIdMaxChars, `must be at most ${LIMITS.externalIdMaxChars} characters`)).nullish(),
    first: pageSizeSchema.nullish(),
    // GraphQL's connection also takes `last`: it must not bypass the page-size limit.
    last: pageSizeSchema.nullish(),
    limit: pageSizeSchema.nullish(),
    after: z.string().max(512).nullish(),
    before: z.string().max(512).nullish(),
    cursor: z.string().max(512).nullish(),
  })
  .passthrough();

type Tx = Prisma.TransactionClient;

const centsOrNull = (cents: bigint | null) => (cents === null ? null : centsToNumber(cents));

/**
 * Takes the sub-account's write lock as the transaction's first statement, or
 * throws `not_found`. Then the values read next are the ones this transaction
 * replaces (PostgreSQL holds the row lock; SQLite holds its write lock, and a
 * transaction that read first could fail with SQLITE_BUSY when it writes).
 */
async function lockSubAccount(tx: Tx, where: Prisma.AccountWhereUniqueInput, now: Date) {
  const { count } = await tx.account.updateMany({ where, data: { updatedAt: now } });
  if (count === 0) throw notFound("Sub-account", where.id!);
  return tx.account.findUniqueOrThrow({ where });
}

type AccountRow = Awaited<ReturnType<typeof lockSubAccount>>;
type UpdateData = z.output<typeof updateSubAccountInput>;

/**
 * The audited fields an update changes, with their values before and after.
 * Metadata is named but not copied: it can be large, and the account holds it.
 */
function fieldChanges(current: AccountRow, data: UpdateData) {
  const next = {
    name: data.name,
    externalId: data.externalId,
    creditLimit: data.creditLimit === undefined ? undefined : centsOrNull(storedCreditLimit(data.creditLimit) ?? null),
  };
  const previous = { name: current.name, externalId: current.externalId, creditLimit: centsOrNull(current.creditLimit) };
  const changedFields: string[] = [];
  const before: Record<string, string | number | null> = {};
  const after: Record<string, string | number | null> = {};
  for (const field of ["name", "externalId", "creditLimit"] as const) {
    if (next[field] === undefined || next[field] === previous[field]) continue;
    changedFields.push(field);
    before[field] = previous[field];
    after[field] = next[field];
  }
  const metadata = data.metadata === undefined ? undefined : (data.metadata ?? null);
  if (metadata !== undefined && JSON.stringify(metadata) !== JSON.stringify(current.metadata ?? null)) changedFields.push("metadata");
  return { changedFields, before, after };
}

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
      const subAccount = await prisma.$transaction(async (tx) => {
        const { apiKeys, ...created } = await tx.account.create({
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
          include: { apiKeys: { select: { id: true } } },
        });
        await recordAuditEvent(tx, {
          teamId: actor.teamId,
          actor: keyActor(actor),
          action: "sub_account.create",
          target: { type: "sub_account", id: created.id },
          details: {
            name: created.name,
            externalId: created.externalId,
            creditLimit: centsOrNull(created.creditLimit),
            apiKeyId: apiKeys[0]!.id,
          },
          at: clock.now(),
        });
        return created;
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

    /**
     * Audited as one event per kind of change: `sub_account.update` for the
     * fields, `sub_account.suspend` or `.reactivate` for the status. A call that
     * changes nothing records nothing.
     */
    async update<Q extends Query>(actorOrNull: Actor | null, id: string, input: unknown, query?: Q) {
      const actor = requireMainKey(actorOrNull);
      const where = subAccountWhere(actor, id);
      const data = parseInput(updateSubAccountInput, input, "input");
      const now = clock.now();
      const { updated, suspending } = await prisma.$transaction(async (tx) => {
        const current = await lockSubAccount(tx, where, now);
        const reactivating = data.status === "active" && current.status !== "active";
        const suspending = data.status === "inactive" && current.status === "active";
        const updated = await tx.account.update({
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
        const event = { teamId: actor.teamId, actor: keyActor(actor), target: { type: "sub_account", id: current.id }, at: now } as const;
        const changes = fieldChanges(current, data);
        if (changes.changedFields.length > 0) await recordAuditEvent(tx, { ...event, action: "sub_account.update", details: changes });
        if (suspending || reactivating) {
          await recordAuditEvent(tx, {
            ...event,
            action: suspending ? "sub_account.suspend" : "sub_account.reactivate",
            details: {
              before: { status: current.status },
              after: { status: data.status! },
              ...(reactivating && current.deletionScheduledAt ? { cancelledDeletionScheduledAt: current.deletionScheduledAt.toISOString() } : {}),
            },
          });
        }
        return { updated, suspending };
      });
      if (suspending) deps.signals.publish({ type: "account_suspended", accountId: updated.id as string });
      return updated;
    },

    async deactivate<Q extends Query>(actorOrNull: Actor | null, id: string, query?: Q) {
      const actor = requireMainKey(actorOrNull);
      const where = subAccountWhere(actor, id);
      const now = clock.now();
      const { subAccount, revokedKeyIds, deletionScheduledAt } = await prisma.$transaction(async (tx) => {
        const current = await lockSubAccount(tx, where, now);
        const deletionScheduledAt = current.deletionScheduledAt ?? new Date(now.getTime() + DELETION_GRACE_DAYS * DAY_MS);
        const revokedKeyIds = (await tx.apiKey.findMany({ where: { accountId: current.id, revokedAt: null }, select: { id: true } })).map((key) => key.id);
        if (revokedKeyIds.length > 0) await tx.apiKey.updateMany({ where: { id: { in: revokedKeyIds } }, data: { revokedAt: now } });
        const subAccount = await tx.account.update({
          ...(query as object),
          where,
          data: { status: "inactive", deactivatedAt: now, deletionScheduledAt },
        });
        await recordAuditEvent(tx, {
          teamId: actor.teamId,
          actor: keyActor(actor),
          action: "sub_account.deactivate",
          target: { type: "sub_account", id: current.id },
          details: {
            before: { status: current.status },
            after: { status: "inactive" },
            keysRevoked: revokedKeyIds.length,
            revokedApiKeyIds: revokedKeyIds,
            deletionScheduledAt: deletionScheduledAt.toISOString(),
          },
          at: now,
        });
        return { subAccount, revokedKeyIds, deletionScheduledAt };
      });
      deps.signals.publish({ type: "account_suspended", accountId: where.id! });
      if (revokedKeyIds.length > 0) deps.signals.publish({ type: "keys_revoked", apiKeyIds: revokedKeyIds });
      const keysRevoked = revokedKeyIds.length;
      return {
        subAccount,
        keysRevoked,
        deletionScheduledAt,
        message:
          `Sub-account deactivated and ${keysRevoked} API key(s) revoked. It will be deleted on ` +
          `${deletionScheduledAt.toISOString()} unless reactivated before then (revoked keys stay revoked; create new ones).`,
      };
    },

    /**
     * Removes sub-accounts whose grace period has ended, with their keys and
     * messages (cascade), each in its own transaction with its audit event. The
     * ledger and the audit log are kept. Returns the ids removed.
     */
    async purgeExpired(now: Date = clock.now(), actor: AuditActor = SYSTEM) {
      const expiredWhere = { kind: "sub", status: "inactive", deletionScheduledAt: { lte: now } } satisfies Prisma.AccountWhereInput;
      const expired = await prisma.account.findMany({
        where: expiredWhere,
        select: { id: true, teamId: true, name: true, externalId: true, totalSpent: true, deletionScheduledAt: true },
        take: 1000,
      });
      const purged: string[] = [];
      for (const account of expired) {
        const removed = await prisma.$transaction(async (tx) => {
          const { count } = await tx.account.deleteMany({ where: { ...expiredWhere, id: account.id } });
          if (count === 0) return false;
          await recordAuditEvent(tx, {
            teamId: account.teamId,
            actor,
            action: "sub_account.purge",
            target: { type: "sub_account", id: account.id },
            details: {
              name: account.name,
              externalId: account.externalId,
              totalSpent: centsToNumber(account.totalSpent),
              deletionScheduledAt: account.deletionScheduledAt!.toISOString(),
            },
            at: now,
          });
          return true;
        });
        if (removed) purged.push(account.id);
      }
      return purged;
    },
  };
}

export type AccountsService = ReturnType<typeof createAccountsService>;
