import DataLoader from "dataloader";
import type { Db } from "../db/client.ts";
import type { Edge, EdgeRequest } from "../edge/index.ts";
import type { Actor } from "../services/deps.ts";
import type { Services } from "../services/index.ts";

export interface TeamRow {
  id: string;
  name: string;
  balance: bigint;
  currency: string;
  lowBalanceThreshold: bigint | null;
  createdAt: Date;
}

type AccountRow = Awaited<ReturnType<Db["account"]["findMany"]>>[number];

export function createLoaders(prisma: Db) {
  let teamById: DataLoader<string, TeamRow | null> | undefined;
  let accountById: DataLoader<string, AccountRow | null> | undefined;
  /** The teams this request has read, by whichever statement: the ones a field can answer from without waiting. */
  const teams = new Map<string, TeamRow>();
  // Made on first use: a subscription's context lives as long as it streams, mostly without needing either.
  return {
    /** Teams by id, one SQL statement per tick however many fields ask. */
    get teamById(): DataLoader<string, TeamRow | null> {
      return (teamById ??= new DataLoader<string, TeamRow | null>(async (ids) => {
        const rows = await prisma.team.findMany({
          where: { id: { in: [...ids] } },
          select: { id: true, name: true, balance: true, currency: true, lowBalanceThreshold: true, createdAt: true },
        });
        for (const row of rows) teams.set(row.id, row);
        return ids.map((id) => teams.get(id) ?? null);
      }));
    },
    /** A team this request already read (see `rememberTeam`), or undefined: then ask `teamById`. */
    knownTeam(id: string): TeamRow | undefined {
      return teams.get(id);
    },
    /** A team read by another statement of this request (the sub-account listing's): `teamById` and `knownTeam` answer with it. */
    rememberTeam(team: TeamRow): void {
      teams.set(team.id, team);
      this.teamById.prime(team.id, team);
    },
    /** Accounts by id (an alert's sub-account), one statement per tick; the caller scopes ids to its team. */
    get accountById(): DataLoader<string, AccountRow | null> {
      return (accountById ??= new DataLoader<string, AccountRow | null>(async (ids) => {
        const rows = await prisma.account.findMany({ where: { id: { in: [...ids] } } });
        const byId = new Map(rows.map((row) => [row.id, row]));
        return ids.map((id) => byId.get(id) ?? null);
      }));
    },
  };
}

export interface GraphQLContext {
  /** Null when no key was sent (introspection still works over HTTP). */
  actor: Actor | null;
  services: Services;
  prisma: Db;
  loaders: ReturnType<typeof createLoaders>;
}

/** What yoga hands the context factory: the HTTP request (HTTP, SSE) or graphql-ws's connectionParams. */
interface InitialContext {
  request?: Request;
  connectionParams?: { authorization?: unknown };
  edgeRequest?: EdgeRequest;
}

/**
 * The caller of each operation, authenticated by the edge: the Authorization
 * header over HTTP and SSE, `connectionParams.authorization` over graphql-ws.
 */
export function contextFactory(edge: Edge, services: Services, prisma: Db) {
  return async (initial: InitialContext): Promise<GraphQLContext> => {
    const authorization = initial.request?.headers.get("authorization") ?? initial.connectionParams?.authorization ?? null;
    const caller = await edge.authenticate(authorization, initial.edgeRequest);
    return { actor: caller?.actor ?? null, services, prisma, loaders: createLoaders(prisma) };
  };
}
