import type { Page } from "../domain/paging.ts";

/** A page of a service's list (src/domain/paging.ts) as a Relay connection: forward paging only. */
export function connectionOf<T>(page: Page<T>) {
  return {
    edges: page.items.map((node, index) => ({ cursor: page.cursors[index]!, node })),
    pageInfo: {
      hasNextPage: page.hasNextPage,
      hasPreviousPage: false,
      startCursor: page.cursors[0] ?? null,
      endCursor: page.endCursor,
    },
  };
}
