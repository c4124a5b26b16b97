import type { CommittedCharge } from "../../db/charges.ts";
import type { Db } from "../../db/client.ts";
import { centsToNumber } from "../../domain/money.ts";
import type { SpendUpdate } from "../../events/types.ts";
import type { EventSource } from "../live/index.ts";

/** A committed charge of a sub-account, as the charge path returns it and the ledger records it. */
export type ChargeRecord = Omit<CommittedCharge, "accountKind" | "alerts">;

/** The one shape of a spend event, whether it arrives on the bus or is read back from the ledger. */
export function spendUpdateOf(charge: ChargeRecord): SpendUpdate {
  const remaining = charge.creditLimit === null ? null : charge.creditLimit - charge.totalSpentAfter;
  return {
    teamId: charge.teamId,
    subAccount: {
      id: charge.accountId,
      totalSpent: centsToNumber(charge.totalSpentAfter),
      creditLimit: charge.creditLimit === null ? null : centsToNumber(charge.creditLimit),
      status: "active",
    },
    amount: centsToNumber(charge.amount),
    messageId: charge.messageId,
    teamBalance: centsToNumber(charge.balanceAfter),
    remainingCredit: remaining === null ? null : centsToNumber(remaining),
    limitReached: remaining !== null && remaining <= 0n,
    chargedAt: charge.chargedAt.toISOString(),
    sequence: charge.sequence,
    budgetRemaining: budgetRemaining(charge),
  };
}

function budgetRemaining(charge: ChargeRecord): number | null {
  if (charge.budgetAmount === null || charge.periodSpentAfter === null) return null;
  const remaining = charge.budgetAmount - charge.periodSpentAfter;
  return centsToNumber(remaining > 0n ? remaining : 0n);
}

/** Spend updates as the live streams read them back: ordered per sub-account by its gapless charge sequence. */
export function spendSource(prisma: Db): EventSource<SpendUpdate> {
  return {
    keyOf: (update) => update.subAccount.id,
    sequenceOf: (update) => update.sequence,
    async read(accountId, from, to) {
      const rows = await prisma.ledgerEntry.findMany({
        where: { accountId, kind: "charge", sequence: { gte: from, lte: to } },
        orderBy: { sequence: "asc" },
      });
      return rows.map((row) =>
        spendUpdateOf({
          teamId: row.teamId,
          accountId,
          messageId: row.messageId!,
          amount: row.amount,
          totalSpentAfter: row.totalSpentAfter!,
          creditLimit: row.creditLimit,
          balanceAfter: row.balanceAfter,
          periodSpentAfter: row.periodSpentAfter,
          budgetAmount: row.budgetAmount,
          sequence: row.sequence!,
          chargedAt: row.createdAt,
        }),
      );
    },
    async latest({ teamIds, keys }) {
      if (teamIds.length === 0 && keys.length === 0) return new Map();
      const rows = await prisma.account.findMany({
        where: { kind: "sub", OR: [{ teamId: { in: teamIds } }, { id: { in: keys } }] },
        select: { id: true, teamId: true, chargeCount: true },
      });
      return new Map(rows.map((row) => [row.id, { teamId: row.teamId, sequence: row.chargeCount }]));
    },
  };
}
