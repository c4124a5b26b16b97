import { unauthorized } from "../domain/errors.ts";

const BEARER = /^Bearer\s+(\S+)$/i;
const BEARER_WITHOUT_KEY = /^Bearer$/i;
const LOOKS_LIKE_A_KEY = /^zv_/;
/** A scheme name short and plain enough to repeat back; anything else is not echoed. */
const PLAIN_SCHEME = /^[A-Za-z][A-Za-z-]{0,19}$/;

const HOW = "send `Authorization: Bearer <key>`";

/**
 * The API key of an Authorization header (HTTP and SSE send it as a header,
 * graphql-ws as `connectionParams.authorization`); null when there is none.
 * A header that is not `Bearer <key>` is `unauthorized`, saying what is wrong
 * with it, and never repeating the key.
 */
export function bearerKey(header: unknown): string | null {
  if (header === undefined || header === null) return null;
  if (typeof header !== "string") throw unauthorized(`The authorization value must be a string: ${HOW}.`);
  const value = header.trim();
  if (value === "") return null;
  const match = BEARER.exec(value);
  if (match) return match[1]!;
  if (BEARER_WITHOUT_KEY.test(value)) throw unauthorized(`The Authorization header has no key after Bearer: ${HOW}.`);
  if (LOOKS_LIKE_A_KEY.test(value)) {
    throw unauthorized(`The Authorization header is missing its scheme: ${HOW}, with the word Bearer and a space before the key.`);
  }
  const scheme = value.split(/\s+/, 1)[0]!;
  const named = PLAIN_SCHEME.test(scheme) ? ` (got ${scheme})` : "";
  throw unauthorized(`Only Bearer authentication is supported${named}: ${HOW}.`);
}
