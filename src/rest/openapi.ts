import { z } from "zod";
import { zodToJsonSchema } from "zod-to-json-schema";
import { ERROR_STATUS, type ErrorCode } from "../domain/errors.ts";
import type { RouteDef } from "./routes.ts";
import { errorSchema } from "./views.ts";

/** JSON Schema (OpenAPI 3.0 dialect) of a zod schema, inlined. Pipes show both the accepted input and the rule. */
function jsonSchema(schema: z.ZodTypeAny): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = zodToJsonSchema(schema, {
    target: "openApi3",
    $refStrategy: "none",
    effectStrategy: "input",
    pipeStrategy: "all",
    // Only .strict() objects (request bodies) refuse other fields; responses may grow.
    removeAdditionalStrategy: "strict",
  }) as Record<string, unknown>;
  return rest;
}

/** `/v1/sub-accounts/:id` -> `/v1/sub-accounts/{id}` */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_]\w*)/g, "{$1}");
}

function parameters(route: RouteDef): object[] {
  const out: object[] = [];
  for (const [location, schema] of [["path", route.params], ["query", route.query]] as const) {
    if (!schema) continue;
    for (const [name, field] of Object.entries(schema.shape as Record<string, z.ZodTypeAny>)) {
      // A parameter's optionality is `required`, not part of its schema (and a query string has no null).
      let inner = field;
      let description = field.description;
      while (inner instanceof z.ZodOptional || inner instanceof z.ZodNullable) {
        inner = inner.unwrap() as z.ZodTypeAny;
        description ??= inner.description;
      }
      const { description: innerDescription, ...fieldSchema } = jsonSchema(inner);
      description ??= innerDescription as string | undefined;
      out.push({
        name,
        in: location,
        required: location === "path" || !field.isOptional(),
        ...(description ? { description } : {}),
        schema: fieldSchema,
      });
    }
  }
  return out;
}

const ERROR_DESCRIPTIONS: Record<ErrorCode, string> = {
  invalid_request: "Invalid request: malformed JSON, unknown fields, wrong types, values out of range, or a body over the size limit.",
  unauthorized: "Missing, unknown, revoked, expired or suspended API key.",
  forbidden: "The key does not hold the scope this operation needs (`x-required-scope`; `details.requiredScope`): sub-account keys never hold a management scope.",
  not_found: "No such object in the caller's team (another team's ids look unknown).",
  credit_limit_exceeded: "Payment required: the sub-account's credit limit, or the team balance, does not cover the charge.",
  insufficient_balance: "Payment required: the sub-account's credit limit, or the team balance, does not cover the charge.",
  budget_exceeded: "Payment required: the sub-account's budget for the current period does not cover the charge (details: periodSpent, budget, period, resetsAt).",
  conflict: "Conflict.",
  rate_limited: "Too many requests.",
  internal_error: "Internal error (nothing internal is disclosed).",
};

function errorCodes(route: RouteDef): ErrorCode[] {
  const codes = new Set<ErrorCode>(["internal_error"]);
  if (route.access !== "public") codes.add("unauthorized");
  if (route.access !== "public" && route.access !== "key") codes.add("forbidden");
  if (route.params) codes.add("not_found");
  if (route.params || route.query || route.body) codes.add("invalid_request");
  for (const code of route.errors ?? []) codes.add(code);
  return [...codes];
}

function responses(route: RouteDef): Record<string, object> {
  const out: Record<string, object> = {};
  out[String(route.status)] =
    route.status === 204 || !route.response
      ? { description: "Done; no content." }
      : { description: "Success.", content: { "application/json": { schema: jsonSchema(route.response) } } };
  for (const code of errorCodes(route)) {
    const status = String(ERROR_STATUS[code]);
    out[status] ??= {
      description: ERROR_DESCRIPTIONS[code],
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    };
  }
  return out;
}

/** The OpenAPI 3 document of the REST surface, derived from the route table. */
export function buildOpenApi(routes: readonly RouteDef[], version: string): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const route of routes) {
    const operations = (paths[openApiPath(route.path)] ??= {});
    const body = route.body
      ? {
          requestBody: {
            required: route.bodyRequired ?? false,
            content: { "application/json": { schema: jsonSchema(route.body) } },
          },
        }
      : {};
    operations[route.method.toLowerCase()] = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.sdk ? { description: `SDK (@zavudev/sdk): \`client.${route.sdk}()\`.` } : {}),
      tags: [route.tag],
      ...(route.access === "public" ? { security: [] } : {}),
      ...(route.access !== "public" && route.access !== "key" ? { "x-required-scope": route.access } : {}),
      parameters: parameters(route),
      ...body,
      responses: responses(route),
    };
  }
  return {
    openapi: "3.0.3",
    info: {
      title: "Sub-accounts gateway REST API",
      version,
      description:
        "The /v1 surface served for the official SDK (@zavudev/sdk): pass the gateway as `baseURL`. Money is integer cents; dates are ISO 8601 (API key timestamps are epoch milliseconds, as in the SDK's types). Errors are `{ code, message, details? }`.",
    },
    servers: [{ url: "/" }],
    security: [{ bearerAuth: [] }],
    components: {
      securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", description: "An API key: zv_live_... (main) or zv_live_sub_... (sub-account)." } },
      schemas: { Error: jsonSchema(errorSchema) },
    },
    paths,
  };
}
