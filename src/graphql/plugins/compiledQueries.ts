import { useGraphQlJit } from "@envelop/graphql-jit";
import { GraphQLError, getOperationAST, getVariableValues, type ExecutionArgs, type ExecutionResult, type Source } from "graphql";
import type { Plugin } from "graphql-yoga";

/**
 * Queries run as code compiled once per document (graphql-jit) rather than
 * walked field by field by graphql-js: about half the CPU of a large answer
 * such as the 100-sub-account listing (bench/notes.md). Only queries whose
 * variables graphql-js accepts: a refused variable is reported by graphql-js,
 * in the words src/graphql/errors.ts reads the field at fault from. Mutations
 * (their input errors likewise) and subscriptions
 * (src/graphql/plugins/sharedSubscriptionResults.ts) keep graphql-js.
 */
export function compiledQueries(): Plugin {
  const jit = useGraphQlJit();
  return {
    onExecute(payload) {
      if (!compiles(payload.args)) return undefined;
      void jit.onExecute!(payload as never);
      const source = payload.args.document.loc?.source;
      return {
        onExecuteDone({ result, setResult }) {
          const { errors } = result as ExecutionResult;
          if (source && errors?.length) setResult({ ...(result as ExecutionResult), errors: errors.map((error) => located(error, source)) });
        },
      };
    },
  };
}

function compiles(args: ExecutionArgs): boolean {
  const operation = getOperationAST(args.document, args.operationName);
  if (operation?.operation !== "query") return false;
  if (!operation.variableDefinitions?.length) return true;
  const coerced = getVariableValues(args.schema, operation.variableDefinitions, args.variableValues ?? {}, { maxErrors: 1 });
  return coerced.errors === undefined;
}

/**
 * A compiled query's error knows its line and column but not its place in the
 * source, which graphql-js errors carry and every later step (the error
 * mapping of src/graphql/errors.ts, yoga's rendering) rebuilds the locations
 * from: the same error as graphql-js would have made it.
 */
function located(error: GraphQLError, source: Source): GraphQLError {
  if (error.nodes || error.source || !error.locations?.length) return error;
  const lineStarts = [0];
  for (let index = source.body.indexOf("\n"); index !== -1; index = source.body.indexOf("\n", index + 1)) lineStarts.push(index + 1);
  const positions = error.locations.map(({ line, column }) => (lineStarts[line - 1] ?? 0) + column - 1);
  return new GraphQLError(error.message, { source, positions, path: error.path, originalError: error.originalError ?? undefined, extensions: error.extensions });
}
