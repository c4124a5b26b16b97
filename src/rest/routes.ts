import { z } from "zod";
import type { ErrorCode } from "../domain/errors.ts";
import { LIMITS, accountStatusSchema, idSchema, pageSizeSchema } from "../domain/validation.ts";
import { createSubAccountInput, updateSubAccountInput } from "../services/accounts.ts";
import { createKeyInput } from "../services/apiKeys.ts";
import type { Actor } from "../services/deps.ts";
import type { Services } from "../services/index.ts";
import { messageListFilters, sendInput } from "../services/messages.ts";
import {
  apiKeyCreateResponse,
  apiKeyList,
  apiKeyView,
  balanceSchema,
  balanceView,
  deactivateResponse,
  meSchema,
  messagePage,
  messageResponse,
  messageView,
  subAccountPage,
  subAccountResponse,
  subAccountView,
} from "./views.ts";

/**
 * The REST `/v1` surface as data: each route names its method, path, the zod
 * schemas of its path parameters, query and body, its response, and a handler
 * that adapts HTTP to one service call. /v1/openapi.json is derived from this
 * table. Bodies are validated by the services themselves (the same schemas,
 * exported from src/services), so GraphQL and REST share every rule.
 */

export type Method = "GET" | "POST" | "PATCH" | "DELETE";

export interface HandlerInput<P, Q> {
  actor: Actor | null;
  params: P;
  query: Q;
  /** The parsed JSON body, `undefined` when empty; the service validates it. */
  body: unknown;
  services: Services;
}

export interface RouteDef<P extends z.AnyZodObject = z.AnyZodObject, Q extends z.AnyZodObject = z.AnyZodObject> {
  operationId: string;
  /** The SDK method this route serves, e.g. `subAccounts.create`. */
  sdk?: string;
  method: Method;
  /** Express-style: `/v1/sub-accounts/:id`. */
  path: string;
  summary: string;
  tag: string;
  /** `none`: no key; `any`: any active key; `main`: a main-account key (a sub-account key gets 403). */
  auth: "none" | "any" | "main";
  params?: P;
  query?: Q;
  body?: z.ZodTypeAny;
  bodyRequired?: boolean;
  status: 200 | 201 | 204;
  response?: z.ZodTypeAny;
  /** Error codes beyond those implied by auth, params and body (for the document). */
  errors?: ErrorCode[];
  handler(input: HandlerInput<z.output<P>, z.output<Q>>): Promise<unknown>;
}

/** Keeps each route's handler typed by its own schemas. */
function route<P extends z.AnyZodObject, Q extends z.AnyZodObject>(def: RouteDef<P, Q>): RouteDef {
  return def as unknown as RouteDef;
}

/** Query strings carry text; integers are read as numbers before the (shared) rule checks them. */
const queryInt = (schema: z.ZodNumber) =>
  z.preprocess((value) => (typeof value === "string" && /^-?\d+$/.test(value.trim()) ? Number(value) : value), schema);

const pageQuery = {
  limit: queryInt(pageSizeSchema).optional().describe(`Page size, 1 to ${LIMITS.pageMaxSize} (default ${LIMITS.pageDefaultSize})`),
  cursor: idSchema.optional().describe("The `nextCursor` of the previous page"),
};

const idParam = z.object({ id: z.string().describe("Sub-account id") }).strict();

/**
 * One page in the services' stable order: asks for one row more than `limit`
 * to know whether another page follows. The cursor is the last item's id.
 */
async function cursorPage<T extends { id: string }>(
  find: (query: { take: number; skip?: number; cursor?: { id: string } }) => Promise<T[]>,
  limit: number | undefined,
  cursor: string | undefined,
): Promise<{ items: T[]; nextCursor: string | null }> {
  const size = limit ?? LIMITS.pageDefaultSize;
  const rows = await find({ take: size + 1, ...(cursor ? { skip: 1, cursor: { id: cursor } } : {}) });
  const items = rows.slice(0, size);
  return { items, nextCursor: rows.length > size ? items[items.length - 1]!.id : null };
}

