import { z } from "zod";
import { Prisma } from "../generated/sqlite/client.ts";
import { generateApiKey } from "../domain/apiKeys.ts";
import { notFound } from "../domain/errors.ts";
import { centsToNumber } from "../domain/money.ts";
import { pageRequest, readPage } from "../domain/paging.ts";
import {
  LIMITS,
  accountStatusSchema,
  centsSchema,
  externalIdSchema,
  idSchema,
  metadataSchema,
  nameSchema,
  storableString,
  charactersBetween,
  parseInput,
} from "../domain/validation.ts";
import { SYSTEM, keyActor, recordAuditEvent, type AuditActor } from "./audit.ts";
import { alertThresholdsInput, auditedBudget, budgetColumnsFor, budgetInput } from "./budgets.ts";
import { authorize } from "./auth.ts";
import type { Actor, ServiceDeps } from "./deps.ts";
import { recordApiKeyEvents, recordSubAccountEvents, recordWebhookEvent, subAccountEventData } from "./webhooks/events.ts";
import type { WebhookEventType } from "../domain/webhooks.ts";
import type { SubAccountListing } from "../db/subAccountListing.ts";

/** Days between deactivation and the purge (README.md, the tour's "Deactivate"). */
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
    budget: budgetInput.nullish(),
    alertThresholds: alertThresholdsInput.nullish(),
    metadata: metadataSchema.nullish(),
  })
  .strict();
export type CreateSubAccountInput = z.input<typeof createSubAccountInput>;

export const updateSubAccountInput = z
  .object({
    name: nameSchema.optional(),
    externalId: externalIdSchema.nullish(),
    creditLimit: centsSchema.nullish(),
    budget: budgetInput.nullish(),
    alertThresholds: alertThresholdsInput.nullish(),
    metadata: metadataSchema.nullish(),
    status: accountStatusSchema.optional(),
  })
  .strict();
export type UpdateSubAccountInput = z.input<typeof updateSubAccountInput>;

/** The list's filters; paging arguments beside them are read by src/domain/paging.ts. */
const listFilters = z
  .object({
    status: accountStatusSchema.nullish(),
    externalId: storableString().pipe(charactersBetween(0, LIMITS.externalIdMaxChars)).nullish(),
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
    budget: data.budget === undefined ? undefined : data.budget === null ? null : { amount: data.budget.amount, period: data.budget.period },
    alertThresholds: data.alertThresholds,
  };
  const previous = {
    name: current.name,
    externalId: current.externalId,
    creditLimit: centsOrNull(current.creditLimit),
    budget: auditedBudget(current),
    alertThresholds: (current.alertThresholds as number[] | null) ?? null,
  };
  const changedFields: string[] = [];
  const before: Record<string, Prisma.InputJsonValue | null> = {};
  const after: Record<string, Prisma.InputJsonValue | null> = {};
  for (const field of ["name", "externalId", "creditLimit", "budget", "alertThresholds"] as const) {
    if (next[field] === undefined || JSON.stringify(next[field]) === JSON.stringify(previous[field])) continue;
    changedFields.push(field);
    before[field] = previous[field];
    after[field] = next[field];
  }
  const metadata = data.metadata === undefined ? undefined : (data.metadata ?? null);
  if (metadata !== undefined && JSON.stringify(metadata) !== JSON.stringify(current.metadata ?? null)) changedFields.push("metadata");
  return { changedFields, before, after };
}

/** Spread into a Prisma query: the GraphQL selection (src/graphql), nothing for REST. */
type Query = { select?: Prisma.AccountSelect; include?: Prisma.AccountInclude };

/** Sub-accounts: create, read, list, update, suspend and reactivate, deactivate, purge. */
export class AccountsService {
  constructor(private readonly deps: ServiceDeps) {}

  /** The one rule of "this id is a sub-account of the caller's team": anything else is `not_found`. */
  subAccountWhere(actor: Actor, id: string): Prisma.AccountWhereUniqueInput {
    return { id: parseInput(idSchema, id, "id"), teamId: actor.teamId, kind: "sub" };
  }

  /** Throws `not_found` unless `id` is a sub-account of the caller's team; another team's id looks unknown. */
  async requireSubAccount<Q extends Query>(actor: Actor, id: string, query?: Q) {
    const row = await this.deps.prisma.account.findUnique({ ...(query as object), where: this.subAccountWhere(actor, id) });
    if (!row) throw notFound("Sub-account", id);
    return row as NonNullable<typeof row>;
  }

  /** Throws `not_found` naming the first of `ids` that is not a sub-account of the caller's team: one query for them all. */
  async requireSubAccounts(actor: Actor, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const found = await this.deps.prisma.account.findMany({ where: { id: { in: [...ids] }, teamId: actor.teamId, kind: "sub" }, select: { id: true } });
    const known = new Set(found.map((row) => row.id));
    const missing = ids.find((id) => !known.has(id));
    if (missing !== undefined) throw notFound("Sub-account", missing);
  }

