import { assert } from "../domain/errors.ts";
import type { Channel } from "../domain/channels.ts";

/** Everything the charge rule needs, decided before the transaction starts. */
export interface ChargeAttempt {
  teamId: string;
  accountId: string;
  apiKeyId: string;
  /** Cents, > 0 (test-mode messages are priced too but never charged). */
  cost: bigint;
  isTestMode: boolean;
  now: Date;
  ledgerEntryId: string;
  message: {
    id: string;
    to: string;
    channel: Channel;
    text: string;
    segments: number;
    idempotencyKey: string | null;
    /** JSON text or null. */
    metadata: string | null;
  };
}

/** A committed charge, as subscribers see it. */
export interface CommittedCharge {
  teamId: string;
  accountId: string;
  accountKind: "main" | "sub";
  messageId: string;
  amount: bigint;
  totalSpentAfter: bigint;
  creditLimit: bigint | null;
  balanceAfter: bigint;
  /** The account's gapless charge sequence number (1 for its first charge). */
  sequence: number;
  chargedAt: Date;
}

export type RejectionCode = "credit_limit_exceeded" | "insufficient_balance" | "account_inactive";

export interface ChargeSnapshot {
  totalSpent: bigint;
  creditLimit: bigint | null;
  balance: bigint;
}

export type ChargeResult =
  /** The message is stored; `charge` is null for test mode (priced, not charged). */
  | { kind: "stored"; messageId: string; charge: CommittedCharge | null }
  /** The idempotency key was used before by this account: the original message, nothing charged. */
  | { kind: "duplicate"; messageId: string }
  | { kind: "rejected"; code: RejectionCode; snapshot: ChargeSnapshot };

/**
 * The charge rule of DESIGN.md section 2, atomic on its database: a live
 * message is stored and charged if and only if the account is active, within
 * its credit limit, and the team balance covers the cost; otherwise nothing
 * changes. `onCommitted` runs right after the commit, before any other charge
 * of this store can commit, so in-process events leave in commit order.
 */
export interface ChargeStore {
  charge(attempt: ChargeAttempt, onCommitted: (charge: CommittedCharge) => void): Promise<ChargeResult>;
  /** Moves a message's delivery status forward only (queued, sent, delivered; or failed). */
  advanceMessageStatus(messageId: string, status: "sent" | "delivered" | "failed", at: Date): Promise<void>;
  /** Records that a key was used, at most once per `resolutionMs`. */
  touchApiKey(apiKeyId: string, at: Date, resolutionMs: number): Promise<void>;
  close(): Promise<void>;
}

/** An API key and what it acts for, read in one statement on every authenticated request. */
export interface KeyRecord {
  id: string;
  environment: string;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  account: { id: string; teamId: string; kind: string; status: string };
  team: { id: string; name: string; balance: bigint; currency: string; createdAt: Date };
}

/** What a balance view needs: the team's balance and the account's spending. */
export interface AccountBalanceRecord {
  balance: bigint;
  currency: string;
  totalSpent: bigint;
  creditLimit: bigint | null;
}

/**
 * Reads on every request's path, through the driver alone: Prisma's per-query
 * cost (milliseconds of CPU) would otherwise dominate a request (BENCHMARKS.md).
 */
export interface AccessReads {
  findKeyByHash(keyHash: string): Promise<KeyRecord | null>;
  readAccountBalance(accountId: string): Promise<AccountBalanceRecord | null>;
}

/** The store of the hot paths: the charge rule and the per-request reads. */
export type HotPathStore = ChargeStore & AccessReads;

/** A committed charge as subscribers see it, asserting the invariants the charge rule guarantees. */
export function committedCharge(
  attempt: ChargeAttempt,
  after: { accountKind: "main" | "sub"; totalSpent: bigint; creditLimit: bigint | null; balance: bigint; sequence: number },
): CommittedCharge {
  assert(after.balance >= 0n, "team balance never negative");
  assert(after.creditLimit === null || after.totalSpent <= after.creditLimit, "totalSpent within creditLimit");
  assert(after.sequence >= 1, "charge sequence numbers start at 1");
  return {
    teamId: attempt.teamId,
    accountId: attempt.accountId,
    accountKind: after.accountKind,
    messageId: attempt.message.id,
    amount: attempt.cost,
    totalSpentAfter: after.totalSpent,
    creditLimit: after.creditLimit,
    balanceAfter: after.balance,
    sequence: after.sequence,
    chargedAt: attempt.now,
  };
}

export class ChargeRejected extends Error {
  constructor(readonly code: RejectionCode) {
    super(code);
  }
}

export class DuplicateIdempotencyKey extends Error {
  constructor(readonly messageId: string) {
    super("duplicate idempotency key");
  }
}
