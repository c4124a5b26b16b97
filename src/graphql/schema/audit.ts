import { AUDIT_ACTIONS, type AuditAction as AuditActionValue, type AuditEventView } from "../../services/audit.ts";
import { builder } from "../builder.ts";
import { connectionOf } from "../connections.ts";

/** `sub_account.create` is SUB_ACCOUNT_CREATE, like the schema's other enums (upper case in GraphQL). */
export const AuditAction = builder.enumType("AuditAction", {
  values: Object.fromEntries(
    AUDIT_ACTIONS.map((action) => [action.replace(".", "_").toUpperCase(), { value: action }]),
  ) as Record<string, { value: AuditActionValue }>,
});

const AuditActorType = builder.enumType("AuditActorType", {
  values: {
    API_KEY: { value: "api_key", description: "A main-account key, through GraphQL or REST." },
    OPERATOR: { value: "operator", description: "The operator CLI (`npm run admin`)." },
    SYSTEM: { value: "system", description: "The gateway itself: the purge of sub-accounts past their grace period, the disabling of a failing webhook endpoint." },
  } as const,
});

const AuditTargetType = builder.enumType("AuditTargetType", {
  values: {
    TEAM: { value: "team" },
    MAIN_ACCOUNT: { value: "main_account" },
    SUB_ACCOUNT: { value: "sub_account" },
    API_KEY: { value: "api_key" },
    WEBHOOK_ENDPOINT: { value: "webhook_endpoint" },
  } as const,
});

const AuditActor = builder.objectRef<AuditEventView>("AuditActor").implement({
  description: "Who performed the action.",
  fields: (t) => ({
    type: t.field({ type: AuditActorType, resolve: (event) => event.actorType as "api_key" }),
    accountId: t.exposeID("actorAccountId", { nullable: true, description: "The account of the key; null for the operator and the system." }),
    apiKeyId: t.exposeID("actorApiKeyId", { nullable: true, description: "The key used; null for the operator and the system." }),
    apiKeyPrefix: t.exposeString("actorApiKeyPrefix", { nullable: true, description: "The display prefix of that key, while it exists." }),
  }),
});

const AuditTarget = builder.objectRef<AuditEventView>("AuditTarget").implement({
  description: "What the action was performed on. It may since have been purged.",
  fields: (t) => ({
    type: t.field({ type: AuditTargetType, resolve: (event) => event.targetType as "team" }),
    id: t.exposeID("targetId"),
  }),
});

export const AuditEvent = builder.objectRef<AuditEventView>("AuditEvent").implement({
  description: "One management action of the team: who, with which key, what, when.",
  fields: (t) => ({
    id: t.exposeID("id"),
    action: t.field({ type: AuditAction, resolve: (event) => event.action as AuditActionValue }),
    actor: t.field({ type: AuditActor, resolve: (event) => event }),
    target: t.field({ type: AuditTarget, resolve: (event) => event }),
    details: t.field({
      type: "JSONObject",
      description: "What changed, e.g. { changedFields, before, after } for an update. Never a key.",
      resolve: (event) => event.details,
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

const AuditLogConnection = builder.connectionObject(
  { type: AuditEvent, name: "QueryAuditLogConnection" },
  { name: "QueryAuditLogConnectionEdge" },
);

builder.queryFields((t) => ({
  auditLog: t.field({
    type: AuditLogConnection,
    description:
      "The team's management actions, newest first (main key only). `first` is 1 to 100 (default 20); filter by action or by target id.",
    args: {
      first: t.arg.int(),
      after: t.arg.string(),
      action: t.arg({ type: AuditAction }),
      targetId: t.arg.id(),
    },
    resolve: async (_root, args, ctx) =>
      connectionOf(await ctx.services.audit.list(ctx.actor, { ...args, targetId: args.targetId == null ? args.targetId : String(args.targetId) })),
  }),
}));
