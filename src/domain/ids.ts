import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
let lastMillis = 0;
let sequence = 0;

/**
 * A 25-character lower-case id (like Prisma's cuid) that sorts by creation
 * time within a process: 9 characters of milliseconds, 4 of a per-millisecond
 * sequence, 12 random. Used where rows are inserted by raw SQL.
 */
export function newId(now: number = Date.now()): string {
  if (now === lastMillis) sequence += 1;
  else {
    lastMillis = now;
    sequence = 0;
  }
  let random = "";
  for (const byte of randomBytes(12)) random += ALPHABET[byte % 36];
  return `m${now.toString(36).padStart(8, "0")}${sequence.toString(36).padStart(4, "0")}${random}`;
}
