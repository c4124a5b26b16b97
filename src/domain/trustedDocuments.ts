import { createHash } from "node:crypto";

/**
 * Trusted documents (README.md, "Trusted documents"): the GraphQL documents a
 * frontend's build lists, each under the SHA-256 of its exact text, in the
 * format GraphQL Code Generator's client preset writes with
 * `persistedDocuments: true` (`{ "sha256:<hex>": "<document>" }`; older
 * versions wrote the bare hex). Keys here are the bare lower-case hex.
 */
export type TrustedDocuments = ReadonlyMap<string, string>;

const SHA256_HEX = /^[0-9a-f]{64}$/;
const SHA1_HEX = /^[0-9a-f]{40}$/;
const PREFIX = "sha256:";

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** `sha256:<hex>` or `<hex>` (any case) as the bare lower-case hex; null when it is neither. */
export function documentHash(id: unknown): string | null {
  if (typeof id !== "string") return null;
  const lower = id.trim().toLowerCase();
  const hex = lower.startsWith(PREFIX) ? lower.slice(PREFIX.length) : lower;
  return SHA256_HEX.test(hex) ? hex : null;
}

const FORMAT = 'a JSON object of { "sha256:<hash>": "<document>" }, as GraphQL Code Generator\'s client preset writes it with persistedDocuments: true';

function shown(key: string): string {
  return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}...` : key);
}

function hashOfEntry(key: string): string {
  const hex = documentHash(key);
  if (hex) return hex;
  const bare = key.trim().toLowerCase();
  if (SHA1_HEX.test(bare) || SHA1_HEX.test(bare.replace(/^sha1:/, ""))) {
    throw new Error(`has a SHA-1 key (${shown(key)}), and this gateway needs SHA-256: set persistedDocuments: { hashAlgorithm: "sha256" } in the client preset's codegen config and rebuild.`);
  }
  throw new Error(`has a key that is not a SHA-256 hash (${shown(key)}): keys are "sha256:" and 64 hexadecimal characters (or the 64 characters alone).`);
}

/**
 * The manifest's text as trusted documents. Anything else is refused with a
 * message that completes "the file ..." and says what to fix: not JSON, not an object, no document, a key that
 * is not a SHA-256 hash, or a document whose hash is not its key (the file was
 * edited by hand, or written with another hash function).
 */
export function parseTrustedDocuments(text: string): TrustedDocuments {
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new Error(`is not JSON (${(error as Error).message}); it must be ${FORMAT}.`);
  }
  if (typeof manifest !== "object" || manifest === null || Array.isArray(manifest)) throw new Error(`must be ${FORMAT}.`);
  const documents = new Map<string, string>();
  for (const [key, document] of Object.entries(manifest)) {
    const hash = hashOfEntry(key);
    if (typeof document !== "string" || document.trim() === "") throw new Error(`has something other than a GraphQL document under ${shown(key)}: each value must be the document's text.`);
    if (sha256Hex(document) !== hash) {
      throw new Error(`has a document under ${shown(key)} whose SHA-256 is not that key: the file was edited by hand or written with another hash function; rebuild it.`);
    }
    documents.set(hash, document);
  }
  if (documents.size === 0) throw new Error(`lists no document; it must be ${FORMAT}.`);
  return documents;
}
