import { createClient } from "graphql-ws";
import { SpendUpdates, TeamOverview } from "./operations.js";

const GATEWAY = "http://localhost:4000/graphql";
const key = process.env.KEY!;

/** The hash codegen wrote into a document ("sha256:<hex>"), as persisted-documents.json lists it. */
function documentId(document: unknown): string {
  return (document as { __meta__: { hash: string } }).__meta__.hash;
}

/** A query sent by its hash alone: GraphQL over HTTP's `documentId`. */
export async function teamOverview() {
  const response = await fetch(GATEWAY, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ documentId: documentId(TeamOverview) }),
  });
  return response.json();
}

/** A subscription over graphql-ws: `query` must be a string there, so it is empty and the hash names the document. */
export function watchSpend(onUpdate: (update: unknown) => void) {
  const client = createClient({ url: GATEWAY.replace(/^http/, "ws"), connectionParams: { authorization: `Bearer ${key}` } });
  return client.subscribe(
    { query: "", extensions: { persistedQuery: { version: 1, sha256Hash: documentId(SpendUpdates).replace(/^sha256:/, "") } } },
    { next: onUpdate, error: console.error, complete: () => {} },
  );
}
