import { createHash } from "node:crypto";
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";
import type { Plugin } from "graphql-yoga";

/**
 * The operations GraphiQL opens on (README.md, "GraphiQL"): a ready example of
 * each kind and, in the Headers tab, the header to fill in.
 */
export const GRAPHIQL_EXAMPLE = `# Paste your API key into the Headers tab below:
#   { "Authorization": "Bearer zv_live_..." }
# The demo team's main key is printed once by the first \`npm start\`.
# Put the cursor in an operation and press Ctrl+Enter (Cmd+Enter) to run it.

query Overview {
  viewer {
    account { id name isSubAccount }
    team { name balance currency }
    isTestMode
  }
  balance { balance currency isSubAccount totalSpent creditLimit }
  subAccounts(first: 10) {
    totalCount
    edges { node { id name externalId status totalSpent creditLimit apiKeys { keyPrefix environment revokedAt } } }
    pageInfo { hasNextPage endCursor }
  }
}

mutation CreateSubAccount {
  createSubAccount(input: { name: "Client ABC", externalId: "client_123", creditLimit: 100000, metadata: { plan: "enterprise" } }) {
    apiKey
    subAccount { id name status creditLimit }
  }
}

# Live: every charge of your sub-accounts, as it commits (stop it with the same button).
subscription SpendUpdates {
  spendUpdated {
    subAccount { id totalSpent creditLimit }
    amount
    teamBalance
    remainingCredit
    limitReached
    chargedAt
  }
}
`;

/**
 * The header GraphiQL's page adds to every request it sends: outside production
 * it lets GraphiQL send any document while TRUSTED_DOCUMENTS is set (README.md,
 * "Trusted documents"). It grants nothing else, and nothing in production.
 */
export const GRAPHIQL_HEADER = "x-graphiql";

export const GRAPHIQL_OPTIONS = {
  title: "Sub-accounts gateway",
  defaultQuery: GRAPHIQL_EXAMPLE,
  // Empty, not a placeholder key: GraphiQL sends these headers with its schema
  // request too, and a placeholder would be refused as a malformed key.
  headers: JSON.stringify({ Authorization: "" }, null, 2),
  defaultEditorToolsVisibility: "headers" as const,
  // The key stays in the page: GraphiQL would otherwise keep the headers in localStorage.
  shouldPersistHeaders: false,
  // GraphQL over SSE at /graphql: each subscription is a POST carrying the Headers tab's Authorization.
  subscriptionsProtocol: "GRAPHQL_SSE" as const,
  additionalHeaders: { [GRAPHIQL_HEADER]: "1" },
};

/**
 * The page, rendered once: GraphiQL's scripts, styles and editor workers are
 * inlined by @graphql-yoga/render-graphiql, so it loads nothing from anywhere
 * but this gateway. Its Content-Security-Policy allows that one inline script
 * (by its hash), the editor's workers (blob: URLs the script creates), and
 * requests to this origin only.
 */
export interface GraphiQLPage {
  html: string;
  contentSecurityPolicy: string;
}

let page: GraphiQLPage | undefined;

function inlineScriptHash(html: string): string {
  const start = html.indexOf("<script>") + "<script>".length;
  const end = html.lastIndexOf("</script>");
  if (start < "<script>".length || end < start) throw new Error("GraphiQL's page has no inline script to allow");
  return createHash("sha256").update(html.slice(start, end), "utf8").digest("base64");
}

export function graphiqlPage(): GraphiQLPage {
  if (page) return page;
  const html = renderGraphiQL(GRAPHIQL_OPTIONS);
  const contentSecurityPolicy = [
    "default-src 'self'",
    `script-src 'sha256-${inlineScriptHash(html)}'`,
    "worker-src blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  page = { html, contentSecurityPolicy };
  return page;
}

/** The page's security headers, on the one HTML response yoga sends: GraphiQL. */
export const graphiqlPageHeaders: Plugin = {
  onResponse({ response }) {
    if (!response.headers.get("content-type")?.startsWith("text/html")) return;
    response.headers.set("content-security-policy", graphiqlPage().contentSecurityPolicy);
    response.headers.set("x-content-type-options", "nosniff");
    response.headers.set("referrer-policy", "no-referrer");
    response.headers.set("cache-control", "no-cache");
  },
};
