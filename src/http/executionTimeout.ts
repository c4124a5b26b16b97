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
  return {
    onExecute({ executeFn, setExecuteFn }) {
      setExecuteFn((args) => {
        const reason = new DomainError(
          "internal_error",
          `The operation took longer than ${timeoutMs} ms and was stopped. Retry; a send retried with the same idempotencyKey is never charged twice.`,
          { retryable: true },
        );
        const timeout = new AbortController();
        const request = (args.contextValue as { request?: Request }).request;
        (args as { signal?: AbortSignal }).signal = request?.signal ? AbortSignal.any([request.signal, timeout.signal]) : timeout.signal;
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<ExecutionResult>((resolve) => {
          timer = setTimeout(() => {
            timeout.abort(reason);
            resolve({ errors: [createGraphQLError(reason.message, { originalError: reason })] });
          }, timeoutMs);
        });
        return Promise.race([Promise.resolve(executeFn(args)), timedOut]).finally(() => clearTimeout(timer)) as ReturnType<typeof executeFn>;
      });
    },
  };
}
