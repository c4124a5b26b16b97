import type { ApiKey as ApiKeyRow } from "../../generated/sqlite/client.ts";
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
    permissions: t.stringList({ description: "Reserved.", resolve: (key) => (Array.isArray(key.permissions) ? key.permissions.map(String) : []) }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    lastUsedAt: t.expose("lastUsedAt", { type: "DateTime", nullable: true }),
    revokedAt: t.expose("revokedAt", { type: "DateTime", nullable: true }),
  }),
});

const CreateApiKeyInput = builder.inputType("CreateSubAccountApiKeyInput", {
  fields: (t) => ({
    name: t.string({ required: false }),
    environment: t.field({ type: KeyEnvironment, required: false, description: "Defaults to the environment of the calling key." }),
  }),
});

const CreateApiKeyPayload = builder.objectRef<{ apiKey: ApiKeyRow; key: string }>("CreateSubAccountApiKeyPayload").implement({
  fields: (t) => ({
    apiKey: t.field({ type: ApiKey, resolve: (payload) => payload.apiKey }),
    key: t.exposeString("key", { description: "The API key. Shown only in this response: store it now." }),
  }),
});

builder.mutationFields((t) => ({
  createSubAccountApiKey: t.field({
    type: CreateApiKeyPayload,
    description: "Creates a new key for a sub-account (main key only). The key is returned once.",
    args: { subAccountId: t.arg.id({ required: true }), input: t.arg({ type: CreateApiKeyInput, required: false }) },
    resolve: async (_root, args, ctx) => {
      const input = args.input ?? {};
      return ctx.services.apiKeys.create(ctx.actor, String(args.subAccountId), {
        name: input.name ?? undefined,
        environment: input.environment ?? undefined,
      });
    },
  }),
  revokeSubAccountApiKey: t.prismaField({
    type: "ApiKey",
    description: "Revokes a sub-account's key at once, on every instance, including its open subscriptions.",
    args: { subAccountId: t.arg.id({ required: true }), apiKeyId: t.arg.id({ required: true }) },
    resolve: (query, _root, args, ctx) => ctx.services.apiKeys.revoke(ctx.actor, String(args.subAccountId), String(args.apiKeyId), query),
  }),
}));
