import { z } from "zod";
import type { Prisma } from "../generated/sqlite/client.ts";
import { generateApiKey, type AccountKind } from "../domain/apiKeys.ts";
import { DomainError, invalidRequest, notFound } from "../domain/errors.ts";
import { SCOPES, SUB_ACCOUNT_SCOPES, effectiveScopes, holdsEveryScope, isScope } from "../domain/scopes.ts";
import { apiKeyNameSchema, dateTimeSchema, idSchema, keyEnvironmentSchema, parseInput } from "../domain/validation.ts";
import type { AccountsService } from "./accounts.ts";
import { OPERATOR, keyActor, recordAuditEvent, type AuditActor } from "./audit.ts";
import { authorize, requireActor } from "./auth.ts";
import type { Actor, ServiceDeps } from "./deps.ts";
import { recordApiKeyEvents } from "./webhooks/events.ts";

/** The longest overlap of a rolled key: 7 days. */
export const ROLL_OVERLAP_MAX_SECONDS = 7 * 86_400;
export const ROLL_OVERLAP_DEFAULT_SECONDS = 86_400;

const permissionsSchema = z
  .array(z.string().refine(isScope, { message: `each must be one of ${SCOPES.join(", ")}` }))
  .max(SCOPES.length * 2, `must list at most ${SCOPES.length * 2} scopes`)
  .transform((scopes) => [...new Set(scopes)].sort());

const expiresAtSchema = dateTimeSchema();

/** Also the REST body schema (src/rest): creating a key of a sub-account or of the caller's own main account. */
export const createKeyInput = z
  .object({
    name: apiKeyNameSchema.optional(),
    environment: keyEnvironmentSchema.optional(),
    permissions: permissionsSchema.nullish(),
    expiresAt: expiresAtSchema.nullish(),
  })
  .strict();
export type CreateApiKeyInput = z.input<typeof createKeyInput>;

export const updateKeyInput = z.object({ name: apiKeyNameSchema.optional(), permissions: permissionsSchema.nullish() }).strict();

export const rollKeyInput = z
  .object({
    expiresInSeconds: z
      .number({ invalid_type_error: "must be a whole number of seconds" })
      .int("must be a whole number of seconds")
      .min(0, "must be 0 (at once) or more")
      .max(ROLL_OVERLAP_MAX_SECONDS, `must be at most ${ROLL_OVERLAP_MAX_SECONDS} (7 days)`)
      .nullish(),
  })
  .strict();

type Query = { select?: Prisma.ApiKeySelect; include?: Prisma.ApiKeyInclude };
type Tx = Prisma.TransactionClient;

const LAST_FULL_KEY =
  "A team must keep at least one unrevoked main key with every permission and no expiry: create another (createApiKey) first, or roll this one (rollApiKey) to replace it.";

/** Refuses what a key of this kind may not hold, and an expiry already past. */
function checkKeyFields(kind: AccountKind, data: { permissions?: string[] | null; expiresAt?: Date | null }, now: Date): void {
  const extra = (data.permissions ?? []).filter((scope) => kind === "sub" && !(SUB_ACCOUNT_SCOPES as readonly string[]).includes(scope));
  if (extra.length > 0) {
    throw invalidRequest(`Invalid input.permissions: sub-account keys may hold only ${SUB_ACCOUNT_SCOPES.join(", ")} (not ${extra.join(", ")}).`, { field: "input.permissions" });
  }
  if (data.expiresAt && data.expiresAt.getTime() <= now.getTime()) {
    throw invalidRequest("Invalid input.expiresAt: must be in the future.", { field: "input.expiresAt" });
  }
}

/**
 * The rule that a team can never lock itself out: at least one unrevoked main
 * key with every permission and no expiry. Checked after the change, in its
 * transaction, which first locks the main account (concurrent key changes of
 * one team take turns), so two revocations racing cannot both pass.
 */
async function assertTeamKeepsFullMainKey(tx: Tx, mainAccountId: string): Promise<void> {
  const keys = await tx.apiKey.findMany({ where: { accountId: mainAccountId, revokedAt: null, expiresAt: null }, select: { permissions: true } });
  if (!keys.some((key) => holdsEveryScope("main", key.permissions))) throw new DomainError("conflict", LAST_FULL_KEY);
}

