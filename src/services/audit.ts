import { z } from "zod";
import type { Prisma } from "../generated/sqlite/client.ts";
import { invalidRequest } from "../domain/errors.ts";
import { LIMITS, idSchema, pageSizeSchema, parseInput } from "../domain/validation.ts";
import { requireMainKey } from "./auth.ts";
import type { Actor, ServiceDeps } from "./deps.ts";

/** Every management action the audit log records. */
export const AUDIT_ACTIONS = [
  "team.create",
  "team.top_up",
  "main_account.create",
  "sub_account.create",
  "sub_account.update",
  "sub_account.suspend",
  "sub_account.reactivate",
  "sub_account.deactivate",
  "sub_account.purge",
  "api_key.create",
  "api_key.revoke",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export type AuditTargetType = "team" | "main_account" | "sub_account" | "api_key";

/** Who acted: a main key (GraphQL or REST), the operator CLI, or the gateway's own purge job. */
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

const listInput = z
  .object({
    first: pageSizeSchema.nullish(),
    after: z.string().max(512).nullish(),
    action: z.enum(AUDIT_ACTIONS).nullish(),
    targetId: idSchema.nullish(),
  })
  .strict();

/** An opaque cursor: the position (createdAt, id) of the last event of a page. */
function encodeCursor(row: { createdAt: Date; id: string }): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id])).toString("base64url");
}

const cursorSchema = z.tuple([z.string().datetime(), idSchema]);

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    decoded = undefined;
  }
  const parsed = cursorSchema.safeParse(decoded);
  if (!parsed.success) {
    const message = "not a cursor of auditLog: pass the endCursor of the previous page";
    throw invalidRequest(`Invalid after: ${message}.`, { field: "after", issues: [{ field: "after", message }] });
  }
  return { createdAt: new Date(parsed.data[0]), id: parsed.data[1] };
}

export function createAuditService(deps: ServiceDeps) {
  const { prisma } = deps;

  return {
    /** One page of the caller's team's events, newest first (main key only). */
    async list(actorOrNull: Actor | null, args: object) {
      const actor = requireMainKey(actorOrNull);
      const parsed = parseInput(listInput, args);
      const first = parsed.first ?? LIMITS.pageDefaultSize;
      const after = parsed.after ? decodeCursor(parsed.after) : null;
      const rows = await prisma.auditEvent.findMany({
        where: {
          teamId: actor.teamId,
          ...(parsed.action ? { action: parsed.action } : {}),
          ...(parsed.targetId ? { targetId: parsed.targetId } : {}),
          ...(after
            ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] }
            : {}),
        },
        orderBy: [{ createdAt: "desc" }, { id: "desc" }],
        take: first + 1,
      });
      const page = rows.slice(0, first);
      const keyIds = [...new Set(page.map((row) => row.actorApiKeyId).filter((id): id is string => id !== null))];
      const keys = keyIds.length
        ? await prisma.apiKey.findMany({ where: { id: { in: keyIds }, account: { teamId: actor.teamId } }, select: { id: true, keyPrefix: true } })
        : [];
      const prefixById = new Map(keys.map((key) => [key.id, key.keyPrefix]));
      return {
        events: page.map((row) => ({
          ...row,
          actorApiKeyPrefix: row.actorApiKeyId ? (prefixById.get(row.actorApiKeyId) ?? null) : null,
          cursor: encodeCursor(row),
        })),
        hasNextPage: rows.length > first,
      };
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
export type AuditEventView = Awaited<ReturnType<AuditService["list"]>>["events"][number];
