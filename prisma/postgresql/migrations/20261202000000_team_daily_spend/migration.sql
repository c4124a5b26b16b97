-- CreateTable
CREATE TABLE "TeamSpendDaily" (
    "teamId" TEXT NOT NULL,
    "day" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "messages" INTEGER NOT NULL,
    "segments" INTEGER NOT NULL,
    "amount" BIGINT NOT NULL,

    CONSTRAINT "TeamSpendDaily_pkey" PRIMARY KEY ("teamId","day","channel"),
    CONSTRAINT "TeamSpendDaily_amount_positive" CHECK ("amount" > 0 AND "messages" > 0 AND "segments" > 0)
);

-- The totals of the charges made before this table existed.
INSERT INTO "TeamSpendDaily" ("teamId", "day", "channel", "messages", "segments", "amount")
SELECT "teamId", "day", "channel", SUM("messages"), SUM("segments"), SUM("amount") FROM "SpendDaily" GROUP BY "teamId", "day", "channel";
