import type { Actor } from "../../services/deps.ts";
import { requireActor } from "../../services/auth.ts";
import { builder } from "../builder.ts";
import { ApiKey } from "./apiKey.ts";
import { Team } from "./team.ts";

export const Account = builder.prismaObject("Account", {
  description: "The account a key belongs to: the team's main account or one of its sub-accounts.",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name"),
    isSubAccount: t.boolean({ select: { kind: true }, resolve: (row) => row.kind === "sub" }),
    apiKeys: t.relation("apiKeys", { description: "This account's keys, metadata only (never the keys).", query: { orderBy: { id: "asc" } } }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

const Viewer = builder.objectRef<Actor>("Viewer").implement({
  description: "Who the calling API key is.",
  fields: (t) => ({
    apiKey: t.prismaField({
      type: ApiKey,
      resolve: (query, actor, _args, ctx) => ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id: actor.apiKeyId } }),
    }),
    account: t.prismaField({
      type: Account,
      resolve: (query, actor, _args, ctx) => ctx.prisma.account.findUniqueOrThrow({ ...query, where: { id: actor.accountId } }),
    }),
    team: t.field({
      type: Team,
      resolve: async (actor, _args, ctx) => (await ctx.loaders.teamById.load(actor.teamId)) as never,
    }),
    isTestMode: t.boolean({
      description: "True for test keys: messages are validated and priced but not charged nor delivered.",
      resolve: (actor) => actor.environment === "test",
    }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.field({
    type: Viewer,
    description: "The calling key, its account and team.",
    resolve: (_root, _args, ctx) => requireActor(ctx.actor),
  }),
}));
