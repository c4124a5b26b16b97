import { builder } from "../builder.ts";

export const Team = builder.prismaObject("Team", {
  description: "A team: one main account, any number of sub-accounts, one shared balance.",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name"),
    balance: t.expose("balance", { type: "Cents", description: "The shared balance in cents; every charge comes out of it." }),
    currency: t.exposeString("currency"),
    lowBalanceThreshold: t.expose("lowBalanceThreshold", {
      type: "Cents",
      nullable: true,
      description: "A charge taking the balance below it raises a LOW_BALANCE alert; null: none. Set with updateTeam.",
    }),
    lowBalance: t.boolean({
      description: "True while the balance is below lowBalanceThreshold.",
      select: { balance: true, lowBalanceThreshold: true },
      resolve: (team) => team.lowBalanceThreshold !== null && team.balance < team.lowBalanceThreshold,
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

const UpdateTeamInput = builder.inputType("UpdateTeamInput", {
  fields: (t) => ({
    lowBalanceThreshold: t.field({ type: "Cents", description: "Cents; null removes it." }),
  }),
});

builder.mutationFields((t) => ({
  updateTeam: t.prismaField({
    type: Team,
    description: "The team's own settings: the low-balance threshold of its alerts (scope team:write).",
    args: { input: t.arg({ type: UpdateTeamInput, required: true }) },
    resolve: (_query, _root, args, ctx) => ctx.services.teams.update(ctx.actor, args.input),
  }),
}));