async function lockAccount(tx: Tx, accountId: string, now: Date): Promise<void> {
  await tx.account.updateMany({ where: { id: accountId }, data: { updatedAt: now } });
}

/**
 * API keys of every account of the team: a sub-account's (managed by main
 * keys), the main account's own (create, roll, update, revoke), and the
 * operator's recovery key for a team that lost them all.
 */
export class ApiKeysService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly accounts: AccountsService,
  ) {}

  /** A new key of one of the team's sub-accounts, returned once. */
  async createForSubAccount<Q extends Query>(actorOrNull: Actor | null, subAccountId: string, input: unknown = {}, query?: Q) {
    const actor = authorize(actorOrNull, "api_keys:write");
    const data = parseInput(createKeyInput, input, "input");
    const subAccount = await this.accounts.requireSubAccount(actor, parseInput(idSchema, subAccountId, "subAccountId"), { select: { id: true } });
    return this.#create(actor, { accountId: subAccount.id, kind: "sub", ...data, environment: data.environment ?? actor.environment }, query);
  }

  /** A new key of the caller's own main account, returned once (createApiKey). */
  async createForMainAccount<Q extends Query>(actorOrNull: Actor | null, input: unknown = {}, query?: Q) {
    const actor = authorize(actorOrNull, "api_keys:write");
    const data = parseInput(createKeyInput, input, "input");
    return this.#create(actor, { accountId: actor.accountId, kind: "main", ...data, environment: data.environment ?? actor.environment }, query);
  }

  async #create<Q extends Query>(
    actor: Actor,
    key: { accountId: string; kind: AccountKind; name?: string; environment: "live" | "test"; permissions?: string[] | null; expiresAt?: Date | null },
    query?: Q,
  ) {
    const now = this.deps.clock.now();
    checkKeyFields(key.kind, key, now);
    const generated = generateApiKey(key.kind, key.environment);
    const apiKey = await this.deps.prisma.$transaction(async (tx) => {
      const created = await tx.apiKey.create({
        ...(query as object),
        data: {
          accountId: key.accountId,
          name: key.name ?? "API key",
          environment: key.environment,
          keyHash: generated.keyHash,
          keyPrefix: generated.keyPrefix,
          permissions: key.permissions ?? [],
          expiresAt: key.expiresAt ?? null,
        },
      });
      await recordAuditEvent(tx, {
        teamId: actor.teamId,
        actor: keyActor(actor),
        action: "api_key.create",
        target: { type: "api_key", id: created.id },
        details: {
          ...(key.kind === "sub" ? { subAccountId: key.accountId } : { accountId: key.accountId }),
          name: created.name,
          environment: created.environment,
          permissions: key.permissions ?? [],
          expiresAt: key.expiresAt?.toISOString() ?? null,
        },
        at: now,
      });
      await recordApiKeyEvents(tx, actor.teamId, [created.id as string], "api_key.created", now);
      return created;
    });
    this.deps.outbox.written();
    return { apiKey, key: generated.key };
  }

  /** A sub-account's keys, metadata only (main key). */
  async listForSubAccount(actorOrNull: Actor | null, subAccountId: string) {
    const subAccount = await this.accounts.get(actorOrNull, subAccountId, { select: { id: true } });
    return this.deps.prisma.apiKey.findMany({ where: { accountId: subAccount.id }, orderBy: { id: "asc" } });
  }

  /** The caller's own account's keys, metadata only (any key: part of `viewer`). */
  async listOwn(actorOrNull: Actor | null) {
    const actor = requireActor(actorOrNull);
    return this.deps.prisma.apiKey.findMany({ where: { accountId: actor.accountId }, orderBy: { id: "asc" } });
  }

  /** One key of the caller's team: of the main account only, or of any of its accounts. */
  async #requireTeamKey(tx: Tx | ServiceDeps["prisma"], actor: Actor, idInput: string, field: string, mainOnly: boolean) {
    const id = parseInput(idSchema, idInput, field);
    const key = await tx.apiKey.findFirst({
      where: { id, account: { teamId: actor.teamId, ...(mainOnly ? { kind: "main" } : {}) } },
      include: { account: { select: { id: true, kind: true } } },
    });
    if (!key) throw notFound("API key", id);
    return key;
  }

  /** Revokes a sub-account's key at once; revoking a revoked key returns it unchanged (and records no event). */
  async revokeForSubAccount<Q extends Query>(actorOrNull: Actor | null, subAccountId: string, apiKeyId: string, query?: Q) {
    const actor = authorize(actorOrNull, "api_keys:write");
    const id = parseInput(idSchema, apiKeyId, "apiKeyId");
    const subAccount = await this.accounts.requireSubAccount(actor, parseInput(idSchema, subAccountId, "subAccountId"), { select: { id: true } });
    return this.#revoke(actor, { id, accountId: subAccount.id, kind: "sub" }, query);
  }

  /** Revokes one of the main account's keys at once (revokeApiKey), never the team's last full one. */
  async revokeMainKey<Q extends Query>(actorOrNull: Actor | null, apiKeyId: string, query?: Q) {
    const actor = authorize(actorOrNull, "api_keys:write");
    const key = await this.#requireTeamKey(this.deps.prisma, actor, apiKeyId, "id", true);
    return this.#revoke(actor, { id: key.id, accountId: key.accountId, kind: "main" }, query);
  }

  async #revoke<Q extends Query>(actor: Actor, target: { id: string; accountId: string; kind: AccountKind }, query?: Q) {
    const guardTeam = target.kind === "main";
    const now = this.deps.clock.now();
    const { apiKey, revoked } = await this.deps.prisma.$transaction(async (tx) => {
      if (guardTeam) await lockAccount(tx, target.accountId, now);
      const { count } = await tx.apiKey.updateMany({ where: { id: target.id, accountId: target.accountId, revokedAt: null }, data: { revokedAt: now } });
      const apiKey = await tx.apiKey.findFirst({ ...(query as object), where: { id: target.id, accountId: target.accountId } });
      if (!apiKey) throw notFound("API key", target.id);
      if (count === 0) return { apiKey, revoked: false };
      if (guardTeam) await assertTeamKeepsFullMainKey(tx, target.accountId);
      await recordAuditEvent(tx, {
        teamId: actor.teamId,
        actor: keyActor(actor),
        action: "api_key.revoke",
        target: { type: "api_key", id: target.id },
        details: target.kind === "sub" ? { subAccountId: target.accountId } : { accountId: target.accountId },
        at: now,
      });
      await recordApiKeyEvents(tx, actor.teamId, [target.id], "api_key.revoked", now);
      return { apiKey, revoked: true };
    });
    if (revoked) {
      await this.deps.signals.publish({ type: "keys_revoked", apiKeyIds: [target.id] });
      this.deps.outbox.written();
    }
    return apiKey;
  }

  /**
   * Replaces a key (rollApiKey): a new key with the same account, name,
   * environment, permissions and expiry, returned once; the old key stops
   * working `expiresInSeconds` from now (0: at once, on every instance).
   * Always allowed: the new key takes the old one's place.
   */
  async roll(actorOrNull: Actor | null, apiKeyId: string, input: unknown = {}) {
    const actor = authorize(actorOrNull, "api_keys:write");
    const { expiresInSeconds } = parseInput(rollKeyInput, input);
    const overlapMs = (expiresInSeconds ?? ROLL_OVERLAP_DEFAULT_SECONDS) * 1000;
    const now = this.deps.clock.now();
    const old = await this.#requireTeamKey(this.deps.prisma, actor, apiKeyId, "id", false);
    if (old.revokedAt || (old.expiresAt && old.expiresAt <= now)) {
      throw invalidRequest("This key no longer works (revoked or expired): create a new key instead of rolling it.", { field: "id" });
    }
    const generated = generateApiKey(old.account.kind as AccountKind, old.environment as "live" | "test");
    const oldExpiresAt = new Date(Math.min(now.getTime() + overlapMs, old.expiresAt?.getTime() ?? Infinity));
    const { apiKey, previous } = await this.deps.prisma.$transaction(async (tx) => {
      await lockAccount(tx, old.accountId, now);
      const apiKey = await tx.apiKey.create({
        data: { accountId: old.accountId, name: old.name, environment: old.environment, keyHash: generated.keyHash, keyPrefix: generated.keyPrefix, permissions: (old.permissions ?? []) as Prisma.InputJsonValue, expiresAt: old.expiresAt },
      });
      const previous = await tx.apiKey.update({ where: { id: old.id }, data: { expiresAt: oldExpiresAt } });
      await recordAuditEvent(tx, {
        teamId: actor.teamId,
        actor: keyActor(actor),
        action: "api_key.roll",
        target: { type: "api_key", id: old.id },
        details: { accountId: old.accountId, newApiKeyId: apiKey.id, previousExpiresAt: oldExpiresAt.toISOString() },
        at: now,
      });
      await recordApiKeyEvents(tx, actor.teamId, [apiKey.id], "api_key.created", now);
      return { apiKey, previous };
    });
    this.deps.outbox.written();
    // The old key now expires (at once when overlapMs is 0): every instance reads it again.
    await this.deps.signals.publish(overlapMs === 0 ? { type: "keys_revoked", apiKeyIds: [old.id] } : { type: "keys_changed", apiKeyIds: [old.id] });
    return { apiKey, key: generated.key, previous };
  }

  /** Renames a main-account key or changes its permissions (updateApiKey), never narrowing the team's last full key. */
  async update<Q extends Query>(actorOrNull: Actor | null, apiKeyId: string, input: unknown, query?: Q) {
    const actor = authorize(actorOrNull, "api_keys:write");
    const data = parseInput(updateKeyInput, input, "input");
    const now = this.deps.clock.now();
    const key = await this.#requireTeamKey(this.deps.prisma, actor, apiKeyId, "id", true);
    const updated = await this.deps.prisma.$transaction(async (tx) => {
      await lockAccount(tx, key.accountId, now);
      const updated = await tx.apiKey.update({
        ...(query as object),
        where: { id: key.id },
        data: { name: data.name, ...(data.permissions !== undefined ? { permissions: data.permissions ?? [] } : {}) },
      });
      if (data.permissions !== undefined) await assertTeamKeepsFullMainKey(tx, key.accountId);
      await recordAuditEvent(tx, {
        teamId: actor.teamId,
        actor: keyActor(actor),
        action: "api_key.update",
        target: { type: "api_key", id: key.id },
        details: {
          before: { name: key.name, permissions: effectiveScopes("main", key.permissions) },
          after: { name: updated.name, permissions: effectiveScopes("main", updated.permissions) },
        },
        at: now,
      });
      return updated;
    });
    // Its new scopes apply from the next request, on every instance.
    if (data.permissions !== undefined) await this.deps.signals.publish({ type: "keys_changed", apiKeyIds: [key.id] });
    return updated;
  }

  /** The operator's recovery (npm run admin -- create-main-key): a full main key for a team that lost every key. */
  async createMainKeyAsOperator(teamIdInput: string, nameInput: string | undefined, actor: AuditActor = OPERATOR) {
    const teamId = parseInput(idSchema, teamIdInput, "team");
    const name = nameInput === undefined ? "Recovery key" : parseInput(apiKeyNameSchema, nameInput, "name");
    const main = await this.deps.prisma.account.findFirst({ where: { teamId, kind: "main" }, select: { id: true } });
    if (!main) throw notFound("Team", teamId);
    const generated = generateApiKey("main", "live");
    const apiKey = await this.deps.prisma.$transaction(async (tx) => {
      const created = await tx.apiKey.create({
        data: { accountId: main.id, name, environment: "live", keyHash: generated.keyHash, keyPrefix: generated.keyPrefix, permissions: [] },
      });
      await recordAuditEvent(tx, {
        teamId,
        actor,
        action: "api_key.create",
        target: { type: "api_key", id: created.id },
        details: { accountId: main.id, name, environment: "live", permissions: [], expiresAt: null },
        at: this.deps.clock.now(),
      });
      await recordApiKeyEvents(tx, teamId, [created.id], "api_key.created", this.deps.clock.now());
      return created;
    });
    this.deps.outbox.written();
    return { apiKey, mainAccountId: main.id, key: generated.key };
  }
}
