/**
 * The dashboard's one way to the API: POST /graphql, the same endpoint and
 * authentication as any client, sending its documents by hash
 * (src/graphql/dashboardDocuments.ts), so they run whether or not the gateway
 * enforces trusted documents.
 */

/** The page's documents: operation name to SHA-256 hex, embedded in the page by the gateway. */
export type Documents = Record<string, string>;

export function readDocuments(): Documents {
  const element = document.getElementById("dashboard-documents");
  return element?.textContent ? (JSON.parse(element.textContent) as Documents) : {};
}

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export function persisted(hash: string) {
  return { persistedQuery: { version: 1, sha256Hash: hash } };
}

interface GraphQLBody<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** Runs the document `name` with `variables`; any error becomes an ApiError with the API's code and message. */
export async function run<T>(documents: Documents, name: string, variables: Record<string, unknown>, key: string): Promise<T> {
  const hash = documents[name];
  if (!hash) throw new ApiError("invalid_request", `This gateway does not offer the dashboard's ${name} document.`, 0);
  let response: Response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ operationName: name, variables, extensions: persisted(hash) }),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError("unreachable", "The gateway cannot be reached. Retrying when the connection is back.", 0);
  }
  const body = (await response.json().catch(() => ({}))) as GraphQLBody<T>;
  const error = body.errors?.[0];
  if (error) throw new ApiError(error.extensions?.code ?? "internal_error", error.message, response.status);
  if (!body.data) throw new ApiError("internal_error", `The gateway answered ${response.status} without data.`, response.status);
  return body.data;
}
