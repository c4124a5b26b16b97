import { z } from "zod";
import type { WebhookAttempt as AttemptRow } from "../generated/sqlite/client.ts";
import { WEBHOOK_EVENT_TYPES } from "../domain/webhooks.ts";
import { createEndpointInput, updateEndpointInput, type WebhookEndpointView } from "../services/webhooks/endpoints.ts";
import { listOf, pageQuery, route, type RouteDef } from "./routes.ts";

/**
 * The webhook routes of /v1 (README.md, "Webhooks"): the same service as
 * GraphQL's webhook fields, in the shapes of the other routes (camelCase JSON,
 * `{ items, nextCursor }` lists, lower-case enums). Listed in the route table
 * by src/rest/index.ts, so /v1/openapi.json covers them.
 */

const isoDate = z.string().datetime().describe("ISO 8601 date-time (UTC)");
const eventType = z.enum(WEBHOOK_EVENT_TYPES);

export const webhookEndpointSchema = z.object({
  id: z.string(),
  url: z.string(),
  description: z.string().nullable(),
  events: z.array(eventType).describe("The event types delivered to this endpoint"),
  enabled: z.boolean(),
  disabledAt: isoDate.nullable(),
  disabledReason: z.enum(["failing", "manual"]).nullable().describe("failing: every attempt failed for 3 days; manual: disabled by an update"),
  failingSince: isoDate.nullable().describe("Since when every attempt has failed; null after a success"),
  previousSecretExpiresAt: isoDate.nullable().describe("During a rotation's overlap: when the previous secret stops signing"),
  createdAt: isoDate,
  updatedAt: isoDate,
});

const iso = (date: Date | null) => date?.toISOString() ?? null;

export function webhookEndpointView(endpoint: WebhookEndpointView): z.input<typeof webhookEndpointSchema> {
  return {
    id: endpoint.id,
    url: endpoint.url,
    description: endpoint.description,
    events: endpoint.events,
    enabled: endpoint.enabled,
    disabledAt: iso(endpoint.disabledAt),
    disabledReason: endpoint.disabledReason,
    failingSince: iso(endpoint.failingSince),
    previousSecretExpiresAt: iso(endpoint.previousSecretExpiresAt),
    createdAt: endpoint.createdAt.toISOString(),
    updatedAt: endpoint.updatedAt.toISOString(),
  };
}

const attemptSchema = z.object({
  id: z.string(),
  eventId: z.string().describe("The event's id: the webhook-id header of every attempt to deliver it"),
  eventType,
  attempt: z.number().int().describe("1 for the first attempt of this event to this endpoint"),
  outcome: z.enum(["succeeded", "failed"]),
  httpStatus: z.number().int().nullable().describe("The receiver's HTTP status; null when none arrived"),
  error: z.string().nullable().describe("What went wrong; null on success"),
  durationMs: z.number().int(),
  nextRetryAt: isoDate.nullable().describe("When the next attempt was scheduled; null if this one succeeded or was the last"),
  attemptedAt: isoDate,
});

function attemptView(row: AttemptRow): z.input<typeof attemptSchema> {
  return {
    id: row.id,
    eventId: row.eventId,
    eventType: row.eventType as z.infer<typeof eventType>,
    attempt: row.attempt,
    outcome: row.outcome as "succeeded" | "failed",
    httpStatus: row.httpStatus,
    error: row.error,
    durationMs: row.durationMs,
    nextRetryAt: iso(row.nextRetryAt),
    attemptedAt: row.createdAt.toISOString(),
  };
}

const endpointResponse = z.object({ endpoint: webhookEndpointSchema });
const secretResponse = z.object({ endpoint: webhookEndpointSchema, secret: z.string().describe("The signing secret (whsec_...): shown only in this response") });
const idParam = z.object({ id: z.string().describe("Webhook endpoint id") }).strict();
const TAG = "Webhooks";

