import { z } from "zod";
import { invalidRequest } from "./errors.ts";
import { LIMITS, idSchema, pageSizeSchema } from "./validation.ts";

/**
 * Paging, the one description of it for every list of GraphQL and REST:
 * forward only, `first` (REST `limit`) 1 to 100 (default 20), and an opaque
 * cursor that is the sort key of the last item of the previous page. A cursor
 * that is not one of this list's is `invalid_request`; one whose item has
 * since gone (purged) simply continues after where it stood.
 */
export interface PageRequest {
  size: number;
  /** The sort key of the last item already seen (decoded from the cursor), or null for the first page. */
  after: string[] | null;
}

export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
  /** The cursor of the last item, to pass as `after` (REST: `cursor`) for the next page. */
  endCursor: string | null;
  /** Each item's cursor, in order (GraphQL edges carry one each). */
  cursors: string[];
}

const CURSOR_MAX_CHARS = 512;

export function encodeCursor(sortKey: string[]): string {
  return Buffer.from(JSON.stringify(sortKey)).toString("base64url");
}

/** Which sort keys a list's cursors may hold: how many parts, and what each part must look like. */
export interface CursorShape {
  arity: number;
  isValid?(sortKey: string[]): boolean;
}

/** Lists sorted by id alone. */
const ONE_ID: CursorShape = { arity: 1, isValid: ([id]) => idSchema.safeParse(id).success };

function decodeCursor(cursor: string, shape: CursorShape, field: string): string[] {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    decoded = undefined;
  }
  const valid =
    cursor.length <= CURSOR_MAX_CHARS &&
    Array.isArray(decoded) &&
    decoded.length === shape.arity &&
    decoded.every((part) => typeof part === "string" && part.length > 0 && part.length <= LIMITS.idMaxChars) &&
    (shape.isValid?.(decoded as string[]) ?? true);
  if (!valid) {
    const message = `not a cursor of this list: pass the cursor of the previous page's last item (GraphQL pageInfo.endCursor, REST nextCursor), or omit ${field} to start at the beginning`;
    throw invalidRequest(`Invalid ${field}: ${message}.`, { field, issues: [{ field, message }] });
  }
  return decoded as string[];
}

const pageArgs = z
  .object({
    first: pageSizeSchema.nullish(),
    limit: pageSizeSchema.nullish(),
    after: z.string().nullish(),
    cursor: z.string().nullish(),
  })
  .passthrough();

/**
 * The page asked for by GraphQL (`first`, `after`) or REST (`limit`, `cursor`)
 * arguments, for a list whose cursors have `shape`. Backward paging (`last`,
 * `before`) is refused.
 */
export function pageRequest(args: object, shape: CursorShape = ONE_ID): PageRequest {
  const raw = args as Record<string, unknown>;
  for (const field of ["last", "before"]) {
    if (raw[field] != null) throw invalidRequest(`Invalid ${field}: lists page forward only; use first and after.`, { field });
  }
  const parsed = pageArgs.safeParse(args);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? "first");
    throw invalidRequest(`Invalid ${field}: ${issue.message}`, { field, issues: [{ field, message: issue.message }] });
  }
  const { first, limit, after, cursor } = parsed.data;
  const cursorField = after != null ? "after" : "cursor";
  const given = after ?? cursor;
  return {
    size: first ?? limit ?? LIMITS.pageDefaultSize,
    after: given == null || given === "" ? null : decodeCursor(given, shape, cursorField),
  };
}

/**
 * Reads one page with `find` (asked for one row more than the page, to know
 * whether another follows) and gives each item its cursor.
 */
export async function readPage<T>(
  request: PageRequest,
  find: (take: number) => Promise<T[]>,
  sortKeyOf: (item: T) => string[],
): Promise<Page<T>> {
  const rows = await find(request.size + 1);
  const items = rows.slice(0, request.size);
  const cursors = items.map((item) => encodeCursor(sortKeyOf(item)));
  return { items, hasNextPage: rows.length > request.size, endCursor: cursors.at(-1) ?? null, cursors };
}
