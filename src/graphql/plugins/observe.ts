import { getOperationAST, type DocumentNode } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { EdgeRequest } from "../../edge/requestLog.ts";
import type { Metrics } from "../../edge/metrics.ts";

export function operationNameOf(document: DocumentNode | undefined, named: string | null | undefined): string | undefined {
  if (named) return named;
  try {
    return document ? (getOperationAST(document)?.name?.value ?? undefined) : undefined;
  } catch {
    return undefined;
  }
}

export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}

function errorCodes(result: unknown): string[] {
  const results = Array.isArray(result) ? result : [result];
  return results.flatMap((one) =>
    ((one as { errors?: { extensions?: { code?: unknown } }[] } | undefined)?.errors ?? []).map((error) =>
      typeof error.extensions?.code === "string" ? error.extensions.code : "internal_error",
    ),
  );
}

/** Operation names for the request log, and error codes for the rejection count. */
export function observe(metrics: Metrics): Plugin {
  return {
    onParams({ params, context }) {
      const { edgeRequest } = context as { edgeRequest?: EdgeRequest };
      if (params.operationName) edgeRequest?.note({ operationName: params.operationName });
    },
    onExecute({ args }) {
      const { edgeRequest } = args.contextValue as { edgeRequest?: EdgeRequest };
      edgeRequest?.note({ operationName: operationNameOf(args.document, args.operationName) });
    },
    onResultProcess({ result }) {
      if (!isAsyncIterable(result)) for (const code of errorCodes(result)) metrics.rejections.inc({ code });
    },
  };
}
