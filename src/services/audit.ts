import { z } from "zod";
import type { Prisma } from "../generated/sqlite/client.ts";
import { pageRequest, readPage } from "../domain/paging.ts";
import { idSchema, isCursorInstant, parseInput } from "../domain/validation.ts";
import { authorize } from "./auth.ts";
import type { Actor, ServiceDeps } from "./deps.ts";

/** Every management action the audit log records. */
export const AUDIT_ACTIONS = [
  "team.create",
  "team.top_up",
  "team.update",
  "main_account.create",
  "sub_account.create",
  "sub_account.update",
  "sub_account.suspend",
  "sub_account.reactivate",
  "sub_account.deactivate",
  "sub_account.purge",
  "api_key.create",
  "api_key.roll",
  "api_key.update",
  "api_key.revoke",
  "webhook_endpoint.create",
  "webhook_endpoint.update",
  "webhook_endpoint.delete",
  "webhook_endpoint.rotate_secret",
  "webhook_endpoint.redeliver",
  "webhook_endpoint.disable",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export type AuditTargetType = "team" | "main_account" | "sub_account" | "api_key" | "webhook_endpoint";

/** Who acted: a main key (GraphQL or REST), the operator CLI, or the gateway itself (the purge job, the webhook dispatcher). */
export type AuditActor =
  | { type: "api_key"; accountId: string; apiKeyId: string }
  | { type: "operator" }
  | { type: "system" };

export const OPERATOR: AuditActor = { type: "operator" };
export const SYSTEM: AuditActor = { type: "system" };

export function keyActor(actor: Actor): AuditActor {
  return { type: "api_key", accountId: actor.accountId, apiKeyId: actor.apiKeyId };
}

export interface AuditEventInput {
  teamId: string;
  actor: AuditActor;
  action: AuditAction;
  target: { type: AuditTargetType; id: string };
  /** What changed. Never a key, a key prefix or a key hash. */
  details: Prisma.InputJsonObject;
  at: Date;
}

/**
 * Writes one audit event with the client it is given: always the action's own
 * transaction, so an action and its event commit or roll back together.
 */
export async function recordAuditEvent(tx: Prisma.TransactionClient, event: AuditEventInput) {
  await tx.auditEvent.create({
    data: {
      teamId: event.teamId,
      actorType: event.actor.type,
      actorAccountId: event.actor.type === "api_key" ? event.actor.accountId : null,
      actorApiKeyId: event.actor.type === "api_key" ? event.actor.apiKeyId : null,
      action: event.action,
      targetType: event.target.type,
      targetId: event.target.id,
      details: event.details,
      createdAt: event.at,
    },
  });
}

/** The filters; paging arguments beside them are read by src/domain/paging.ts. */
const listFilters = z
  .object({
    action: z.enum(AUDIT_ACTIONS).nullish(),
    targetId: idSchema.nullish(),
  })
  .passthrough();

/** Newest first: a cursor is the (createdAt, id) of the last event of a page. */
const AUDIT_CURSOR = { arity: 2, isValid: ([createdAt]: string[]) => isCursorInstant(createdAt!) };

export function createAuditService(deps: ServiceDeps) {
  const { prisma } = deps;

  /** The display prefixes of the keys that acted on a page, while those keys exist. */
  async function keyPrefixes(teamId: string, keyIds: string[]): Promise<Map<string, string>> {
    if (keyIds.length === 0) return new Map();
    const keys = await prisma.apiKey.findMany({ where: { id: { in: keyIds }, account: { teamId } }, select: { id: true, keyPrefix: true } });
    return new Map(keys.map((key) => [key.id, key.keyPrefix]));
  }

  return {
    /** One page of the caller's team's events, newest first (main key only). */
    async list(actorOrNull: Actor | null, args: object) {
      const actor = authorize(actorOrNull, "audit:read");
      const filters = parseInput(listFilters, args);
      const request = pageRequest(args, AUDIT_CURSOR);
      const after = request.after ? { createdAt: new Date(request.after[0]!), id: request.after[1]! } : null;
      const page = await readPage(
        request,
        (take) =>
          prisma.auditEvent.findMany({
            where: {
              teamId: actor.teamId,
              ...(filters.action ? { action: filters.action } : {}),
              ...(filters.targetId ? { targetId: filters.targetId } : {}),
              ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
            },
            orderBy: [{ createdAt: "desc" }, { id: "desc" }],
            take,
          }),
        (row) => [row.createdAt.toISOString(), row.id],
      );
      const prefixes = await keyPrefixes(actor.teamId, [...new Set(page.items.flatMap((row) => (row.actorApiKeyId ? [row.actorApiKeyId] : [])))]);
      return { ...page, items: page.items.map((row) => ({ ...row, actorApiKeyPrefix: row.actorApiKeyId ? (prefixes.get(row.actorApiKeyId) ?? null) : null })) };
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
export type AuditEventView = Awaited<ReturnType<AuditService["list"]>>["items"][number];
