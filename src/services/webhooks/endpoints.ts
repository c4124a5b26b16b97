import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Prisma, WebhookEndpoint as EndpointRow } from "../../generated/sqlite/client.ts";
import { DomainError, notFound } from "../../domain/errors.ts";
import { newId } from "../../domain/ids.ts";
import { pageRequest, readPage } from "../../domain/paging.ts";
import { idSchema, isCursorInstant, parseInput, storableString } from "../../domain/validation.ts";
import {
  DEFAULT_EVENT_TYPES,
  WEBHOOK_EVENT_TYPES,
  WEBHOOK_DISABLE_AFTER_MS,
  WEBHOOK_ROTATION_OVERLAP_MS,
  type WebhookEventType,
} from "../../domain/webhooks.ts";
import { SYSTEM, keyActor, recordAuditEvent, type AuditAction, type AuditActor } from "../audit.ts";
import { authorize } from "../auth.ts";
import type { Actor, ServiceDeps } from "../deps.ts";
import { generateSigningSecret, type SecretBox } from "./secrets.ts";
import { checkEndpointUrl, webhookUrlSchema, type UrlPolicy } from "./urlSafety.ts";

export const DESCRIPTION_MAX_CHARS = 500;

const eventsSchema = z
  .array(z.enum(WEBHOOK_EVENT_TYPES, { errorMap: () => ({ message: `must be event types among ${WEBHOOK_EVENT_TYPES.join(", ")}` }) }), {
    invalid_type_error: "must be a list of event types",
  })
  .min(1, "must name at least one event type")
  .max(WEBHOOK_EVENT_TYPES.length * 2, "lists too many event types")
  .transform((types) => WEBHOOK_EVENT_TYPES.filter((type) => types.includes(type)));

const descriptionSchema = storableString()
  .transform((value) => value.trim())
  .pipe(z.string().max(DESCRIPTION_MAX_CHARS, `must be at most ${DESCRIPTION_MAX_CHARS} characters`));

/** Also the REST body schema (src/rest). `events` omitted: every type but message.delivered and message.failed. */
export const createEndpointInput = z
  .object({ url: webhookUrlSchema, events: eventsSchema.nullish(), description: descriptionSchema.nullish() })
  .strict();

export const updateEndpointInput = z
  .object({ url: webhookUrlSchema.optional(), events: eventsSchema.optional(), enabled: z.boolean().optional(), description: descriptionSchema.nullish() })
  .strict();

/** Attempts newest first: a cursor is the (createdAt, id) of the last attempt of a page. */
const ATTEMPT_CURSOR = { arity: 2, isValid: ([createdAt]: string[]) => isCursorInstant(createdAt!) };

