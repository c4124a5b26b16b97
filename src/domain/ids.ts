import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
let lastMillis = 0;
let sequence = 0;
/** Random bytes drawn RANDOM_POOL_BYTES at a time: one call into the CSPRNG per 341 ids instead of one per id. */
const RANDOM_POOL_BYTES = 4096;
const RANDOM_BYTES_PER_ID = 12;
let pool = randomBytes(RANDOM_POOL_BYTES);
let poolOffset = 0;

function randomSuffix(): string {
  if (poolOffset + RANDOM_BYTES_PER_ID > RANDOM_POOL_BYTES) {
    pool = randomBytes(RANDOM_POOL_BYTES);
    poolOffset = 0;
  }
  let random = "";
  for (let index = poolOffset; index < poolOffset + RANDOM_BYTES_PER_ID; index += 1) random += ALPHABET[pool[index]! % 36];
  poolOffset += RANDOM_BYTES_PER_ID;
  return random;
}

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
  return `m${now.toString(36).padStart(8, "0")}${sequence.toString(36).padStart(4, "0")}${randomSuffix()}`;
}
