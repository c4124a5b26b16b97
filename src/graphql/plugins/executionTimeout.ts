import { createGraphQLError, type Plugin } from "graphql-yoga";
import type { ExecutionResult } from "graphql";
import type { Deadlines } from "../../edge/deadlines.ts";

/**
 * Queries and mutations are answered within the edge's deadline
 * (REQUEST_TIMEOUT_MS, src/edge/deadlines.ts): the executor is told to stop (at
 * the next field), and the answer does not wait for a resolver that is still
 * stuck. The client gets a retryable internal_error; a send retried with the
 * same idempotencyKey is never charged twice. Subscriptions are not cut.
 */
export function executionTimeout(deadlines: Deadlines): Plugin {
  return {
    onExecute({ executeFn, setExecuteFn }) {
      setExecuteFn((args) =>
        deadlines.within(
          (signal) => {
            (args as { signal?: AbortSignal }).signal = signal;
            return executeFn(args);
          },
          (reason): ExecutionResult => ({ errors: [createGraphQLError(reason.message, { originalError: reason })] }),
        ) as ReturnType<typeof executeFn>,
      );
    },
  };
}
