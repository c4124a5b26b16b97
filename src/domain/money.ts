/**
 * Money is integer cents, held as bigint in the domain and the database and
 * serialized as a JSON number. The largest amount we accept is the largest
 * integer a JSON number carries exactly.
 */
export const MAX_CENTS = BigInt(Number.MAX_SAFE_INTEGER);

export function centsToNumber(cents: bigint): number {
  if (cents > MAX_CENTS || cents < -MAX_CENTS) {
    throw new RangeError(`amount ${cents} cents exceeds the representable range`);
  }
  return Number(cents);
}
