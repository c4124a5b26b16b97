-- Database functions of the gateway on PostgreSQL. Applied by every start after `prisma migrate deploy`
-- (src/db/migrate.ts), under the startup lock: Prisma's driver-adapter migrations split scripts at every
-- semicolon, which a PL/pgSQL body cannot survive. CREATE OR REPLACE keeps this idempotent.

-- The charge rule of DESIGN.md section 2 as one call, so a charge costs one round trip and the team row
-- (every charge's hot spot) stays locked only for the rest of this call and its commit. Called in
-- autocommit: raising an exception undoes everything the call did.
--
-- Outcomes: 'stored' (charged; or test mode: stored, not charged), 'duplicate' (this account already used
-- the idempotency key: message_id is the original), 'credit_limit_exceeded', 'account_inactive'.
-- Insufficient balance raises SQLSTATE GW402, which undoes the account's debit.
CREATE OR REPLACE FUNCTION "gateway_charge_message"(
    p_message_id TEXT, p_team_id TEXT, p_account_id TEXT, p_api_key_id TEXT,
    p_to TEXT, p_channel TEXT, p_text TEXT, p_cost BIGINT, p_segments INTEGER, p_is_test_mode BOOLEAN,
    p_idempotency_key TEXT, p_metadata JSONB, p_now TIMESTAMPTZ, p_ledger_entry_id TEXT
) RETURNS TABLE (
    outcome TEXT, message_id TEXT, total_spent BIGINT, credit_limit BIGINT, charge_count INTEGER, account_kind TEXT, balance_after BIGINT
) LANGUAGE plpgsql AS $$
DECLARE
    v_now TIMESTAMP(3) := p_now AT TIME ZONE 'UTC';
    v_existing TEXT;
    v_account RECORD;
    v_balance BIGINT;
BEGIN
    IF p_cost <= 0 THEN
        RAISE EXCEPTION 'a charge is positive (got %)', p_cost;
    END IF;
    IF p_idempotency_key IS NOT NULL THEN
        SELECT "id" INTO v_existing FROM "Message" WHERE "accountId" = p_account_id AND "idempotencyKey" = p_idempotency_key;
        IF FOUND THEN
            RETURN QUERY SELECT 'duplicate'::TEXT, v_existing, NULL::BIGINT, NULL::BIGINT, NULL::INTEGER, NULL::TEXT, NULL::BIGINT;
            RETURN;
        END IF;
    END IF;

    IF NOT p_is_test_mode THEN
        -- Under READ COMMITTED this re-checks its WHERE clause after waiting for a concurrent writer of the
        -- row, so two charges can never both pass the limit check against the same old totalSpent.
        UPDATE "Account"
           SET "totalSpent" = "totalSpent" + p_cost, "chargeCount" = "chargeCount" + 1, "updatedAt" = v_now
         WHERE "id" = p_account_id AND "teamId" = p_team_id AND "status" = 'active'
           AND ("creditLimit" IS NULL OR "totalSpent" + p_cost <= "creditLimit")
        RETURNING "totalSpent", "creditLimit", "chargeCount", "kind" INTO v_account;
        IF NOT FOUND THEN
            RETURN QUERY SELECT
                CASE WHEN EXISTS (SELECT 1 FROM "Account" WHERE "id" = p_account_id AND "status" = 'active')
                     THEN 'credit_limit_exceeded' ELSE 'account_inactive' END,
                NULL::TEXT, NULL::BIGINT, NULL::BIGINT, NULL::INTEGER, NULL::TEXT, NULL::BIGINT;
            RETURN;
        END IF;

        UPDATE "Team" SET "balance" = "balance" - p_cost, "updatedAt" = v_now
         WHERE "id" = p_team_id AND "balance" >= p_cost
        RETURNING "balance" INTO v_balance;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insufficient_balance' USING ERRCODE = 'GW402';
        END IF;
    END IF;

    INSERT INTO "Message" ("id", "teamId", "accountId", "apiKeyId", "to", "channel", "text", "status", "cost", "segments",
                           "isTestMode", "idempotencyKey", "metadata", "createdAt", "updatedAt")
    VALUES (p_message_id, p_team_id, p_account_id, p_api_key_id, p_to, p_channel, p_text, 'queued', p_cost, p_segments,
            p_is_test_mode, p_idempotency_key, p_metadata, v_now, v_now);

    IF p_is_test_mode THEN
        RETURN QUERY SELECT 'stored'::TEXT, p_message_id, NULL::BIGINT, NULL::BIGINT, NULL::INTEGER, NULL::TEXT, NULL::BIGINT;
        RETURN;
    END IF;

    INSERT INTO "LedgerEntry" ("id", "teamId", "accountId", "messageId", "kind", "amount", "balanceAfter", "totalSpentAfter", "sequence", "createdAt")
    VALUES (p_ledger_entry_id, p_team_id, p_account_id, p_message_id, 'charge', p_cost, v_balance, v_account."totalSpent", v_account."chargeCount", v_now);

    RETURN QUERY SELECT 'stored'::TEXT, p_message_id, v_account."totalSpent", v_account."creditLimit", v_account."chargeCount", v_account."kind", v_balance;
END;
$$;
