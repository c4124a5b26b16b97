import { createHash, randomBytes } from "node:crypto";

export type KeyEnvironment = "live" | "test";
export type AccountKind = "main" | "sub";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SECRET_LENGTH = 40;
/** Characters of the secret part kept in the display prefix. */
const PREFIX_SECRET_CHARS = 4;
const KEY_PATTERN = /^zv_(live|test)_(sub_)?[0-9A-Za-z]{32,64}$/;

/** Uniformly random base62 characters from a cryptographic source (rejection sampling, no modulo bias). */
function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export interface GeneratedKey {
  /** The plaintext key: returned to the caller once, never stored. */
  key: string;
  keyHash: string;
  keyPrefix: string;
}

export function generateApiKey(kind: AccountKind, environment: KeyEnvironment): GeneratedKey {
  const head = `zv_${environment}_${kind === "sub" ? "sub_" : ""}`;
  const key = head + randomBase62(SECRET_LENGTH);
  return { key, keyHash: hashApiKey(key), keyPrefix: key.slice(0, head.length + PREFIX_SECRET_CHARS) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

export function looksLikeApiKey(candidate: string): boolean {
  return KEY_PATTERN.test(candidate);
}