  /** The list's filters (status, externalId), each null when not given. */
  #filters(args: object): { status: string | null; externalId: string | null } {
    const parsed = parseInput(listFilters, args);
    return { status: parsed.status || null, externalId: parsed.externalId ?? null };
  }

  #filterWhere(actor: Actor, args: object): Prisma.AccountWhereInput {
    const { status, externalId } = this.#filters(args);
    return { teamId: actor.teamId, kind: "sub", ...(status !== null ? { status } : {}), ...(externalId !== null ? { externalId } : {}) };
  }

  async create(actorOrNull: Actor | null, input: unknown) {
    const actor = authorize(actorOrNull, "sub_accounts:write");
    const data = parseInput(createSubAccountInput, input, "input");
    const key = generateApiKey("sub", actor.environment);
    const now = this.deps.clock.now();
    const subAccount = await this.deps.prisma.$transaction(async (tx) => {
      const { apiKeys, ...created } = await tx.account.create({
        data: {
          teamId: actor.teamId,
          kind: "sub",
          name: data.name,
          externalId: data.externalId ?? null,
          creditLimit: storedCreditLimit(data.creditLimit) ?? null,
          ...(data.budget ? await budgetColumnsFor(tx, null, data.budget, null, now) : {}),
          alertThresholds: data.alertThresholds ?? undefined,
          metadata: (data.metadata ?? undefined) as Prisma.InputJsonValue | undefined,
          apiKeys: { create: { name: "Default", environment: actor.environment, keyHash: key.keyHash, keyPrefix: key.keyPrefix, permissions: [] } },
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
          budget: auditedBudget(created),
          alertThresholds: (created.alertThresholds as number[] | null) ?? null,
          apiKeyId: apiKeys[0]!.id,
        },
        at: now,
      });
      await recordWebhookEvent(tx, { teamId: actor.teamId, type: "sub_account.created", data: subAccountEventData(created, now), at: now });
      await recordApiKeyEvents(tx, actor.teamId, [apiKeys[0]!.id], "api_key.created", now);
      return created;
    });
    this.deps.outbox.written();
    return { subAccount, apiKey: key.key };
  }

  async get<Q extends Query>(actorOrNull: Actor | null, id: string, query?: Q) {
    return this.requireSubAccount(authorize(actorOrNull, "sub_accounts:read"), id, query);
  }

  /** One page in a stable order (by id), with the filters and paging arguments of GraphQL or REST. */
  async list<Q extends Query>(actorOrNull: Actor | null, args: object, query?: Q) {
    const actor = authorize(actorOrNull, "sub_accounts:read");
    const where = this.#filterWhere(actor, args);
    const page = pageRequest(args);
    const after = page.after ? { id: { gt: page.after[0] } } : {};
    return readPage(
      page,
      (take) => this.deps.prisma.account.findMany({ ...(query as object), where: { ...where, ...after }, orderBy: { id: "asc" }, take }),
      (row) => [row.id],
    );
  }

  /**
   * The same page as `list`, with the total matching the filters and the
   * caller's team (the balance every row's balance view shows), read in one
   * statement through the driver (src/db/subAccountListing.ts): the GraphQL
   * `subAccounts` connection. Keys are aggregated only when `withKeys`.
   */
  async listing(actorOrNull: Actor | null, args: object, options: { withKeys: boolean }) {
    const actor = authorize(actorOrNull, "sub_accounts:read");
    const filters = this.#filters(args);
    const request = pageRequest(args);
    let read: SubAccountListing = { team: null, totalCount: 0, rows: [] };
    const page = await readPage(
      request,
      async (take) => {
        read = await this.deps.store.listSubAccounts({ teamId: actor.teamId, ...filters, after: request.after?.[0] ?? null, take, withKeys: options.withKeys });
        return read.rows;
      },
      (row) => [row.id],
    );
    return { page, totalCount: read.totalCount, team: read.team };
  }

  /**
   * Audited as one event per kind of change: `sub_account.update` for the
   * fields, `sub_account.suspend` or `.reactivate` for the status. A call that
   * changes nothing records nothing.
   */
  async update<Q extends Query>(actorOrNull: Actor | null, id: string, input: unknown, query?: Q) {
    const actor = authorize(actorOrNull, "sub_accounts:write");
    const where = this.subAccountWhere(actor, id);
    const data = parseInput(updateSubAccountInput, input, "input");
    const now = this.deps.clock.now();
    const { updated, suspending } = await this.deps.prisma.$transaction(async (tx) => {
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
          ...(data.budget !== undefined ? await budgetColumnsFor(tx, current.id, data.budget, current, now) : {}),
          alertThresholds: data.alertThresholds === null ? Prisma.DbNull : (data.alertThresholds ?? undefined),
          metadata: data.metadata === null ? Prisma.DbNull : (data.metadata as Prisma.InputJsonValue | undefined),
          status: data.status,
          // Reactivating within the grace period cancels the scheduled deletion; revoked keys stay revoked.
          ...(reactivating ? { deactivatedAt: null, deletionScheduledAt: null } : {}),
        },
      });
      const webhookEvents = await recordUpdateEvents(tx, { teamId: actor.teamId, actor: keyActor(actor), target: { type: "sub_account", id: current.id }, at: now }, current, data);
      await recordSubAccountEvents(tx, actor.teamId, current.id, webhookEvents, now);
      return { updated, suspending };
    });
    this.deps.outbox.written();
    if (suspending) await this.deps.signals.publish({ type: "account_suspended", accountId: updated.id as string });
    return updated;
  }

  async deactivate<Q extends Query>(actorOrNull: Actor | null, id: string, query?: Q) {
    const actor = authorize(actorOrNull, "sub_accounts:write");
    const where = this.subAccountWhere(actor, id);
    const now = this.deps.clock.now();
    const { subAccount, revokedKeyIds, deletionScheduledAt } = await this.deps.prisma.$transaction(async (tx) => {
      const current = await lockSubAccount(tx, where, now);
      const deletionScheduledAt = current.deletionScheduledAt ?? new Date(now.getTime() + DELETION_GRACE_DAYS * DAY_MS);
      const revokedKeyIds = (await tx.apiKey.findMany({ where: { accountId: current.id, revokedAt: null }, select: { id: true } })).map((key) => key.id);
      if (revokedKeyIds.length > 0) await tx.apiKey.updateMany({ where: { id: { in: revokedKeyIds } }, data: { revokedAt: now } });
      const subAccount = await tx.account.update({ ...(query as object), where, data: { status: "inactive", deactivatedAt: now, deletionScheduledAt } });
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
      await recordSubAccountEvents(tx, actor.teamId, current.id, ["sub_account.deactivated"], now);
      await recordApiKeyEvents(tx, actor.teamId, revokedKeyIds, "api_key.revoked", now);
      return { subAccount, revokedKeyIds, deletionScheduledAt };
    });
    this.deps.outbox.written();
    await this.deps.signals.publish({ type: "account_suspended", accountId: where.id! });
    if (revokedKeyIds.length > 0) await this.deps.signals.publish({ type: "keys_revoked", apiKeyIds: revokedKeyIds });
    const keysRevoked = revokedKeyIds.length;
    return {
      subAccount,
      keysRevoked,
      deletionScheduledAt,
      message:
        `Sub-account deactivated and ${keysRevoked} API key(s) revoked. It will be deleted on ` +
        `${deletionScheduledAt.toISOString()} unless reactivated before then (revoked keys stay revoked; create new ones).`,
    };
  }

  /**
   * Removes sub-accounts whose grace period has ended, with their keys and
   * messages (cascade), each in its own transaction with its audit event. The
   * ledger and the audit log are kept. Returns the ids removed.
   */
  async purgeExpired(now: Date = this.deps.clock.now(), actor: AuditActor = SYSTEM) {
    const expiredWhere = { kind: "sub", status: "inactive", deletionScheduledAt: { lte: now } } satisfies Prisma.AccountWhereInput;
    const expired = await this.deps.prisma.account.findMany({ where: expiredWhere, take: PURGE_BATCH_MAX });
    const purged: string[] = [];
    for (const account of expired) {
      const removed = await this.deps.prisma.$transaction(async (tx) => {
        const { count } = await tx.account.deleteMany({ where: { ...expiredWhere, id: account.id } });
        if (count === 0) return false;
        await recordAuditEvent(tx, {
          teamId: account.teamId,
          actor,
          action: "sub_account.purge",
          target: { type: "sub_account", id: account.id },
          details: { name: account.name, externalId: account.externalId, totalSpent: centsToNumber(account.totalSpent), deletionScheduledAt: account.deletionScheduledAt!.toISOString() },
          at: now,
        });
        await recordWebhookEvent(tx, { teamId: account.teamId, type: "sub_account.purged", data: subAccountEventData(account, now), at: now });
        return true;
      });
      if (removed) purged.push(account.id);
    }
    if (purged.length > 0) this.deps.outbox.written();
    return purged;
  }
}

