import type { Database } from "../../src/db/client.ts";

/**
 * One cheap round trip summing up everything a request could change: counts,
 * money sums, and the lengths of every free-text column of every table. Two
 * equal fingerprints mean no row was added, removed, charged, renamed,
 * re-limited, budgeted, suspended, revoked, re-scoped, given an expiry or re-tagged (a same-length rename of a
 * sub-account would still move its updatedAt), no webhook endpoint was added,
 * removed, edited or rotated, and nothing was audited (every change is).
 *
 * Left out on purpose: ApiKey.lastUsedAt (authentication refreshes it, by
 * design, even for a refused request) and Message status/sentAt/deliveredAt
 * (the simulated carrier moves them in the background), and webhook
 * deliveries and attempts (the dispatcher writes them in the background).
 *
 * Plain SQL both SQLite and PostgreSQL run; values are stringified because the
 * drivers return bigint, number or numeric strings for the same sums.
 */
const FINGERPRINT_SQL = `SELECT
  (SELECT COUNT(*) FROM "Team") AS "teams",
  (SELECT COALESCE(SUM("balance"), 0) FROM "Team") AS "teamBalances",
  (SELECT COALESCE(SUM(LENGTH("name")), 0) FROM "Team") AS "teamNames",
  (SELECT COALESCE(SUM(COALESCE("lowBalanceThreshold", -1)), 0) FROM "Team") AS "lowBalanceThresholds",
  (SELECT COUNT(*) FROM "Account") AS "accounts",
  (SELECT COALESCE(SUM("totalSpent"), 0) FROM "Account") AS "totalSpent",
  (SELECT COALESCE(SUM(COALESCE("creditLimit", -1)), 0) FROM "Account") AS "creditLimits",
  (SELECT COUNT("creditLimit") FROM "Account") AS "limitedAccounts",
  (SELECT COALESCE(SUM(COALESCE("budgetAmount", -1)), 0) FROM "Account") AS "budgets",
  (SELECT COALESCE(SUM(LENGTH(COALESCE("budgetPeriod", '~'))), 0) FROM "Account") AS "budgetPeriods",
  (SELECT COALESCE(SUM(LENGTH(COALESCE(CAST("alertThresholds" AS TEXT), '~'))), 0) FROM "Account") AS "alertThresholds",
  (SELECT COALESCE(SUM("chargeCount"), 0) FROM "Account") AS "chargeCounts",
  (SELECT COUNT(*) FROM "Account" WHERE "status" = 'active') AS "activeAccounts",
  (SELECT COUNT("deletionScheduledAt") FROM "Account") AS "scheduledDeletions",
  (SELECT COALESCE(SUM(LENGTH("name")), 0) FROM "Account") AS "accountNames",
  (SELECT COALESCE(SUM(LENGTH(COALESCE("externalId", '~'))), 0) FROM "Account") AS "externalIds",
  (SELECT COALESCE(SUM(LENGTH(COALESCE(CAST("metadata" AS TEXT), '~'))), 0) FROM "Account") AS "accountMetadata",
  (SELECT CAST(MAX("updatedAt") AS TEXT) FROM "Account") AS "accountsUpdatedAt",
  (SELECT COUNT(*) FROM "ApiKey") AS "apiKeys",
  (SELECT COUNT("revokedAt") FROM "ApiKey") AS "revokedKeys",
  (SELECT COALESCE(SUM(LENGTH("name")), 0) FROM "ApiKey") AS "apiKeyNames",
  (SELECT COALESCE(SUM(LENGTH(CAST("permissions" AS TEXT))), 0) FROM "ApiKey") AS "apiKeyPermissions",
  (SELECT CAST(MAX("expiresAt") AS TEXT) FROM "ApiKey") AS "apiKeyExpiries",
  (SELECT COUNT("expiresAt") FROM "ApiKey") AS "expiringKeys",
  (SELECT COUNT(*) FROM "Message") AS "messages",
  (SELECT COALESCE(SUM("cost"), 0) FROM "Message") AS "messageCosts",
  (SELECT COALESCE(SUM(LENGTH("text")), 0) FROM "Message") AS "messageTexts",
  (SELECT COUNT(*) FROM "LedgerEntry") AS "ledgerEntries",
  (SELECT COALESCE(SUM("amount"), 0) FROM "LedgerEntry") AS "ledgerAmounts",
  (SELECT COUNT(*) FROM "AuditEvent") AS "auditEvents",
  (SELECT COUNT(*) FROM "WebhookEndpoint") AS "webhookEndpoints",
  (SELECT COUNT(*) FROM "WebhookEndpoint" WHERE "enabled") AS "enabledWebhookEndpoints",
  (SELECT COALESCE(SUM(LENGTH(COALESCE("description", '~')) + LENGTH("url") + LENGTH(CAST("events" AS TEXT))), 0) FROM "WebhookEndpoint") AS "webhookEndpointTexts",
  (SELECT COUNT("previousSecretCiphertext") FROM "WebhookEndpoint") AS "rotatedWebhookSecrets",
  (SELECT CAST(MAX("previousSecretExpiresAt") AS TEXT) FROM "WebhookEndpoint") AS "webhookRotations",
  (SELECT COUNT(*) FROM "WebhookEvent") AS "webhookEvents"`;

export type Fingerprint = Record<string, string>;

export async function fingerprint(db: Database): Promise<Fingerprint> {
  const rows = await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(FINGERPRINT_SQL);
  return Object.fromEntries(Object.entries(rows[0]!).map(([name, value]) => [name, value === null ? "null" : String(value)]));
}

/** The names of the sums that differ, e.g. ["accounts", "accountNames"]; empty when nothing changed. */
export function fingerprintChanges(before: Fingerprint, after: Fingerprint): string[] {
  return Object.keys(before).filter((name) => before[name] !== after[name]);
}