export const webhookRoutes: RouteDef[] = [
  route({
    operationId: "createWebhookEndpoint",
    method: "POST",
    path: "/v1/webhook-endpoints",
    summary: "Create a webhook endpoint; the response carries its signing secret, once. `events` omitted: every type but message.delivered and message.failed.",
    tag: TAG,
    access: "webhooks:write",
    body: createEndpointInput,
    bodyRequired: true,
    status: 201,
    response: secretResponse,
    async handler({ actor, body, services }) {
      const { endpoint, secret } = await services.webhooks.endpoints.create(actor, body);
      return { endpoint: webhookEndpointView(endpoint), secret };
    },
  }),
  route({
    operationId: "listWebhookEndpoints",
    method: "GET",
    path: "/v1/webhook-endpoints",
    summary: "List the team's webhook endpoints, oldest first, with cursor pagination.",
    tag: TAG,
    access: "webhooks:write",
    query: z.object(pageQuery).strict(),
    status: 200,
    response: z.object({ items: z.array(webhookEndpointSchema), nextCursor: z.string().nullable() }),
    async handler({ actor, query, services }) {
      return listOf(await services.webhooks.endpoints.list(actor, query), webhookEndpointView);
    },
  }),
  route({
    operationId: "getWebhookEndpoint",
    method: "GET",
    path: "/v1/webhook-endpoints/:id",
    summary: "Get one webhook endpoint of the team (never its secret).",
    tag: TAG,
    access: "webhooks:write",
    params: idParam,
    status: 200,
    response: endpointResponse,
    async handler({ actor, params, services }) {
      return { endpoint: webhookEndpointView(await services.webhooks.endpoints.get(actor, params.id)) };
    },
  }),
  route({
    operationId: "updateWebhookEndpoint",
    method: "PATCH",
    path: "/v1/webhook-endpoints/:id",
    summary: "Change url, events or description; enabled false stops deliveries, true resumes them.",
    tag: TAG,
    access: "webhooks:write",
    params: idParam,
    body: updateEndpointInput,
    status: 200,
    response: endpointResponse,
    async handler({ actor, params, body, services }) {
      return { endpoint: webhookEndpointView(await services.webhooks.endpoints.update(actor, params.id, body ?? {})) };
    },
  }),
  route({
    operationId: "deleteWebhookEndpoint",
    method: "DELETE",
    path: "/v1/webhook-endpoints/:id",
    summary: "Delete a webhook endpoint with its delivery history.",
    tag: TAG,
    access: "webhooks:write",
    params: idParam,
    status: 204,
    async handler({ actor, params, services }) {
      await services.webhooks.endpoints.delete(actor, params.id);
      return undefined;
    },
  }),
  route({
    operationId: "rotateWebhookSecret",
    method: "POST",
    path: "/v1/webhook-endpoints/:id/rotate-secret",
    summary: "Replace the signing secret (returned once); the previous one also signs for 24 hours.",
    tag: TAG,
    access: "webhooks:write",
    params: idParam,
    status: 200,
    response: secretResponse.extend({ previousSecretExpiresAt: isoDate.describe("Until then, the previous secret signs too") }),
    async handler({ actor, params, services }) {
      const { endpoint, secret, previousSecretExpiresAt } = await services.webhooks.endpoints.rotateSecret(actor, params.id);
      return { endpoint: webhookEndpointView(endpoint), secret, previousSecretExpiresAt: previousSecretExpiresAt.toISOString() };
    },
  }),
  route({
    operationId: "listWebhookDeliveries",
    method: "GET",
    path: "/v1/webhook-endpoints/:id/deliveries",
    summary: "Every attempt to deliver to the endpoint, newest first: event, attempt number, HTTP status or error, duration, next retry.",
    tag: TAG,
    access: "webhooks:write",
    params: idParam,
    query: z.object(pageQuery).strict(),
    status: 200,
    response: z.object({ items: z.array(attemptSchema), nextCursor: z.string().nullable() }),
    async handler({ actor, params, query, services }) {
      return listOf(await services.webhooks.endpoints.attempts(actor, params.id, query), attemptView);
    },
  }),
  route({
    operationId: "redeliverWebhookEvent",
    method: "POST",
    path: "/v1/webhook-endpoints/:id/events/:eventId/redeliver",
    summary: "Deliver an event to the endpoint again, at once, with the same webhook-id; its retries start over.",
    tag: TAG,
    access: "webhooks:write",
    params: z.object({ id: z.string().describe("Webhook endpoint id"), eventId: z.string().describe("Event id (the webhook-id header)") }).strict(),
    status: 200,
    response: z.object({ endpointId: z.string(), eventId: z.string(), eventType, nextAttemptAt: isoDate }),
    errors: ["conflict"],
    async handler({ actor, params, services }) {
      const result = await services.webhooks.endpoints.redeliver(actor, params.id, params.eventId);
      return { ...result, nextAttemptAt: result.nextAttemptAt.toISOString() };
    },
  }),
];
