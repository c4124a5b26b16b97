import DataLoader from "dataloader";
import type { Db } from "../db/client.ts";
import type { Actor } from "../services/deps.ts";
import type { Services } from "../services/index.ts";

export interface TeamRow {
  id: string;
  name: string;
  balance: bigint;
  currency: string;
  createdAt: Date;
}

export function createLoaders(prisma: Db) {
  return {
    /** Teams by id, one SQL statement per tick however many fields ask. */
    teamById: new DataLoader<string, TeamRow | null>(async (ids) => {
      const rows = await prisma.team.findMany({
        where: { id: { in: [...ids] } },
        select: { id: true, name: true, balance: true, currency: true, createdAt: true },
      });
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
}

export interface GraphQLContext {
  /** Null when no Authorization header was sent (introspection still works). */
  actor: Actor | null;
  services: Services;
  prisma: Db;
  loaders: ReturnType<typeof createLoaders>;
}
