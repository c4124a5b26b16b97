/** The GraphQL operations the bench sends. */

/** A sub-account key's own balance view. */
export const BALANCE_QUERY = "query Balance { balance { balance currency isSubAccount totalSpent creditLimit remainingCredit } }";

/** The 100-sub-account listing with keys and balance (a main key). */
export const LISTING_QUERY = `query Listing {
  subAccounts(first: 100) {
    totalCount
    edges { node { id name totalSpent creditLimit apiKeys { id } balance { balance totalSpent creditLimit remainingCredit } } }
  }
}`;

export const body = (query: string, variables?: Record<string, unknown>) => JSON.stringify(variables ? { query, variables } : { query });

/** A year of the team's spend by UTC day: what a reseller's monthly rebilling or a dashboard's chart reads. */
export const REPORT_QUERY = `query YearByDay($from: DateTime!, $to: DateTime!) {
  spendReport(from: $from, to: $to, groupBy: [DAY]) {
    rows { period messages segments amount }
    total { messages segments amount }
  }
}`;
