import { createGraphQLError, type Plugin } from "graphql-yoga";
import type { ExecutionResult } from "graphql";
import { DomainError } from "../domain/errors.ts";

/**
 * Queries and mutations are answered within `timeoutMs`: the executor is told
 * to stop (at the next field), and the answer does not wait for a resolver that
 * is still stuck. The client gets a retryable internal_error; a send retried
 * with the same idempotencyKey is never charged twice. Subscriptions are not cut.
 */
export function executionTimeout(timeoutMs: number): Plugin {
  const message = `The operation took longer than ${timeoutMs} ms and was stopped. Retry; a send retried with the same idempotencyKey is never charged twice.`;
  return {
    onExecute({ executeFn, setExecuteFn }) {
      setExecuteFn((args) => {
        // Per request only what every request needs: the error is made if the timer fires.
        const timeout = new AbortController();
        (args as { signal?: AbortSignal }).signal = timeout.signal;
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<ExecutionResult>((resolve) => {
          timer = setTimeout(() => {
            const reason = new DomainError("internal_error", message, { retryable: true });
            timeout.abort(reason);
            resolve({ errors: [createGraphQLError(reason.message, { originalError: reason })] });
          }, timeoutMs);
        });
        return Promise.race([Promise.resolve(executeFn(args)), timedOut]).finally(() => clearTimeout(timer)) as ReturnType<typeof executeFn>;
      });
    },
  };
}
