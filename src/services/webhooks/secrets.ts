import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { chmodSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { SECRETS_KEY_BYTES, parseSecretsKey } from "../../domain/secretsKey.ts";

/**
 * Webhook signing secrets: made here, shown once, stored only encrypted with
 * AES-256-GCM under SECRETS_KEY (README.md, "Webhooks", safety). Nothing in
 * this file logs anything.
 */

/** Standard Webhooks' secret format: `whsec_` and the base64 of the key (32 random bytes). */
export function generateSigningSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

const FORMAT = "v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Encrypts and decrypts stored secrets. Each ciphertext is bound to the row it
 * belongs to (`context`, authenticated as additional data): a ciphertext copied
 * into another endpoint's row does not decrypt. Seals under the current key;
 * opens under it or, while SECRETS_KEY is being rotated, under an earlier one
 * (SECRETS_KEY_PREVIOUS): GCM's tag tells which key a ciphertext was sealed with.
 */
export class SecretBox {
  readonly #key: Buffer;
  readonly #previousKeys: readonly Buffer[];

  constructor(key: Buffer, previousKeys: readonly Buffer[] = []) {
    for (const each of [key, ...previousKeys]) {
      if (each.length !== SECRETS_KEY_BYTES) throw new Error(`the secrets key must be ${SECRETS_KEY_BYTES} bytes`);
    }
    this.#key = Buffer.from(key);
    this.#previousKeys = previousKeys.filter((previous) => !previous.equals(key)).map((previous) => Buffer.from(previous));
  }

  /** `v1.<iv>.<tag>.<ciphertext>`, each part base64url. */
  seal(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, "utf8"));
    const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return [FORMAT, iv, cipher.getAuthTag(), ciphertext].map((part) => (typeof part === "string" ? part : part.toString("base64url"))).join(".");
  }

  /** The secret; throws when no key of this box sealed it for this context. */
  open(sealed: string, context: string): string {
    return this.#opened(sealed, context).plaintext;
  }

  /**
   * The same secret sealed under the current key, or null when it already is;
   * throws when no key of this box opens it.
   */
  resealed(sealed: string, context: string): string | null {
    const { plaintext, underCurrentKey } = this.#opened(sealed, context);
    return underCurrentKey ? null : this.seal(plaintext, context);
  }

  #opened(sealed: string, context: string): { plaintext: string; underCurrentKey: boolean } {
    const [format, iv, tag, ciphertext] = sealed.split(".");
    if (format !== FORMAT || iv === undefined || tag === undefined || ciphertext === undefined) throw new Error("not a sealed secret of this gateway");
    const parts = { iv: Buffer.from(iv, "base64url"), tag: Buffer.from(tag, "base64url"), ciphertext: Buffer.from(ciphertext, "base64url") };
    const current = openWith(this.#key, parts, context);
    if (current !== null) return { plaintext: current, underCurrentKey: true };
    for (const key of this.#previousKeys) {
      const plaintext = openWith(key, parts, context);
      if (plaintext !== null) return { plaintext, underCurrentKey: false };
    }
    throw new Error("the secret was sealed under a key this process does not have (SECRETS_KEY, SECRETS_KEY_PREVIOUS), or for another endpoint");
  }
}

/** The plaintext, or null when `key` did not seal these parts for `context` (the tag does not verify). */
function openWith(key: Buffer, parts: { iv: Buffer; tag: Buffer; ciphertext: Buffer }, context: string): string | null {
  const decipher = createDecipheriv("aes-256-gcm", key, parts.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(context, "utf8"));
  decipher.setAuthTag(parts.tag);
  try {
    return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]).toString("utf8");
  } catch {
    return null;
  }
}

/** Where a key generated outside production is kept: under ./data/, beside the default SQLite database. */
export const GENERATED_KEY_FILE = path.resolve("data", "secrets.key");

/**
 * The key of SECRETS_KEY; without one (never in production: the configuration
 * refuses that), the key kept in `file`, created once with permissions 0600.
 * Instances sharing the directory share the key; whichever creates it first wins.
 */
export function resolveSecretsKey(configured: string | undefined, file: string = GENERATED_KEY_FILE): Buffer {
  if (configured !== undefined) {
    const key = parseSecretsKey(configured);
    if (!key) throw new Error("SECRETS_KEY is not 32 bytes as 64 hexadecimal characters or base64");
    return key;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  // Written whole to a file of our own, then linked into place: a concurrent reader never sees it half-written.
  const draft = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  writeFileSync(draft, `${randomBytes(SECRETS_KEY_BYTES).toString("hex")}\n`, { flag: "wx", mode: 0o600 });
  try {
    linkSync(draft, file);
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") throw error;
  } finally {
    rmSync(draft, { force: true });
  }
  chmodSync(file, 0o600);
  const key = parseSecretsKey(readFileSync(file, "utf8"));
  if (!key) throw new Error(`${file} does not hold a secrets key (64 hexadecimal characters); remove it to have a new one generated, or set SECRETS_KEY`);
  return key;
}
