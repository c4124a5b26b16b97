import { createGraphQLError, type Plugin } from "graphql-yoga";
import type { ExecutionResult } from "graphql";
import { timedOut } from "../../edge/errors.ts";

/**
 * Queries and mutations are answered within `timeoutMs`: the executor is told
 * to stop (at the next field), and the answer does not wait for a resolver that
 * is still stuck. The client gets a retryable internal_error; a send retried
 * with the same idempotencyKey is never charged twice. Subscriptions are not cut.
 */
export function executionTimeout(timeoutMs: number): Plugin {
  return {
    onExecute({ executeFn, setExecuteFn }) {
      setExecuteFn((args) => {
        // Per request only what every request needs: the error is made if the timer fires.
        const timeout = new AbortController();
        (args as { signal?: AbortSignal }).signal = timeout.signal;
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<ExecutionResult>((resolve) => {
          timer = setTimeout(() => {
            const reason = timedOut(timeoutMs);
            timeout.abort(reason);
            resolve({ errors: [createGraphQLError(reason.message, { originalError: reason })] });
          }, timeoutMs);
        });
        return Promise.race([Promise.resolve(executeFn(args)), expired]).finally(() => clearTimeout(timer)) as ReturnType<typeof executeFn>;
      });
    },
  };
}