/** An endpoint as every surface shows it: never its secrets, encrypted or not. */
export interface WebhookEndpointView {
  id: string;
  url: string;
  description: string | null;
  events: WebhookEventType[];
  enabled: boolean;
  disabledAt: Date | null;
  disabledReason: "failing" | "manual" | null;
  failingSince: Date | null;
  /** While a rotation's overlap lasts: when the previous secret stops signing. */
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

function eventsOf(value: Prisma.JsonValue): WebhookEventType[] {
  return Array.isArray(value) ? WEBHOOK_EVENT_TYPES.filter((type) => value.includes(type)) : [];
}

export function endpointView(row: EndpointRow, now: Date): WebhookEndpointView {
  const overlap = row.previousSecretExpiresAt && row.previousSecretExpiresAt.getTime() > now.getTime() ? row.previousSecretExpiresAt : null;
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    events: eventsOf(row.events),
    enabled: row.enabled,
    disabledAt: row.disabledAt,
    disabledReason: row.disabledReason as WebhookEndpointView["disabledReason"],
    failingSince: row.failingSince,
    previousSecretExpiresAt: overlap,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

type Tx = Prisma.TransactionClient;
type UpdateData = z.output<typeof updateEndpointInput>;

/** Takes the endpoint's write lock as the transaction's first statement (see lockSubAccount in src/services/accounts.ts), or `not_found`. */
async function lockEndpoint(tx: Tx, where: { id: string; teamId: string }, now: Date): Promise<EndpointRow> {
  const { count } = await tx.webhookEndpoint.updateMany({ where, data: { updatedAt: now } });
  if (count === 0) throw notFound("Webhook endpoint", where.id);
  return tx.webhookEndpoint.findUniqueOrThrow({ where: { id: where.id } });
}

/** The audited fields an update changes, before and after. */
function endpointChanges(current: EndpointRow, data: UpdateData) {
  const previous = { url: current.url, events: eventsOf(current.events), enabled: current.enabled, description: current.description };
  const next = { url: data.url, events: data.events, enabled: data.enabled, description: data.description === undefined ? undefined : data.description || null };
  const changedFields: string[] = [];
  const before: Record<string, Prisma.InputJsonValue | null> = {};
  const after: Record<string, Prisma.InputJsonValue | null> = {};
  for (const field of ["url", "events", "enabled", "description"] as const) {
    if (next[field] === undefined || JSON.stringify(next[field]) === JSON.stringify(previous[field])) continue;
    changedFields.push(field);
    before[field] = previous[field];
    after[field] = next[field]!;
  }
  return { changedFields, before, after };
}

/** The columns an update writes: turning an endpoint off records when and why; turning it on starts afresh. */
function updateColumns(current: EndpointRow, data: UpdateData, now: Date): Prisma.WebhookEndpointUpdateInput {
  const enabling = data.enabled === true && !current.enabled;
  const disabling = data.enabled === false && current.enabled;
  return {
    url: data.url,
    events: data.events,
    description: data.description === undefined ? undefined : data.description || null,
    enabled: data.enabled,
    ...(enabling ? { disabledAt: null, disabledReason: null, failingSince: null } : {}),
    ...(disabling ? { disabledAt: now, disabledReason: "manual" } : {}),
  };
}

export interface EndpointsOptions {
  /** Null where no SECRETS_KEY was resolved (the CLI): creating or rotating is then impossible. */
  box: SecretBox | null;
  urlPolicy: UrlPolicy;
  retryWindowMs: number;
}

/** Webhook endpoints: create, list, read, update, delete, rotate the secret, list attempts, redeliver. */
export class WebhookEndpointsService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly options: EndpointsOptions,
  ) {}

