import type { ApiKey as ApiKeyRow } from "../../generated/sqlite/client.ts";
import { SCOPES, effectiveScopes } from "../../domain/scopes.ts";
import { ROLL_OVERLAP_DEFAULT_SECONDS, ROLL_OVERLAP_MAX_SECONDS } from "../../services/apiKeys.ts";
import { builder } from "../builder.ts";

export const KeyEnvironment = builder.enumType("ApiKeyEnvironment", {
  values: { LIVE: { value: "live" }, TEST: { value: "test", description: "Messages are priced but not charged nor delivered." } } as const,
});

export const ApiKey = builder.prismaObject("ApiKey", {
  description: "An API key's metadata. The key itself is shown once, when created, and never stored.",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name"),
    environment: t.field({ type: KeyEnvironment, resolve: (key) => key.environment as "live" | "test" }),
    keyPrefix: t.exposeString("keyPrefix", { description: "The first characters of the key, for recognising it." }),
    permissions: t.stringList({
      description: `The scopes the key holds (${SCOPES.join(", ")}): what it was given, or every scope its kind may hold when none were.`,
      select: { permissions: true, account: { select: { kind: true } } },
      resolve: (key) => [...effectiveScopes(key.account.kind as "main" | "sub", key.permissions)],
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    lastUsedAt: t.expose("lastUsedAt", { type: "DateTime", nullable: true }),
    revokedAt: t.expose("revokedAt", { type: "DateTime", nullable: true }),
    expiresAt: t.expose("expiresAt", { type: "DateTime", nullable: true, description: "Past it the key no longer authenticates; null: never." }),
  }),
});

type InputFields = PothosSchemaTypes.InputFieldBuilder<typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never, "InputObject">;

/** The fields of a new key, the same for a sub-account's and the main account's. */
function keyFields(t: InputFields) {
  return {
    name: t.string({ required: false }),
    environment: t.field({ type: KeyEnvironment, required: false, description: "Defaults to the environment of the calling key." }),
    permissions: t.stringList({ required: false, description: "Scopes; omitted or empty: every scope the key's kind may hold. Sub-account keys hold only messages:send, messages:read, balance:read, spend:read." }),
    expiresAt: t.field({ type: "DateTime", required: false, description: "When the key stops working (in the future); omitted: never." }),
  };
}

const CreateSubAccountApiKeyInput = builder.inputType("CreateSubAccountApiKeyInput", { fields: keyFields });
const CreateApiKeyInput = builder.inputType("CreateApiKeyInput", { fields: keyFields });

const UpdateApiKeyInput = builder.inputType("UpdateApiKeyInput", {
  fields: (t) => ({
    name: t.string({ required: false }),
    permissions: t.stringList({ required: false, description: "Replaces the scopes; empty: every scope. The team's last full main key cannot be narrowed." }),
  }),
});

const createdKeyPayload = (name: string) =>
  builder.objectRef<{ apiKey: ApiKeyRow; key: string }>(name).implement({
    fields: (t) => ({
      apiKey: t.field({ type: ApiKey, resolve: (payload) => payload.apiKey }),
      key: t.exposeString("key", { description: "The API key. Shown only in this response: store it now." }),
    }),
  });

const CreateSubAccountApiKeyPayload = createdKeyPayload("CreateSubAccountApiKeyPayload");
const CreateApiKeyPayload = createdKeyPayload("CreateApiKeyPayload");

const RollApiKeyPayload = builder.objectRef<{ apiKey: ApiKeyRow; key: string; previous: ApiKeyRow }>("RollApiKeyPayload").implement({
  fields: (t) => ({
    apiKey: t.field({ type: ApiKey, description: "The new key's metadata.", resolve: (payload) => payload.apiKey }),
    key: t.exposeString("key", { description: "The new API key. Shown only in this response: store it now." }),
    previous: t.field({ type: ApiKey, description: "The rolled key, with the expiresAt after which it stops working.", resolve: (payload) => payload.previous }),
  }),
});

builder.mutationFields((t) => ({
  createSubAccountApiKey: t.field({
    type: CreateSubAccountApiKeyPayload,
    description: "Creates a new key for a sub-account (scope api_keys:write). The key is returned once.",
    args: { subAccountId: t.arg.id({ required: true }), input: t.arg({ type: CreateSubAccountApiKeyInput, required: false }) },
    resolve: (_root, args, ctx) => ctx.services.apiKeys.createForSubAccount(ctx.actor, String(args.subAccountId), withoutNulls(args.input ?? {})),
  }),
  revokeSubAccountApiKey: t.prismaField({
    type: "ApiKey",
    description: "Revokes a sub-account's key at once, on every instance, including its open subscriptions (scope api_keys:write).",
    args: { subAccountId: t.arg.id({ required: true }), apiKeyId: t.arg.id({ required: true }) },
    resolve: (query, _root, args, ctx) => ctx.services.apiKeys.revokeForSubAccount(ctx.actor, String(args.subAccountId), String(args.apiKeyId), query),
  }),
  createApiKey: t.field({
    type: CreateApiKeyPayload,
    description: "Creates a key of the caller's own main account (scope api_keys:write). The key is returned once.",
    args: { input: t.arg({ type: CreateApiKeyInput, required: false }) },
    resolve: (_root, args, ctx) => ctx.services.apiKeys.createForMainAccount(ctx.actor, withoutNulls(args.input ?? {})),
  }),
  rollApiKey: t.field({
    type: RollApiKeyPayload,
    description: `Replaces a key of the team: a new key with the same name, environment, permissions and expiry, returned once; the old key stops working after expiresInSeconds (0: at once, on every instance; at most ${ROLL_OVERLAP_MAX_SECONDS}; default ${ROLL_OVERLAP_DEFAULT_SECONDS}). Scope api_keys:write.`,
    args: { id: t.arg.id({ required: true }), expiresInSeconds: t.arg.int() },
    resolve: (_root, args, ctx) => ctx.services.apiKeys.roll(ctx.actor, String(args.id), { expiresInSeconds: args.expiresInSeconds }),
  }),
  updateApiKey: t.prismaField({
    type: "ApiKey",
    description: "Renames a key of the main account or changes its permissions (scope api_keys:write). The team's last full main key cannot be narrowed: conflict.",
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateApiKeyInput, required: true }) },
    resolve: (query, _root, args, ctx) => ctx.services.apiKeys.update(ctx.actor, String(args.id), withoutNulls(args.input), query),
  }),
  revokeApiKey: t.prismaField({
    type: "ApiKey",
    description: "Revokes a key of the main account at once, on every instance (scope api_keys:write). Revoking the team's last full main key is conflict: create or roll another first.",
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, args, ctx) => ctx.services.apiKeys.revokeMainKey(ctx.actor, String(args.id), query),
  }),
}));

/** GraphQL's null for an omitted optional input field: the services' "not given". */
function withoutNulls<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== null && value !== undefined)) as Partial<T>;
}
