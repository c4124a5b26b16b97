import { createGraphQLError, type Plugin } from "graphql-yoga";
import { Kind, getOperationAST, type DocumentNode, type ExecutionResult } from "graphql";
import type { Deadlines } from "../../edge/deadlines.ts";

/**
 * Queries and mutations are answered within the edge's deadline
 * (REQUEST_TIMEOUT_MS, src/edge/deadlines.ts), and the answer does not wait for
 * a resolver that is still stuck. A mutation is also told to stop, so that the
 * mutations after it in the document are not started; a query's remaining
 * fields are reads, left to finish unseen (a signal of its own per query would
 * cost more than they do). The client gets a retryable internal_error; a send
 * retried with the same idempotencyKey is never charged twice. Subscriptions are not cut.
 * A mutation of one field has nothing after it to hold back, so it gets no
 * signal (an AbortController was 1.5% of a send's CPU, bench/notes.md).
 */
export function executionTimeout(deadlines: Deadlines): Plugin {
  // Parsed documents are cached and reused by yoga: the answer is worked out once per document and operation.
  const several = new WeakMap<DocumentNode, Map<string, boolean>>();
  const hasSeveralMutations = (document: DocumentNode, operationName: string | null | undefined): boolean => {
    let byName = several.get(document);
    if (!byName) several.set(document, (byName = new Map()));
    const name = operationName ?? "";
    let answer = byName.get(name);
    if (answer === undefined) {
      const operation = getOperationAST(document, operationName);
      if (!operation) return false; // execution refuses it; an unknown name is not remembered
      const roots = operation.operation === "mutation" ? operation.selectionSet.selections : [];
      // A fragment at the root may hold several fields: it counts as several.
      answer = roots.length > 1 || roots.some((selection) => selection.kind !== Kind.FIELD);
      byName.set(name, answer);
    }
    return answer;
  };
  return {
    onExecute({ executeFn, setExecuteFn }) {
      setExecuteFn((args) => {
        const stop = hasSeveralMutations(args.document, args.operationName) ? new AbortController() : undefined;
        if (stop) (args as { signal?: AbortSignal }).signal = stop.signal;
        return deadlines.within(
          () => executeFn(args),
          (reason): ExecutionResult => ({ errors: [createGraphQLError(reason.message, { originalError: reason })] }),
          stop,
        ) as ReturnType<typeof executeFn>;
      });
    },
  };
}
