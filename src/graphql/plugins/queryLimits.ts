import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { GraphQLError, NoSchemaIntrospectionCustomRule, type ValidationContext } from "graphql";
import type { Plugin } from "graphql-yoga";

/**
 * Limits on one GraphQL document, checked while parsing and validating: a
 * document over any of them is refused with `invalid_request` before anything
 * runs. Sized from the largest legitimate operation (a full page of 100
 * sub-accounts with their keys and balances: depth 5, cost about 13,500).
 */
export const QUERY_LIMITS = {
  /** Nesting of selections (`subAccounts > edges > node > apiKeys > id` is 5). */
  maxDepth: 8,
  /** Aliased fields per operation: aliases multiply the work of one request. */
  maxAliases: 15,
  /** Lexical tokens in the document (the GraphiQL example has about 100). */
  maxTokens: 2000,
  /** Directives per operation. */
  maxDirectives: 20,
  /**
   * graphql-armor's cost: 1 per scalar, 2 per object, x1.5 per level, and a list's
   * cost times its literal `first`/`last` (a variable page size counts as 1).
   */
  maxCost: 20_000,
} as const;

const HINTS = {
  maxDepth: "Nest fewer selections; fetch deeper data in a second request.",
  maxAliases: "Use fewer aliases; send separate requests instead.",
  maxTokens: "Send a shorter document.",
  maxDirectives: "Use fewer directives.",
  maxCost: "Ask for fewer fields or smaller pages (first/last), or split the operation.",
} as const;

type LimitName = keyof typeof QUERY_LIMITS;

/** graphql-armor's "Syntax Error: Query depth limit of 8 exceeded, found 9." as a message that says what to do. */
function limitError(limit: LimitName, armorError: GraphQLError): GraphQLError {
  const what = armorError.message.replace(/^Syntax Error: /, "");
  return new GraphQLError(`The operation exceeds a limit of this API: ${what} ${HINTS[limit]}`, {
    extensions: { code: "invalid_request", details: { limit, max: QUERY_LIMITS[limit] } },
  });
}

/** Reported as a validation error: validation goes on, the operation never executes. */
function reportTo(limit: LimitName) {
  return [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(limitError(limit, error))];
}

/** The armor plugins of QUERY_LIMITS; field suggestions ("Did you mean ...") are hidden in production. */
export function queryLimitsPlugin(options: { production: boolean }): Plugin {
  return EnvelopArmorPlugin({
    blockFieldSuggestion: { enabled: options.production },
    maxDepth: { n: QUERY_LIMITS.maxDepth, propagateOnRejection: false, onReject: reportTo("maxDepth") },
    maxAliases: { n: QUERY_LIMITS.maxAliases, propagateOnRejection: false, onReject: reportTo("maxAliases") },
    maxDirectives: { n: QUERY_LIMITS.maxDirectives, propagateOnRejection: false, onReject: reportTo("maxDirectives") },
    costLimit: { maxCost: QUERY_LIMITS.maxCost, propagateOnRejection: false, onReject: reportTo("maxCost") },
    // Counted while parsing, where there is no validation context: the parser stops with this error.
    maxTokens: {
      n: QUERY_LIMITS.maxTokens,
      onReject: [
        (_context, error) => {
          throw limitError("maxTokens", error);
        },
      ],
    },
  }) as Plugin;
}

/** In production the schema is not open to introspection (the printed schema.graphql is the documentation). */
export const disableIntrospection: Plugin = {
  onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule),
};
