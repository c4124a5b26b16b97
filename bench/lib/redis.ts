import { Redis } from "ioredis";
import { onCleanup } from "./proc.ts";

/** A Redis key prefix of the bench's own (`<label>-<suffix>:`); whatever the instances leave under it is removed at the end. */
export function redisPrefixRemovedAtEnd(redisUrl: string, label: string, suffix: string): string {
  const prefix = `${label}-${suffix}:`;
  onCleanup(`remove Redis keys ${prefix}*`, async () => {
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    try {
      const keys: string[] = [];
      for await (const batch of redis.scanStream({ match: `${prefix}*`, count: 500 })) keys.push(...(batch as string[]));
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
  });
  return prefix;
}
