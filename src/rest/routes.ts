import { z } from "zod";
import type { ErrorCode } from "../domain/errors.ts";
import type { Scope } from "../domain/scopes.ts";
import type { Page } from "../domain/paging.ts";
import { LIMITS, accountStatusSchema, pageSizeSchema } from "../domain/validation.ts";
import { createSubAccountInput, updateSubAccountInput } from "../services/accounts.ts";
import { createKeyInput, rollKeyInput, updateKeyInput } from "../services/apiKeys.ts";
import type { Actor } from "../services/deps.ts";
import type { Services } from "../services/index.ts";
import { messageListFilters, sendInput } from "../services/messages.ts";
import {
  apiKeyCreateResponse,
  apiKeyList,
  apiKeyResponse,
  apiKeyRollResponse,
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
  /** The request's headers (lower-case names). */
  headers: Record<string, string | string[] | undefined>;
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
  /**
   * Who may call it: `public` (no key), `key` (any key that authenticates), or
   * the scope the key must hold. The service decides (src/services/auth.ts);
   * this says it in the OpenAPI document, and a test holds the two together.
   */
  access: "public" | "key" | Scope;
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
export function route<P extends z.AnyZodObject, Q extends z.AnyZodObject>(def: RouteDef<P, Q>): RouteDef {
  return def as unknown as RouteDef;
}

/** Query strings carry text; integers are read as numbers before the (shared) rule checks them. */
const queryInt = (schema: z.ZodNumber) =>
  z.preprocess((value) => (typeof value === "string" && /^-?\d+$/.test(value.trim()) ? Number(value) : value), schema);

export const pageQuery = {
  limit: queryInt(pageSizeSchema).optional().describe(`Page size, 1 to ${LIMITS.pageMaxSize} (default ${LIMITS.pageDefaultSize})`),
  cursor: z.string().max(512).optional().describe("The `nextCursor` of the previous page (opaque)"),
};

const idParam = z.object({ id: z.string().describe("Sub-account id") }).strict();

/** A service's page (src/domain/paging.ts) as the SDK's list shape. */
export function listOf<T, V>(page: Page<T>, view: (item: T) => V): { items: V[]; nextCursor: string | null } {
  return { items: page.items.map(view), nextCursor: page.hasNextPage ? page.endCursor : null };
}

const keyIdParam = z.object({ keyId: z.string().describe("API key id") }).strict();

/** The caller's own main account's keys: list, create, update, roll, revoke (README.md, "API keys and scopes"). */
const mainAccountKeyRoutes: RouteDef[] = [
  route({
    operationId: "listApiKeys",
    method: "GET",
    path: "/v1/api-keys",
    summary: "The calling key's own account's keys (metadata only, never the keys).",
    tag: "API Keys",
    access: "key",
    status: 200,
    response: apiKeyList,
    async handler({ actor, services }) {
      return { items: (await services.apiKeys.listOwn(actor)).map((row) => apiKeyView(row, actor!.kind)) };
    },
  }),
  route({
    operationId: "createApiKey",
    method: "POST",
    path: "/v1/api-keys",
    summary: "Create a key of the caller's own main account (scope api_keys:write); the key is returned once.",
    tag: "API Keys",
    access: "api_keys:write",
    body: createKeyInput,
    status: 201,
    response: apiKeyCreateResponse,
    async handler({ actor, body, services }) {
      const { apiKey, key } = await services.apiKeys.createForMainAccount(actor, body ?? {});
      return { apiKey: { ...apiKeyView(apiKey, "main"), key } };
    },
  }),
  route({
    operationId: "updateApiKey",
    method: "PATCH",
    path: "/v1/api-keys/:keyId",
    summary: "Rename a main-account key or change its permissions; the team's last full main key cannot be narrowed (409).",
    tag: "API Keys",
    access: "api_keys:write",
    params: keyIdParam,
    body: updateKeyInput,
    bodyRequired: true,
    status: 200,
    response: apiKeyResponse,
    errors: ["conflict"],
    async handler({ actor, params, body, services }) {
      return { apiKey: apiKeyView(await services.apiKeys.update(actor, params.keyId, body), "main") };
    },
  }),
  route({
    operationId: "rollApiKey",
    method: "POST",
    path: "/v1/api-keys/:keyId/roll",
    summary: "Replace a key of the team: a new key with the same name, environment, permissions and expiry; the old one stops after expiresInSeconds (0: at once; default 86400; at most 604800).",
    tag: "API Keys",
    access: "api_keys:write",
    params: keyIdParam,
    body: rollKeyInput,
    status: 201,
    response: apiKeyRollResponse,
    async handler({ actor, params, body, services }) {
      const { apiKey, key, previous } = await services.apiKeys.roll(actor, params.keyId, body ?? {});
      const kind = apiKey.keyPrefix.includes("_sub_") ? "sub" : "main";
      return { apiKey: { ...apiKeyView(apiKey, kind), key }, previous: apiKeyView(previous, kind) };
    },
  }),
  route({
    operationId: "revokeApiKey",
    method: "DELETE",
    path: "/v1/api-keys/:keyId",
    summary: "Revoke a main-account key at once, on every instance; revoking the team's last full main key is refused (409).",
    tag: "API Keys",
    access: "api_keys:write",
    params: keyIdParam,
    status: 204,
    errors: ["conflict"],
    async handler({ actor, params, services }) {
      await services.apiKeys.revokeMainKey(actor, params.keyId);
      return undefined;
    },
  }),
];

export const routes: RouteDef[] = [
  route({
    operationId: "createSubAccount",
    sdk: "subAccounts.create",
    method: "POST",
    path: "/v1/sub-accounts",
    summary: "Create a sub-account; the response carries its first API key, once.",
    tag: "Sub-Accounts",
    access: "sub_accounts:write",
    body: createSubAccountInput,
    bodyRequired: true,
    status: 201,
    response: subAccountResponse,
    async handler({ actor, body, services }) {
      const { subAccount, apiKey } = await services.accounts.create(actor, body);
      return { subAccount: subAccountView(subAccount, services.clock.now(), apiKey) };
    },
  }),
  route({
    operationId: "listSubAccounts",
    sdk: "subAccounts.list",
    method: "GET",
    path: "/v1/sub-accounts",
    summary: "List the team's sub-accounts, oldest id first, with cursor pagination.",
    tag: "Sub-Accounts",
    access: "sub_accounts:read",
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
      return listOf(await services.accounts.list(actor, query), (row) => subAccountView(row, services.clock.now()));
    },
  }),
  route({
    operationId: "getSubAccount",
    sdk: "subAccounts.retrieve",
    method: "GET",
    path: "/v1/sub-accounts/:id",
    summary: "Get one sub-account of the team.",
    tag: "Sub-Accounts",
    access: "sub_accounts:read",
    params: idParam,
    status: 200,
    response: subAccountResponse,
    async handler({ actor, params, services }) {
      return { subAccount: subAccountView(await services.accounts.get(actor, params.id), services.clock.now()) };
    },
  }),
  route({
    operationId: "updateSubAccount",
    sdk: "subAccounts.update",
    method: "PATCH",
    path: "/v1/sub-accounts/:id",
    summary: "Update name, externalId, creditLimit (0 or null: no limit), metadata or status (inactive suspends, active reactivates).",
    tag: "Sub-Accounts",
    access: "sub_accounts:write",
    params: idParam,
    body: updateSubAccountInput,
    status: 200,
    response: subAccountResponse,
    async handler({ actor, params, body, services }) {
      return { subAccount: subAccountView(await services.accounts.update(actor, params.id, body ?? {}), services.clock.now()) };
    },
  }),
  route({
    operationId: "deactivateSubAccount",
    sdk: "subAccounts.deactivate",
    method: "DELETE",
    path: "/v1/sub-accounts/:id",
    summary: "Deactivate: every key revoked at once, deletion scheduled 14 days later unless reactivated.",
    tag: "Sub-Accounts",
    access: "sub_accounts:write",
    params: idParam,
    status: 200,
    response: deactivateResponse,
    async handler({ actor, params, services }) {
      const result = await services.accounts.deactivate(actor, params.id);
      return {
        keysRevoked: result.keysRevoked,
        message: result.message,
        deletionScheduledAt: result.deletionScheduledAt.toISOString(),
        subAccount: subAccountView(result.subAccount, services.clock.now()),
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
    access: "sub_accounts:read",
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
    access: "api_keys:write",
    params: idParam,
    body: createKeyInput,
    status: 201,
    response: apiKeyCreateResponse,
    async handler({ actor, params, body, services }) {
      const { apiKey, key } = await services.apiKeys.createForSubAccount(actor, params.id, body ?? {});
      return { apiKey: { ...apiKeyView(apiKey, "sub"), key } };
    },
  }),
  route({
    operationId: "listSubAccountApiKeys",
    sdk: "subAccounts.apiKeys.list",
    method: "GET",
    path: "/v1/sub-accounts/:id/api-keys",
    summary: "List a sub-account's API keys (metadata only, never the keys).",
    tag: "Sub-Account API Keys",
    access: "sub_accounts:read",
    params: idParam,
    status: 200,
    response: apiKeyList,
    async handler({ actor, params, services }) {
      return { items: (await services.apiKeys.listForSubAccount(actor, params.id)).map((row) => apiKeyView(row, "sub")) };
    },
  }),
  route({
    operationId: "revokeSubAccountApiKey",
    sdk: "subAccounts.apiKeys.revoke",
    method: "DELETE",
    path: "/v1/sub-accounts/:id/api-keys/:keyId",
    summary: "Revoke a sub-account API key, at once, on every instance (revoking twice is harmless).",
    tag: "Sub-Account API Keys",
    access: "api_keys:write",
    params: z.object({ id: z.string().describe("Sub-account id"), keyId: z.string().describe("API key id") }).strict(),
    status: 204,
    async handler({ actor, params, services }) {
      await services.apiKeys.revokeForSubAccount(actor, params.id, params.keyId);
      return undefined;
    },
  }),
  ...mainAccountKeyRoutes,
  route({
    operationId: "getBalance",
    sdk: "balance.retrieve",
    method: "GET",
    path: "/v1/balance",
    summary: "The caller's balance: the team's; a sub-account key also gets its totalSpent and creditLimit.",
    tag: "Balance",
    access: "balance:read",
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
    access: "key",
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
    access: "messages:send",
    body: sendInput,
    bodyRequired: true,
    status: 201,
    response: messageResponse,
    errors: ["credit_limit_exceeded", "budget_exceeded", "insufficient_balance", "conflict"],
    async handler({ actor, body, headers, services }) {
      const actingFor = headers["x-sub-account-id"];
      const input = typeof actingFor === "string" && typeof body === "object" && body !== null ? { ...body, subAccountId: actingFor } : body;
      return { message: messageView(await services.messages.send(actor, input)) };
    },
  }),
  route({
    operationId: "listMessages",
    sdk: "messages.list",
    method: "GET",
    path: "/v1/messages",
    summary: "The caller's messages, newest first, with cursor pagination. A main key may name one of its sub-accounts.",
    tag: "Messages",
    access: "messages:read",
    query: messageListFilters
      .extend(pageQuery)
      .partial()
      .strict(),
    status: 200,
    response: messagePage,
    async handler({ actor, query, services }) {
      return listOf(await services.messages.list(actor, query), messageView);
    },
  }),
  route({
    operationId: "getMessage",
    sdk: "messages.retrieve",
    method: "GET",
    path: "/v1/messages/:id",
    summary: "One message of the caller's account (a main key: of its team).",
    tag: "Messages",
    access: "messages:read",
    params: z.object({ id: z.string().describe("Message id") }).strict(),
    status: 200,
    response: messageResponse,
    async handler({ actor, params, services }) {
      return { message: messageView(await services.messages.get(actor, params.id)) };
    },
  }),
];
