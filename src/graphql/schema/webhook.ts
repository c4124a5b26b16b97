import type { WebhookAttempt as AttemptRow } from "../../generated/sqlite/client.ts";
import { OPT_IN_EVENT_TYPES, WEBHOOK_EVENT_TYPES, type WebhookEventType as EventTypeValue } from "../../domain/webhooks.ts";
import type { WebhookEndpointView } from "../../services/webhooks/endpoints.ts";
import { builder } from "../builder.ts";
import { connectionOf } from "../connections.ts";

/** `sub_account.created` is SUB_ACCOUNT_CREATED, like the schema's other enums (upper case in GraphQL). */
export const WebhookEventType = builder.enumType("WebhookEventType", {
  description: "The events delivered to webhook endpoints. The body's `type` is the lower-case name, e.g. sub_account.created.",
  values: Object.fromEntries(
    WEBHOOK_EVENT_TYPES.map((type) => [
      type.replace(".", "_").toUpperCase(),
      { value: type, description: OPT_IN_EVENT_TYPES.includes(type) ? `${type}: delivered only to endpoints that list it.` : type },
    ]),
  ) as Record<string, { value: EventTypeValue; description: string }>,
});

const DisabledReason = builder.enumType("WebhookEndpointDisabledReason", {
  values: {
    FAILING: { value: "failing", description: "The gateway disabled it: every delivery attempt failed for 3 days." },
    MANUAL: { value: "manual", description: "Disabled with updateWebhookEndpoint(enabled: false)." },
  } as const,
});

