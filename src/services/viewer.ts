import { requireActor } from "./auth.ts";
import type { Actor, ServiceDeps } from "./deps.ts";

/** Who the calling key is: the key, its account and its team (REST `GET /v1/me`). */
export function createViewerService(deps: ServiceDeps) {
  const { prisma } = deps;
  return {
    async describe(actorOrNull: Actor | null) {
      const actor = requireActor(actorOrNull);
      const apiKey = await prisma.apiKey.findUniqueOrThrow({
        where: { id: actor.apiKeyId },
        select: {
          id: true,
          name: true,
          environment: true,
          keyPrefix: true,
          account: { select: { id: true, name: true, kind: true, team: { select: { id: true, name: true } } } },
        },
      });
      const { account, ...key } = apiKey;
      return {
        apiKey: key,
        account: { id: account.id, name: account.name, isSubAccount: account.kind === "sub" },
        team: account.team,
        isTestMode: actor.environment === "test",
      };
    },
  };
}
