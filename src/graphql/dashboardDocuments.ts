import { isObjectType, isRequiredArgument, parse, validate, type GraphQLSchema } from "graphql";
import { sha256Hex } from "../domain/trustedDocuments.ts";
import { schema as gatewaySchema } from "./schema/index.ts";

/**
 * The GraphQL documents of the live spend dashboard (src/frontends/dashboard/):
 * the gateway serves the page, so it knows its documents and always runs them
 * by hash, TRUSTED_DOCUMENTS or not (README.md, "Trusted documents").
 *
 * Each document is written against the schema this gateway serves: a field
 * another change adds later (a team's `lowBalanceThreshold`) is asked for only
 * once the schema has it, so the page never sends a field that does not exist.
 * A new panel adds its document here (skipped while the schema lacks its
 * root field) and its module under src/frontends/dashboard/client/panels/.
 */
export interface DashboardDocument {
  /** The operation's name, which the page uses to find it. */
  name: string;
  /** SHA-256 hex of `text`: what the page sends. */
  hash: string;
  text: string;
}

/** Optional fields the page shows when the schema has them, by type. */
const OPTIONAL_FIELDS: Record<string, string[]> = {
  Team: ["lowBalance", "lowBalanceThreshold"],
};

/** The fields of `type` among `wanted` that the schema has (with no required argument). */
function present(schema: GraphQLSchema, type: string, wanted: string[]): string[] {
  const object = schema.getType(type);
  if (!isObjectType(object)) return [];
  const fields = object.getFields();
  return wanted.filter((name) => fields[name]?.args.every((arg) => !isRequiredArgument(arg)));
}

function hasRootField(schema: GraphQLSchema, root: "Query" | "Subscription", field: string): boolean {
  const type = root === "Query" ? schema.getQueryType() : schema.getSubscriptionType();
  return Boolean(type?.getFields()[field]);
}

interface Spec {
  name: string;
  /** The root field without which the document is left out. */
  requires: { root: "Query" | "Subscription"; field: string };
  text(schema: GraphQLSchema): string;
}

/** A spend alert as the alert feed shows it (the list and the subscription ask for the same fields). */
const ALERT_FIELDS = "id kind sequence subAccountId subAccount { id name } thresholdPercent threshold value messageId createdAt";

/** A sub-account's row: its spend, its limits, and the charge sequence its figures are as of (where live updates resume). */
const SUB_ACCOUNT_FIELDS = "id name externalId status totalSpent creditLimit chargeSequence budget { amount period spent remaining periodStart resetsAt }";

const SPECS: Spec[] = [
  {
    name: "DashboardState",
    requires: { root: "Query", field: "subAccounts" },
    text: (schema) => {
      const team = ["id", "name", "balance", "currency", ...present(schema, "Team", OPTIONAL_FIELDS.Team!)].join(" ");
      return `query DashboardState($after: String) {
  viewer { account { id isSubAccount } team { ${team} } }
  subAccounts(first: 100, after: $after) {
    totalCount
    edges { node { ${SUB_ACCOUNT_FIELDS} } }
    pageInfo { hasNextPage endCursor }
  }
}`;
    },
  },
  {
    // Where each sub-account's charges stand now: read after a spend report to know which charges it counted.
    name: "DashboardSequences",
    requires: { root: "Query", field: "subAccounts" },
    text: () => `query DashboardSequences($after: String) {
  subAccounts(first: 100, after: $after) {
    edges { node { id chargeSequence } }
    pageInfo { hasNextPage endCursor }
  }
}`,
  },
  {
    name: "DashboardReport",
    requires: { root: "Query", field: "spendReport" },
    text: () => `query DashboardReport($from: DateTime!, $to: DateTime!) {
  spendReport(from: $from, to: $to, groupBy: [DAY]) {
    rows { period messages amount }
    total { messages amount }
  }
}`,
  },
  {
    name: "DashboardAlertList",
    requires: { root: "Query", field: "spendAlerts" },
    text: () => `query DashboardAlertList {
  spendAlerts(first: 20) { edges { node { ${ALERT_FIELDS} } } }
}`,
  },
  {
    name: "DashboardSpend",
    requires: { root: "Subscription", field: "spendUpdated" },
    text: () => `subscription DashboardSpend($after: [SpendCursorInput!]) {
  spendUpdated(after: $after) {
    subAccount { id totalSpent creditLimit status }
    amount messageId teamBalance remainingCredit limitReached chargedAt sequence budgetRemaining
  }
}`,
  },
  {
    name: "DashboardAlerts",
    requires: { root: "Subscription", field: "spendAlertRaised" },
    text: () => `subscription DashboardAlerts($afterSequence: Int) {
  spendAlertRaised(afterSequence: $afterSequence) { ${ALERT_FIELDS} }
}`,
  },
];

/** The dashboard's documents for `schema`; each is checked against it, so a wrong one fails the start, never a request. */
export function dashboardDocuments(schema: GraphQLSchema = gatewaySchema): DashboardDocument[] {
  return SPECS.filter((spec) => hasRootField(schema, spec.requires.root, spec.requires.field)).map((spec) => {
    const text = spec.text(schema);
    const errors = validate(schema, parse(text));
    if (errors.length > 0) throw new Error(`The dashboard's document ${spec.name} does not fit the schema: ${errors[0]!.message}`);
    return { name: spec.name, hash: sha256Hex(text), text };
  });
}

let cached: DashboardDocument[] | undefined;

/** The documents for the gateway's own schema, built once. */
export function gatewayDashboardDocuments(): DashboardDocument[] {
  cached ??= dashboardDocuments();
  return cached;
}
