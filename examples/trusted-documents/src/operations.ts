import { graphql } from "./gql/index.js";

/** The operations this frontend sends; codegen lists each in the manifest. */
export const TeamOverview = graphql(`
  query TeamOverview {
    viewer {
      team { name balance currency }
    }
    subAccounts(first: 100) {
      totalCount
      edges { node { id name status totalSpent creditLimit } }
    }
  }
`);

export const SendMessage = graphql(`
  mutation SendMessage($input: SendMessageInput!) {
    sendMessage(input: $input) { id cost status }
  }
`);

export const SpendUpdates = graphql(`
  subscription SpendUpdates {
    spendUpdated {
      subAccount { id totalSpent creditLimit }
      amount
      teamBalance
    }
  }
`);