  #where(actor: Actor, id: string, field = "id") {
    return { id: parseInput(idSchema, id, field), teamId: actor.teamId };
  }

  #seal(secret: string, endpointId: string): string {
    if (!this.options.box) throw new Error("no secrets key: webhook endpoints cannot be created or rotated here");
    return this.options.box.seal(secret, endpointId);
  }

  #audit(tx: Tx, actor: AuditActor, teamId: string, endpointId: string, action: AuditAction, details: Prisma.InputJsonObject) {
    return recordAuditEvent(tx, { teamId, actor, action, target: { type: "webhook_endpoint", id: endpointId }, details, at: this.deps.clock.now() });
  }

  /** Creates an endpoint; the response carries its signing secret, the only time it is shown. */
  async create(actorOrNull: Actor | null, input: unknown) {
    const actor = authorize(actorOrNull, "webhooks:write");
    const data = parseInput(createEndpointInput, input, "input");
    await checkEndpointUrl(data.url, this.options.urlPolicy, "input.url");
    const now = this.deps.clock.now();
    const id = newId(now.getTime());
    const secret = generateSigningSecret();
    const events = data.events ?? [...DEFAULT_EVENT_TYPES];
    const row = await this.deps.prisma.$transaction(async (tx) => {
      const created = await tx.webhookEndpoint.create({
        data: { id, teamId: actor.teamId, url: data.url, description: data.description || null, events, secretCiphertext: this.#seal(secret, id), createdAt: now, updatedAt: now },
      });
      await this.#audit(tx, keyActor(actor), actor.teamId, id, "webhook_endpoint.create", { url: data.url, events, description: data.description || null });
      return created;
    });
    return { endpoint: endpointView(row, now), secret };
  }

  /** The team's endpoints, oldest first, with the paging arguments of GraphQL or REST. */
  async list(actorOrNull: Actor | null, args: object) {
    const actor = authorize(actorOrNull, "webhooks:write");
    const request = pageRequest(args);
    const now = this.deps.clock.now();
    const page = await readPage(
      request,
      (take) =>
        this.deps.prisma.webhookEndpoint.findMany({
          where: { teamId: actor.teamId, ...(request.after ? { id: { gt: request.after[0] } } : {}) },
          orderBy: { id: "asc" },
          take,
        }),
      (row) => [row.id],
    );
    return { ...page, items: page.items.map((row) => endpointView(row, now)) };
  }

  async get(actorOrNull: Actor | null, id: string) {
    const actor = authorize(actorOrNull, "webhooks:write");
    const row = await this.deps.prisma.webhookEndpoint.findFirst({ where: this.#where(actor, id) });
    if (!row) throw notFound("Webhook endpoint", id);
    return endpointView(row, this.deps.clock.now());
  }

  /** Changes url, events, description or enabled; audited with what changed (nothing changed: nothing recorded). */
  async update(actorOrNull: Actor | null, id: string, input: unknown) {
    const actor = authorize(actorOrNull, "webhooks:write");
    const where = this.#where(actor, id);
    const data = parseInput(updateEndpointInput, input, "input");
    if (data.url !== undefined) await checkEndpointUrl(data.url, this.options.urlPolicy, "input.url");
    const now = this.deps.clock.now();
    const row = await this.deps.prisma.$transaction(async (tx) => {
      const current = await lockEndpoint(tx, where, now);
      const changes = endpointChanges(current, data);
      if (changes.changedFields.length === 0) return current;
      const updated = await tx.webhookEndpoint.update({ where: { id: where.id }, data: updateColumns(current, data, now) });
      await this.#audit(tx, keyActor(actor), actor.teamId, where.id, "webhook_endpoint.update", changes);
      return updated;
    });
    return endpointView(row, now);
  }

  /** Deletes an endpoint with its deliveries and their attempts; returns it as it was. */
  async delete(actorOrNull: Actor | null, id: string) {
    const actor = authorize(actorOrNull, "webhooks:write");
    const where = this.#where(actor, id);
    const now = this.deps.clock.now();
    const row = await this.deps.prisma.$transaction(async (tx) => {
      const current = await lockEndpoint(tx, where, now);
      await tx.webhookEndpoint.delete({ where: { id: where.id } });
      await this.#audit(tx, keyActor(actor), actor.teamId, where.id, "webhook_endpoint.delete", { url: current.url, events: eventsOf(current.events) });
      return current;
    });
    return endpointView(row, now);
  }

  /**
   * A new signing secret, returned once; the previous one goes on signing
   * (beside the new one) for WEBHOOK_ROTATION_OVERLAP_MS. Rotating again during
   * the overlap drops the oldest: at most two secrets sign.
   */
  async rotateSecret(actorOrNull: Actor | null, id: string) {
    const actor = authorize(actorOrNull, "webhooks:write");
    const where = this.#where(actor, id);
    const now = this.deps.clock.now();
    const secret = generateSigningSecret();
    const previousSecretExpiresAt = new Date(now.getTime() + WEBHOOK_ROTATION_OVERLAP_MS);
    const row = await this.deps.prisma.$transaction(async (tx) => {
      const current = await lockEndpoint(tx, where, now);
      const rotated = await tx.webhookEndpoint.update({
        where: { id: where.id },
        data: { secretCiphertext: this.#seal(secret, where.id), previousSecretCiphertext: current.secretCiphertext, previousSecretExpiresAt },
      });
      await this.#audit(tx, keyActor(actor), actor.teamId, where.id, "webhook_endpoint.rotate_secret", { previousSecretExpiresAt: previousSecretExpiresAt.toISOString() });
      return rotated;
    });
    return { endpoint: endpointView(row, now), secret, previousSecretExpiresAt };
  }

  /** Every attempt to deliver to an endpoint, newest first. */
  async attempts(actorOrNull: Actor | null, endpointId: string, args: object) {
    const actor = authorize(actorOrNull, "webhooks:write");
    const where = this.#where(actor, endpointId, "endpointId");
    const endpoint = await this.deps.prisma.webhookEndpoint.findFirst({ where, select: { id: true } });
    if (!endpoint) throw notFound("Webhook endpoint", endpointId);
    const request = pageRequest(args, ATTEMPT_CURSOR);
    const after = request.after ? { createdAt: new Date(request.after[0]!), id: request.after[1]! } : null;
    return readPage(
      request,
      (take) =>
        this.deps.prisma.webhookAttempt.findMany({
          where: {
            endpointId: endpoint.id,
            ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
          },
          orderBy: [{ createdAt: "desc" }, { id: "desc" }],
          take,
        }),
      (row) => [row.createdAt.toISOString(), row.id],
    );
  }

  /**
   * Sends an event to an endpoint again, at once, with the event's own
   * `webhook-id`; its retries start over. An attempt already in flight keeps
   * its result.
   */
  async redeliver(actorOrNull: Actor | null, endpointId: string, eventIdInput: string) {
    const actor = authorize(actorOrNull, "webhooks:write");
    const where = this.#where(actor, endpointId, "endpointId");
    const eventId = parseInput(idSchema, eventIdInput, "eventId");
    const endpoint = await this.deps.prisma.webhookEndpoint.findFirst({ where, select: { id: true, enabled: true } });
    if (!endpoint) throw notFound("Webhook endpoint", endpointId);
    const event = await this.deps.prisma.webhookEvent.findFirst({ where: { id: eventId, teamId: actor.teamId }, select: { id: true, type: true } });
    if (!event) throw notFound("Webhook event", eventId);
    if (!endpoint.enabled) {
      throw new DomainError("conflict", "This webhook endpoint is disabled: enable it (updateWebhookEndpoint with enabled: true), then redeliver.", { endpointId: endpoint.id });
    }
    const now = this.deps.clock.now();
    const retryUntil = new Date(now.getTime() + this.options.retryWindowMs);
    await this.deps.prisma.$transaction(async (tx) => {
      const { count } = await tx.webhookDelivery.updateMany({ where: { eventId, endpointId: endpoint.id }, data: { status: "pending", nextAttemptAt: now, retryUntil } });
      if (count === 0) {
        await tx.webhookDelivery.create({
          data: { id: `whd_${randomUUID().replaceAll("-", "")}`, eventId, endpointId: endpoint.id, status: "pending", nextAttemptAt: now, retryUntil, createdAt: now },
        });
      }
      await this.#audit(tx, keyActor(actor), actor.teamId, endpoint.id, "webhook_endpoint.redeliver", { eventId, eventType: event.type });
    });
    this.deps.outbox.written();
    return { endpointId: endpoint.id, eventId, eventType: event.type as WebhookEventType, nextAttemptAt: now };
  }

  /**
   * Disables an endpoint whose every attempt has failed for
   * WEBHOOK_DISABLE_AFTER_MS (the dispatcher calls this), audited as the
   * gateway's own action. Does nothing if it was disabled, or succeeded, meanwhile.
   */
  async disableFailing(endpointId: string, teamId: string, now: Date): Promise<boolean> {
    const cutoff = new Date(now.getTime() - WEBHOOK_DISABLE_AFTER_MS);
    return this.deps.prisma.$transaction(async (tx) => {
      const { count } = await tx.webhookEndpoint.updateMany({
        where: { id: endpointId, teamId, enabled: true, failingSince: { lte: cutoff } },
        data: { enabled: false, disabledAt: now, disabledReason: "failing", updatedAt: now },
      });
      if (count === 0) return false;
      const { failingSince } = await tx.webhookEndpoint.findUniqueOrThrow({ where: { id: endpointId }, select: { failingSince: true } });
      await this.#audit(tx, SYSTEM, teamId, endpointId, "webhook_endpoint.disable", {
        reason: "failing",
        failingSince: failingSince?.toISOString() ?? null,
        message: "Every delivery attempt failed for 3 days: the endpoint was disabled. Fix the receiver, then enable it again.",
      });
      return true;
    });
  }
}
