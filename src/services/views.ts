import { z } from "zod";
import type { ApiKeyColumns } from "../db/subAccountListing.ts";
import { DEFAULT_ALERT_THRESHOLDS } from "../domain/alerts.ts";
import { centsToNumber } from "../domain/money.ts";
import { BUDGET_PERIODS } from "../domain/periods.ts";
import { effectiveScopes } from "../domain/scopes.ts";
import { budgetView, type BudgetColumns, type BudgetView } from "./budgets.ts";

/**
 * The public views of the objects both REST answers with and webhook events
 * carry as `data` (README.md, "Webhooks": an event's data is the object as
 * REST shows it): one serializer each, typed by its schema. src/rest/views.ts
 * adds the REST-only shapes and feeds them all to /v1/openapi.json.
 */

export const cents = (description: string) => z.number().int().describe(`${description} (integer cents)`);
export const isoDate = z.string().datetime().describe("ISO 8601 date-time (UTC)");
export const epochMs = z.number().int().describe("Milliseconds since the Unix epoch (as in the SDK's types)");
export const jsonObject = z.record(z.unknown());

export const budgetSchema = z
  .object({
    amount: cents("The cap per period"),
    period: z.enum(BUDGET_PERIODS),
    spent: cents("Charged in the current period"),
    periodStart: isoDate,
    resetsAt: isoDate.describe("When the next period starts"),
    remaining: cents("amount - spent, never below 0"),
  })
  .describe("A spending cap that renews each period (UTC days, weeks from Monday, months)");

export function budgetJson(budget: BudgetView | null): z.input<typeof budgetSchema> | null {
  if (!budget) return null;
  return {
    amount: centsToNumber(budget.amount),
    period: budget.period,
    spent: centsToNumber(budget.spent),
    periodStart: budget.periodStart.toISOString(),
    resetsAt: budget.resetsAt.toISOString(),
    remaining: centsToNumber(budget.remaining),
  };
}

export const subAccountSchema = z.object({
  id: z.string(),
  name: z.string(),
  externalId: z.string().nullable(),
  status: z.enum(["active", "inactive"]),
  totalSpent: cents("Total charged to this sub-account"),
  creditLimit: cents("Spending cap; null means no limit").nullable(),
  budget: budgetSchema.nullable(),
  alertThresholds: z.array(z.number().int()).describe("Percentages of the credit limit and budget whose crossing raises a spend alert"),
  chargeSequence: z.number().int().describe("The sequence number of its latest charge (0 before the first)"),
  metadata: jsonObject.nullable(),
  apiKey: z.string().optional().describe("The sub-account's first API key: only in the creation response"),
  createdAt: isoDate,
  updatedAt: isoDate,
  deletionScheduledAt: isoDate.nullable().describe("Set by deactivation: the purge date unless reactivated before"),
});

type SubAccountRow = BudgetColumns & {
  alertThresholds: unknown;
  chargeCount: number;
  id: string;
  name: string;
  externalId: string | null;
  status: string;
  totalSpent: bigint;
  creditLimit: bigint | null;
  metadata: unknown;
  createdAt: Date;
  updatedAt: Date;
  deletionScheduledAt: Date | null;
};

/** A sub-account as REST shows it, its budget as of `now`. */
export function subAccountView(row: SubAccountRow, now: Date, apiKey?: string): z.input<typeof subAccountSchema> {
  return {
    id: row.id,
    name: row.name,
    externalId: row.externalId,
    status: row.status as "active" | "inactive",
    totalSpent: centsToNumber(row.totalSpent),
    creditLimit: row.creditLimit === null ? null : centsToNumber(row.creditLimit),
    budget: budgetJson(budgetView(row, now)),
    alertThresholds: (row.alertThresholds as number[] | null) ?? [...DEFAULT_ALERT_THRESHOLDS],
    chargeSequence: row.chargeCount,
    metadata: (row.metadata ?? null) as Record<string, unknown> | null,
    ...(apiKey !== undefined ? { apiKey } : {}),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    deletionScheduledAt: row.deletionScheduledAt?.toISOString() ?? null,
  };
}

export const apiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  environment: z.enum(["live", "test"]),
  keyPrefix: z.string().describe("The first characters of the key, for recognising it"),
  permissions: z.array(z.string()),
  createdAt: epochMs,
  lastUsedAt: epochMs.nullable(),
  revokedAt: epochMs.nullable(),
  expiresAt: epochMs.nullable().describe("Past it the key no longer authenticates; null: never"),
});


/** A key's metadata; `permissions` are the scopes it holds (every scope of its kind when none were given). */
export function apiKeyView(row: ApiKeyColumns, kind: "main" | "sub"): z.input<typeof apiKeySchema> {
  return {
    id: row.id,
    name: row.name,
    environment: row.environment as "live" | "test",
    keyPrefix: row.keyPrefix,
    permissions: [...effectiveScopes(kind, row.permissions)],
    createdAt: row.createdAt.getTime(),
    lastUsedAt: row.lastUsedAt?.getTime() ?? null,
    revokedAt: row.revokedAt?.getTime() ?? null,
    expiresAt: row.expiresAt?.getTime() ?? null,
  };
}

