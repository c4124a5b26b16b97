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
