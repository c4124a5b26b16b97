import type { Db } from "../../db/client.ts";
import type { SecretBox } from "./secrets.ts";

/** Endpoints read per statement while resealing: memory stays bounded whatever the number of endpoints. */
const RESEAL_PAGE = 500;
/** Reads of one endpoint changed by someone else (a rotation) between its read and its update, before giving up on the run. */
const RESEAL_TRIES_PER_ENDPOINT = 5;

export interface ResealReport {
  /** Endpoints whose secrets were sealed again under the current key. */
  resealed: number;
  /** Endpoints already sealed under it. */
  alreadyCurrent: number;
  /** Endpoints whose signing secret no key of this process opens: they need `rotateWebhookSecret`. */
  unreadable: string[];
}

interface StoredSecrets {
  id: string;
  secretCiphertext: string;
  previousSecretCiphertext: string | null;
}

type Outcome = "resealed" | "alreadyCurrent" | "unreadable" | "gone";

/**
 * Seals every stored signing secret again under the current SECRETS_KEY (README.md,
 * "Rotating SECRETS_KEY"): the endpoint's secret and, during a rotation's overlap,
 * the one it replaced. Each endpoint is one conditional update, made only if its
 * ciphertexts are still the ones read (a rotation meanwhile is read again), so it
 * is safe while instances serve; running it twice changes nothing the second time.
 * A previous secret that no key opens is left as it is: it already signs nothing.
 */
export async function resealWebhookSecrets(prisma: Db, box: SecretBox): Promise<ResealReport> {
  const report: ResealReport = { resealed: 0, alreadyCurrent: 0, unreadable: [] };
  let after: string | null = null;
  for (;;) {
    const page: StoredSecrets[] = await prisma.webhookEndpoint.findMany({
      where: after === null ? {} : { id: { gt: after } },
      orderBy: { id: "asc" },
      take: RESEAL_PAGE,
      select: { id: true, secretCiphertext: true, previousSecretCiphertext: true },
    });
    for (const endpoint of page) {
      const outcome = await resealEndpoint(prisma, box, endpoint);
      if (outcome === "unreadable") report.unreadable.push(endpoint.id);
      else if (outcome !== "gone") report[outcome] += 1;
    }
    if (page.length < RESEAL_PAGE) return report;
    after = page[page.length - 1]!.id;
  }
}

async function resealEndpoint(prisma: Db, box: SecretBox, first: StoredSecrets): Promise<Outcome> {
  let stored: StoredSecrets | null = first;
  for (let tries = 0; tries < RESEAL_TRIES_PER_ENDPOINT && stored !== null; tries += 1) {
    const changes = resealedCiphertexts(box, stored);
    if (changes === "unreadable") return "unreadable";
    if (Object.keys(changes).length === 0) return "alreadyCurrent";
    const { count } = await prisma.webhookEndpoint.updateMany({
      where: { id: stored.id, secretCiphertext: stored.secretCiphertext, previousSecretCiphertext: stored.previousSecretCiphertext },
      data: changes,
    });
    if (count === 1) return "resealed";
    stored = await prisma.webhookEndpoint.findUnique({ where: { id: stored.id }, select: { id: true, secretCiphertext: true, previousSecretCiphertext: true } });
  }
  if (stored === null) return "gone";
  throw new Error(`webhook endpoint ${first.id} changed ${RESEAL_TRIES_PER_ENDPOINT} times while being resealed; nothing else is wrong: run reseal-secrets again`);
}

/** The columns to write: those sealed under an earlier key, sealed again under the current one. */
function resealedCiphertexts(box: SecretBox, stored: StoredSecrets): Partial<Omit<StoredSecrets, "id">> | "unreadable" {
  const resealed = (sealed: string) => {
    try {
      return box.resealed(sealed, stored.id);
    } catch {
      return undefined;
    }
  };
  const secretCiphertext = resealed(stored.secretCiphertext);
  if (secretCiphertext === undefined) return "unreadable";
  const previousSecretCiphertext = stored.previousSecretCiphertext === null ? null : resealed(stored.previousSecretCiphertext);
  return {
    ...(secretCiphertext === null ? {} : { secretCiphertext }),
    ...(previousSecretCiphertext ? { previousSecretCiphertext } : {}),
  };
}
