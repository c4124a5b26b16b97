import { usePersistedOperations } from "@graphql-yoga/plugin-persisted-operations";
import type { Plugin } from "graphql-yoga";
import { DomainError, invalidRequest } from "../domain/errors.ts";
import { documentHash, type TrustedDocuments } from "../domain/trustedDocuments.ts";
import { edgeErrorOf } from "../edge/errors.ts";
import { gatewayDashboardDocuments } from "./dashboardDocuments.ts";
import { graphQLErrorOf } from "./errors.ts";
import { GRAPHIQL_HEADER } from "./graphiql.ts";

/**
 * Documents sent by hash (README.md, "Trusted documents"), over HTTP, SSE and
 * graphql-ws alike. The gateway always knows its dashboard's documents
 * (src/graphql/dashboardDocuments.ts); TRUSTED_DOCUMENTS adds a frontend's
 * manifest and then refuses every document sent as text, except, outside
 * production only, those of the GraphiQL page the gateway serves.
 */
export interface DocumentStore {
  /** TRUSTED_DOCUMENTS is set: only documents sent by hash run. */
  readonly enforced: boolean;
  /** The document with this id (`sha256:<hex>` or `<hex>`), if known. */
  get(id: string): string | undefined;
}

export function documentStore(manifest: TrustedDocuments | undefined): DocumentStore {
  const own = new Map(gatewayDashboardDocuments().map((document) => [document.hash, document.text]));
  return {
    enforced: manifest !== undefined,
    get(id) {
      const hash = documentHash(id);
      return hash === null ? undefined : (manifest?.get(hash) ?? own.get(hash));
    },
  };
}

/** What a request may carry besides `query`: GraphQL over HTTP's `documentId`, or Apollo's `extensions.persistedQuery`. */
interface ByHash {
  documentId?: unknown;
  extensions?: unknown;
}

/** The id of the document a request names by hash, or null when it names none. */
export function requestedDocumentId(params: ByHash): string | null {
  if (typeof params.documentId === "string" && params.documentId !== "") return params.documentId;
  const persisted = (params.extensions as { persistedQuery?: { sha256Hash?: unknown } } | null | undefined)?.persistedQuery;
  return typeof persisted?.sha256Hash === "string" && persisted.sha256Hash !== "" ? persisted.sha256Hash : null;
}

const HOW = 'send its hash as documentId ("sha256:<hex>", as your build\'s persisted-documents.json lists it) or as extensions.persistedQuery.sha256Hash (the hex)';

const TEXT_REFUSED = invalidRequest(
  `This gateway runs trusted documents only: instead of the document's text in query, ${HOW}. Over graphql-ws, send query as an empty string beside the hash.`,
  { trustedDocuments: true },
);

function noDocument(enforced: boolean): DomainError {
  return enforced
    ? invalidRequest(`No document to run: this gateway runs trusted documents only; ${HOW}.`, { trustedDocuments: true })
    : invalidRequest(`No document to run: send the GraphQL document in query, or ${HOW}.`);
}

function unknownDocument(enforced: boolean, id: string | null): DomainError {
  const shown = id === null ? "" : ` ${JSON.stringify(id.slice(0, 80))}`;
  return enforced
    ? invalidRequest(
        `No trusted document has the id${shown}: send the hash of a document in the manifest this gateway was started with (TRUSTED_DOCUMENTS); deploy the manifest your frontend's build wrote together with that build.`,
        { trustedDocuments: true, ...(id === null ? {} : { documentId: id.slice(0, 80) }) },
      )
    : invalidRequest(`No document known to this gateway has the id${shown}: send the GraphQL document's text in query.`, id === null ? undefined : { documentId: id.slice(0, 80) });
}

/** The document a graphql-ws subscribe message runs (graphql-ws requires `query` to be a string: empty when sent by hash). */
export function webSocketDocument(store: DocumentStore, payload: ByHash & { query: string }): string {
  if (payload.query.trim() !== "") {
    if (store.enforced) throw TEXT_REFUSED;
    return payload.query;
  }
  const id = requestedDocumentId(payload);
  if (id === null) throw noDocument(store.enforced);
  const document = store.get(id);
  if (document === undefined) throw unknownDocument(store.enforced, id);
  return document;
}

const asGraphQLError = (error: DomainError) => graphQLErrorOf(edgeErrorOf(error));

/**
 * GraphQL over HTTP and SSE: graphql-yoga's persisted-operations plugin, with
 * our errors (invalid_request, 400). With TRUSTED_DOCUMENTS, a document sent
 * as text runs only outside production and only from the GraphiQL page (its
 * requests carry GRAPHIQL_HEADER).
 */
export function trustedDocumentsPlugin(store: DocumentStore, options: { production: boolean }): Plugin {
  const fromGraphiQL = (request: Request) => !options.production && request.headers.get(GRAPHIQL_HEADER) === "1";
  return usePersistedOperations({
    allowArbitraryOperations: store.enforced ? fromGraphiQL : true,
    extractPersistedOperationId: (params) => requestedDocumentId(params as ByHash),
    getPersistedOperation: (id) => store.get(id) ?? null,
    customErrors: {
      persistedQueryOnly: () => asGraphQLError(TEXT_REFUSED),
      keyNotFound: () => asGraphQLError(noDocument(store.enforced)),
      notFound: (payload) => asGraphQLError(unknownDocument(store.enforced, requestedDocumentId(payload.params as ByHash))),
    },
  }) as Plugin;
}