export const routes: RouteDef[] = [
  route({
    operationId: "createSubAccount",
    sdk: "subAccounts.create",
    method: "POST",
    path: "/v1/sub-accounts",
    summary: "Create a sub-account; the response carries its first API key, once.",
    tag: "Sub-Accounts",
    auth: "main",
    body: createSubAccountInput,
    bodyRequired: true,
    status: 201,
    response: subAccountResponse,
    async handler({ actor, body, services }) {
      const { subAccount, apiKey } = await services.accounts.create(actor, body);
      return { subAccount: subAccountView(subAccount, apiKey) };
    },
  }),
  route({
    operationId: "listSubAccounts",
    sdk: "subAccounts.list",
    method: "GET",
    path: "/v1/sub-accounts",
    summary: "List the team's sub-accounts, oldest id first, with cursor pagination.",
    tag: "Sub-Accounts",
    auth: "main",
    query: z
      .object({
        ...pageQuery,
        status: accountStatusSchema.optional().describe("Only sub-accounts with this status"),
        externalId: z.string().optional().describe("Only sub-accounts with this externalId"),
      })
      .strict(),
    status: 200,
    response: subAccountPage,
    async handler({ actor, query, services }) {
      const { limit, cursor, ...filters } = query;
      const page = await cursorPage((q) => services.accounts.findPage(actor, filters, q), limit, cursor);
      return { items: page.items.map((row) => subAccountView(row)), nextCursor: page.nextCursor };
    },
  }),
  route({
    operationId: "getSubAccount",
    sdk: "subAccounts.retrieve",
    method: "GET",
    path: "/v1/sub-accounts/:id",
    summary: "Get one sub-account of the team.",
    tag: "Sub-Accounts",
    auth: "main",
    params: idParam,
    status: 200,
    response: subAccountResponse,
    async handler({ actor, params, services }) {
      return { subAccount: subAccountView(await services.accounts.get(actor, params.id)) };
    },
  }),
  route({
    operationId: "updateSubAccount",
    sdk: "subAccounts.update",
    method: "PATCH",
    path: "/v1/sub-accounts/:id",
    summary: "Update name, externalId, creditLimit (0 or null: no limit), metadata or status (inactive suspends, active reactivates).",
    tag: "Sub-Accounts",
    auth: "main",
    params: idParam,
    body: updateSubAccountInput,
    status: 200,
    response: subAccountResponse,
    async handler({ actor, params, body, services }) {
      return { subAccount: subAccountView(await services.accounts.update(actor, params.id, body ?? {})) };
    },
  }),
  route({
    operationId: "deactivateSubAccount",
    sdk: "subAccounts.deactivate",
    method: "DELETE",
    path: "/v1/sub-accounts/:id",
    summary: "Deactivate: every key revoked at once, deletion scheduled 14 days later unless reactivated.",
    tag: "Sub-Accounts",
    auth: "main",
    params: idParam,
    status: 200,
    response: deactivateResponse,
    async handler({ actor, params, services }) {
      const result = await services.accounts.deactivate(actor, params.id);
      return {
        keysRevoked: result.keysRevoked,
        message: result.message,
        deletionScheduledAt: result.deletionScheduledAt.toISOString(),
        subAccount: subAccountView(result.subAccount),
      };
    },
  }),
  route({
    operationId: "getSubAccountBalance",
    sdk: "subAccounts.getBalance",
    method: "GET",
    path: "/v1/sub-accounts/:id/balance",
    summary: "A sub-account's view of the balance: the team's balance, its totalSpent and creditLimit.",
    tag: "Sub-Accounts",
    auth: "main",
    params: idParam,
    status: 200,
    response: balanceSchema,
    async handler({ actor, params, services }) {
      return balanceView(await services.balance.forSubAccount(actor, params.id));
    },
  }),
  route({
    operationId: "createSubAccountApiKey",
    sdk: "subAccounts.apiKeys.create",
    method: "POST",
    path: "/v1/sub-accounts/:id/api-keys",
    summary: "Create an API key for a sub-account; the key is returned once.",
    tag: "Sub-Account API Keys",
    auth: "main",
    params: idParam,
    body: createKeyInput,
    status: 201,
    response: apiKeyCreateResponse,
    async handler({ actor, params, body, services }) {
      const { apiKey, key } = await services.apiKeys.create(actor, params.id, body ?? {});
      return { apiKey: { ...apiKeyView(apiKey), key } };
    },
  }),
  route({
    operationId: "listSubAccountApiKeys",
    sdk: "subAccounts.apiKeys.list",
    method: "GET",
    path: "/v1/sub-accounts/:id/api-keys",
    summary: "List a sub-account's API keys (metadata only, never the keys).",
    tag: "Sub-Account API Keys",
    auth: "main",
    params: idParam,
    status: 200,
    response: apiKeyList,
    async handler({ actor, params, services }) {
      return { items: (await services.apiKeys.list(actor, params.id)).map(apiKeyView) };
    },
  }),
  route({
    operationId: "revokeSubAccountApiKey",
    sdk: "subAccounts.apiKeys.revoke",
    method: "DELETE",
    path: "/v1/sub-accounts/:id/api-keys/:keyId",
    summary: "Revoke a sub-account API key, at once, on every instance (revoking twice is harmless).",
    tag: "Sub-Account API Keys",
    auth: "main",
    params: z.object({ id: z.string().describe("Sub-account id"), keyId: z.string().describe("API key id") }).strict(),
    status: 204,
    async handler({ actor, params, services }) {
      await services.apiKeys.revoke(actor, params.id, params.keyId);
      return undefined;
    },
  }),
  route({
    operationId: "getBalance",
    sdk: "balance.retrieve",
    method: "GET",
    path: "/v1/balance",
    summary: "The caller's balance: the team's; a sub-account key also gets its totalSpent and creditLimit.",
    tag: "Balance",
    auth: "any",
    status: 200,
    response: balanceSchema,
    async handler({ actor, services }) {
      return balanceView(await services.balance.forActor(actor));
    },
  }),
  route({
    operationId: "getMe",
    sdk: "me.retrieve",
    method: "GET",
    path: "/v1/me",
    summary: "The calling key, its account (project) and team.",
    tag: "Me",
    auth: "any",
    status: 200,
    response: meSchema,
    async handler({ actor, services }) {
      const me = await services.viewer.describe(actor);
      return { apiKey: me.apiKey, project: me.account, team: me.team, isTestMode: me.isTestMode };
    },
  }),
  route({
    operationId: "sendMessage",
    sdk: "messages.send",
    method: "POST",
    path: "/v1/messages",
    summary:
      "Send a message, charged to the team balance if and only if the account is active, within its credit limit, and the balance covers it; otherwise 402 and nothing is charged.",
    tag: "Messages",
    auth: "any",
    body: sendInput,
    bodyRequired: true,
    status: 201,
    response: messageResponse,
    errors: ["credit_limit_exceeded", "insufficient_balance", "conflict"],
    async handler({ actor, body, services }) {
      return { message: messageView(await services.messages.send(actor, body)) };
    },
  }),
  route({
    operationId: "listMessages",
    sdk: "messages.list",
    method: "GET",
    path: "/v1/messages",
    summary: "The caller's messages, newest first, with cursor pagination. A main key may name one of its sub-accounts.",
    tag: "Messages",
    auth: "any",
    query: messageListFilters
      .extend(pageQuery)
      .partial()
      .strict(),
    status: 200,
    response: messagePage,
    async handler({ actor, query, services }) {
      const { limit, cursor, ...filters } = query;
      const page = await cursorPage((q) => services.messages.findPage(actor, filters, q), limit, cursor);
      return { items: page.items.map(messageView), nextCursor: page.nextCursor };
    },
  }),
  route({
    operationId: "getMessage",
    sdk: "messages.retrieve",
    method: "GET",
    path: "/v1/messages/:id",
    summary: "One message of the caller's account (a main key: of its team).",
    tag: "Messages",
    auth: "any",
    params: z.object({ id: z.string().describe("Message id") }).strict(),
    status: 200,
    response: messageResponse,
    async handler({ actor, params, services }) {
      return { message: messageView(await services.messages.get(actor, params.id)) };
    },
  }),
];
