import { createGraphQLError, type Plugin } from "graphql-yoga";
import { getOperationAST, type ExecutionResult } from "graphql";
import type { Deadlines } from "../../edge/deadlines.ts";

/**
 * Queries and mutations are answered within the edge's deadline
 * (REQUEST_TIMEOUT_MS, src/edge/deadlines.ts), and the answer does not wait for
 * a resolver that is still stuck. A mutation is also told to stop, so that the
 * mutations after it in the document are not started; a query's remaining
 * fields are reads, left to finish unseen (a signal of its own per query would
 * cost more than they do). The client gets a retryable internal_error; a send
 * retried with the same idempotencyKey is never charged twice. Subscriptions are not cut.
 */
export function executionTimeout(deadlines: Deadlines): Plugin {
  return {
    onExecute({ executeFn, setExecuteFn }) {
      setExecuteFn((args) => {
        const stop = getOperationAST(args.document, args.operationName)?.operation === "mutation" ? new AbortController() : undefined;
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
