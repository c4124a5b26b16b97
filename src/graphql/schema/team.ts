import { builder } from "../builder.ts";

export const Team = builder.prismaObject("Team", {
  description: "A team: one main account, any number of sub-accounts, one shared balance.",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name"),
    balance: t.expose("balance", { type: "Cents", description: "The shared balance in cents; every charge comes out of it." }),
    currency: t.exposeString("currency"),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});
