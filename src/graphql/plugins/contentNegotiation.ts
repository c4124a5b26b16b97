import type { Plugin } from "graphql-yoga";
import { invalidRequest } from "../../domain/errors.ts";
import { edgeErrorOf } from "../../edge/errors.ts";
import { graphQLErrorBody } from "../errors.ts";

/** A coded 400 as a fetch Response, in the error shape of every GraphQL answer. */
function refusal(fetchAPI: { Response: typeof Response }, message: string, details: Record<string, unknown>, headers: Record<string, string> = {}): Response {
  const error = edgeErrorOf(invalidRequest(message, details));
  return new fetchAPI.Response(JSON.stringify(graphQLErrorBody(error)), {
    status: error.status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/**
 * graphql-yoga answers a body it cannot parse (415) or a result it cannot
 * encode as asked (406) with an empty response. These answer 400
 * invalid_request instead, in the error shape of every GraphQL answer, saying
 * what to send. Registered after yoga's own parsers and processors, so it only
 * sees what none of them took.
 */
export const codedContentNegotiationErrors: Plugin = {
  onRequestParse({ request, requestParser, endResponse, fetchAPI }) {
    if (requestParser) return;
    const contentType = request.headers.get("content-type");
    const got = contentType ? `Content-Type ${JSON.stringify(contentType.slice(0, 100))} is not supported` : "The request has no Content-Type";
    endResponse(
      refusal(
        fetchAPI,
        `${got}: send the GraphQL request as JSON with Content-Type: application/json, or as a GET query string.`,
        { contentType },
        // The body is left unread, so the connection cannot carry another request.
        { connection: "close" },
      ),
    );
  },
  onResultProcess({ resultProcessor, setResultProcessor, acceptableMediaTypes }) {
    if (resultProcessor) return;
    setResultProcessor(
      (_result, fetchAPI) =>
        refusal(
          fetchAPI,
          "This result cannot be sent in the format the Accept header asks for. Subscriptions need Accept: text/event-stream (GraphQL over SSE) or a graphql-ws WebSocket.",
          { acceptable: acceptableMediaTypes },
        ),
      "application/json",
    );
  },
};
