/** The length of SECRETS_KEY, the AES-256 key that encrypts stored secrets. */
export const SECRETS_KEY_BYTES = 32;

/**
 * SECRETS_KEY as its 32 bytes: 64 hexadecimal characters, or base64 (standard
 * or URL-safe, padded or not). Null when it is neither.
 */
export function parseSecretsKey(value: string): Buffer | null {
  const text = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex");
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return null;
  const bytes = Buffer.from(text.replaceAll("-", "+").replaceAll("_", "/"), "base64");
  return bytes.length === SECRETS_KEY_BYTES ? bytes : null;
}

/** At most this many earlier keys (SECRETS_KEY_PREVIOUS): each one is tried on every secret that the current key does not open. */
export const PREVIOUS_SECRETS_KEYS_MAX = 4;

/** SECRETS_KEY_PREVIOUS: keys in SECRETS_KEY's format, separated by commas. Null when one of them is not a key, or there are too many. */
export function parseSecretsKeyList(value: string): Buffer[] | null {
  const parts = value.split(",").map((part) => part.trim()).filter((part) => part !== "");
  if (parts.length > PREVIOUS_SECRETS_KEYS_MAX) return null;
  const keys = parts.map(parseSecretsKey);
  return keys.every((key): key is Buffer => key !== null) ? keys : null;
}
