-- Live subscribers read missed charges back from the ledger: each charge carries the credit limit it was
-- charged against, and (accountId, sequence) is unique: the sequence is gapless and never repeats.
-- DropIndex
DROP INDEX "LedgerEntry_accountId_idx";

-- AlterTable
ALTER TABLE "LedgerEntry" ADD COLUMN     "creditLimit" BIGINT;

-- CreateIndex
CREATE UNIQUE INDEX "LedgerEntry_accountId_sequence_key" ON "LedgerEntry"("accountId", "sequence");