export const WebhookEndpoint = builder.objectRef<WebhookEndpointView>("WebhookEndpoint").implement({
  description: "Where the team's events are delivered, signed with the endpoint's secret (shown only by createWebhookEndpoint and rotateWebhookSecret).",
  fields: (t) => ({
    id: t.exposeID("id"),
    url: t.exposeString("url"),
    description: t.exposeString("description", { nullable: true }),
    events: t.field({ type: [WebhookEventType], resolve: (endpoint) => endpoint.events }),
    enabled: t.exposeBoolean("enabled", { description: "Disabled endpoints receive no new events; their pending deliveries wait until enabled." }),
    disabledAt: t.expose("disabledAt", { type: "DateTime", nullable: true }),
    disabledReason: t.field({ type: DisabledReason, nullable: true, resolve: (endpoint) => endpoint.disabledReason }),
    failingSince: t.expose("failingSince", {
      type: "DateTime",
      nullable: true,
      description: "Since when every attempt has failed (null after a success); after 3 days the endpoint is disabled.",
    }),
    previousSecretExpiresAt: t.expose("previousSecretExpiresAt", {
      type: "DateTime",
      nullable: true,
      description: "During a rotation's overlap: when the previous secret stops signing (both sign until then).",
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

const AttemptOutcome = builder.enumType("WebhookAttemptOutcome", {
  values: { SUCCEEDED: { value: "succeeded" }, FAILED: { value: "failed" } } as const,
});

const WebhookDeliveryAttempt = builder.objectRef<AttemptRow>("WebhookDeliveryAttempt").implement({
  description: "One attempt to deliver an event to an endpoint.",
  fields: (t) => ({
    id: t.exposeID("id"),
    eventId: t.exposeID("eventId", { description: "The event's id: the webhook-id header of every attempt to deliver it." }),
    eventType: t.field({ type: WebhookEventType, resolve: (row) => row.eventType as EventTypeValue }),
    attempt: t.exposeInt("attempt", { description: "1 for the first attempt of this event to this endpoint." }),
    outcome: t.field({ type: AttemptOutcome, resolve: (row) => row.outcome as "succeeded" | "failed" }),
    httpStatus: t.exposeInt("httpStatus", { nullable: true, description: "The receiver's HTTP status; null when none arrived." }),
    error: t.exposeString("error", { nullable: true, description: "What went wrong (timeout, connection refused, status...); null on success." }),
    durationMs: t.exposeInt("durationMs"),
    nextRetryAt: t.expose("nextRetryAt", { type: "DateTime", nullable: true, description: "When the next attempt was scheduled; null if this one succeeded or was the last." }),
    attemptedAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

const CreateInput = builder.inputType("CreateWebhookEndpointInput", {
  fields: (t) => ({
    url: t.string({ required: true, description: "An http(s) URL; https in production, where it must not lead to a private address." }),
    events: t.field({ type: [WebhookEventType], description: "Omitted: every event type but MESSAGE_DELIVERED and MESSAGE_FAILED." }),
    description: t.string({ description: "At most 500 characters." }),
  }),
});

const UpdateInput = builder.inputType("UpdateWebhookEndpointInput", {
  fields: (t) => ({
    url: t.string(),
    events: t.field({ type: [WebhookEventType] }),
    enabled: t.boolean({ description: "false stops deliveries; true resumes them (and clears a failing streak)." }),
    description: t.string({ description: "null clears it." }),
  }),
});

const CreatePayload = builder.objectRef<{ endpoint: WebhookEndpointView; secret: string }>("CreateWebhookEndpointPayload").implement({
  fields: (t) => ({
    endpoint: t.field({ type: WebhookEndpoint, resolve: (payload) => payload.endpoint }),
    secret: t.exposeString("secret", { description: "The signing secret (whsec_...). Shown only in this response: store it now." }),
  }),
});

const RotatePayload = builder
  .objectRef<{ endpoint: WebhookEndpointView; secret: string; previousSecretExpiresAt: Date }>("RotateWebhookSecretPayload")
  .implement({
    fields: (t) => ({
      endpoint: t.field({ type: WebhookEndpoint, resolve: (payload) => payload.endpoint }),
      secret: t.exposeString("secret", { description: "The new signing secret. Shown only in this response." }),
      previousSecretExpiresAt: t.expose("previousSecretExpiresAt", { type: "DateTime", description: "Until then, the previous secret signs too." }),
    }),
  });

const RedeliverPayload = builder
  .objectRef<{ endpointId: string; eventId: string; eventType: EventTypeValue; nextAttemptAt: Date }>("RedeliverWebhookEventPayload")
  .implement({
    fields: (t) => ({
      endpointId: t.exposeID("endpointId"),
      eventId: t.exposeID("eventId"),
      eventType: t.field({ type: WebhookEventType, resolve: (payload) => payload.eventType }),
      nextAttemptAt: t.expose("nextAttemptAt", { type: "DateTime" }),
    }),
  });

const EndpointConnection = builder.connectionObject({ type: WebhookEndpoint, name: "QueryWebhookEndpointsConnection" }, { name: "QueryWebhookEndpointsConnectionEdge" });
const AttemptConnection = builder.connectionObject(
  { type: WebhookDeliveryAttempt, name: "QueryWebhookDeliveriesConnection" },
  { name: "QueryWebhookDeliveriesConnectionEdge" },
);

builder.queryFields((t) => ({
  webhookEndpoints: t.field({
    type: EndpointConnection,
    description: "The team's webhook endpoints, oldest first (main key only). `first` is 1 to 100 (default 20).",
    args: { first: t.arg.int(), after: t.arg.string() },
    resolve: async (_root, args, ctx) => connectionOf(await ctx.services.webhooks.endpoints.list(ctx.actor, args)),
  }),
  webhookEndpoint: t.field({
    type: WebhookEndpoint,
    description: "One of the team's webhook endpoints (main key only).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.webhooks.endpoints.get(ctx.actor, String(args.id)),
  }),
  webhookDeliveries: t.field({
    type: AttemptConnection,
    description: "Every attempt to deliver to an endpoint, newest first (main key only). `first` is 1 to 100 (default 20).",
    args: { endpointId: t.arg.id({ required: true }), first: t.arg.int(), after: t.arg.string() },
    resolve: async (_root, args, ctx) =>
      connectionOf(await ctx.services.webhooks.endpoints.attempts(ctx.actor, String(args.endpointId), { first: args.first, after: args.after })),
  }),
}));

builder.mutationFields((t) => ({
  createWebhookEndpoint: t.field({
    type: CreatePayload,
    description: "Creates a webhook endpoint; its signing secret is returned once (main key only).",
    args: { input: t.arg({ type: CreateInput, required: true }) },
    resolve: (_root, args, ctx) => ctx.services.webhooks.endpoints.create(ctx.actor, args.input),
  }),
  updateWebhookEndpoint: t.field({
    type: WebhookEndpoint,
    description: "Changes an endpoint's url, events, description, or turns it off and on (main key only).",
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateInput, required: true }) },
    resolve: (_root, args, ctx) => ctx.services.webhooks.endpoints.update(ctx.actor, String(args.id), args.input),
  }),
  deleteWebhookEndpoint: t.field({
    type: WebhookEndpoint,
    description: "Deletes an endpoint with its delivery history; returns it as it was (main key only).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.webhooks.endpoints.delete(ctx.actor, String(args.id)),
  }),
  rotateWebhookSecret: t.field({
    type: RotatePayload,
    description: "Replaces the signing secret; the previous one also signs for 24 hours (main key only).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.webhooks.endpoints.rotateSecret(ctx.actor, String(args.id)),
  }),
  redeliverWebhookEvent: t.field({
    type: RedeliverPayload,
    description: "Delivers an event to an endpoint again, at once, with the same webhook-id (main key only).",
    args: { endpointId: t.arg.id({ required: true }), eventId: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.webhooks.endpoints.redeliver(ctx.actor, String(args.endpointId), String(args.eventId)),
  }),
}));