/** Sub-accounts purged per call at most; the purge job runs again on its interval. */
const PURGE_BATCH_MAX = 1000;

/** The audit events of an update: the changed fields, and a suspension or reactivation. Returns the matching webhook event types. */
async function recordUpdateEvents(
  tx: Tx,
  event: { teamId: string; actor: AuditActor; target: { type: "sub_account"; id: string }; at: Date },
  current: AccountRow,
  data: UpdateData,
): Promise<WebhookEventType[]> {
  const changes = fieldChanges(current, data);
  if (changes.changedFields.length > 0) await recordAuditEvent(tx, { ...event, action: "sub_account.update", details: changes });
  const reactivating = data.status === "active" && current.status !== "active";
  const suspending = data.status === "inactive" && current.status === "active";
  const updated: WebhookEventType[] = changes.changedFields.length > 0 ? ["sub_account.updated"] : [];
  if (!suspending && !reactivating) return updated;
  await recordAuditEvent(tx, {
    ...event,
    action: suspending ? "sub_account.suspend" : "sub_account.reactivate",
    details: {
      before: { status: current.status },
      after: { status: data.status! },
      ...(reactivating && current.deletionScheduledAt ? { cancelledDeletionScheduledAt: current.deletionScheduledAt.toISOString() } : {}),
    },
  });
  return [...updated, suspending ? "sub_account.suspended" : "sub_account.reactivated"];
}
