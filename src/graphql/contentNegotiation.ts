import type { Plugin } from "graphql-yoga";

function codedError(fetchAPI: { Response: typeof Response }, status: number, message: string, details: Record<string, unknown>, headers: Record<string, string> = {}): Response {
  return new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions: { code: "invalid_request", details } }] }), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/**
 * graphql-yoga answers a body it cannot parse (415) or a result it cannot
 * encode as asked (406) with an empty response. These answer 400
 * invalid_request instead, in the error shape of DESIGN.md section 3, saying
 * what to send. Registered after yoga's own
 * parsers and processors, so it only sees what none of them took.
 */
export const codedContentNegotiationErrors: Plugin = {
  onRequestParse({ request, requestParser, endResponse, fetchAPI }) {
    if (requestParser) return;
    endResponse(
      codedError(
        fetchAPI,
        400,
        "Unsupported Content-Type: send the GraphQL request as JSON (Content-Type: application/json), or as a GET query string.",
        { contentType: request.headers.get("content-type") },
        // The body is left unread, so the connection cannot carry another request.
        { connection: "close" },
      ),
    );
  },
  onResultProcess({ resultProcessor, setResultProcessor, acceptableMediaTypes }) {
    if (resultProcessor) return;
    setResultProcessor(
      (_result, fetchAPI) =>
        codedError(
          fetchAPI,
          400,
          "This result cannot be sent in the format the Accept header asks for. Subscriptions need Accept: text/event-stream (GraphQL over SSE) or a graphql-ws WebSocket.",
          { acceptable: acceptableMediaTypes },
        ),
      "application/json",
    );
  },
};
