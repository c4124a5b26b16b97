-- Keys can expire: at creation, or when rolled (the old key works for an overlap, then stops).
-- AlterTable
ALTER TABLE "ApiKey" ADD COLUMN     "expiresAt" TIMESTAMP(3);

