-- Database functions of the gateway on PostgreSQL. Applied by every start after `prisma migrate deploy`
-- (src/db/migrate.ts), under the startup lock: Prisma's driver-adapter migrations split scripts at every
-- semicolon, which a PL/pgSQL body cannot survive. CREATE OR REPLACE keeps this idempotent.

-- The earlier one-charge functions, replaced by gateway_charge_batch below (group commit).
DROP FUNCTION IF EXISTS "gateway_charge_message"(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT, INTEGER, BOOLEAN, TEXT, JSONB, TIMESTAMPTZ, TEXT);
DROP FUNCTION IF EXISTS "gateway_charge_message"(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT, INTEGER, BOOLEAN, TEXT, JSONB, TIMESTAMPTZ, TEXT,
                                                 TIMESTAMPTZ, TIMESTAMPTZ, TIMESTAMPTZ, TEXT);

-- The alerts one charge raises (README.md, "Budgets and alerts"), the rule of src/domain/alerts.ts in SQL:
-- a threshold T% of a limit L is crossed when before < L*T/100 <= after (in integers: before*100 < L*T <= after*100),
-- for the credit limit and the budget of a sub-account, in ascending T; the team's low-balance threshold B when
-- before >= B > after. Returned in that order, numbered after the team's alertCount by the caller.
CREATE OR REPLACE FUNCTION "gateway_alerts_of_charge"(
    p_message_id TEXT, p_kind TEXT, p_cost BIGINT, p_total_spent BIGINT, p_credit_limit BIGINT,
    p_period_spent BIGINT, p_budget BIGINT, p_thresholds JSONB, p_balance BIGINT, p_low_balance BIGINT
) RETURNS TABLE (id TEXT, kind TEXT, threshold_percent INTEGER, threshold BIGINT, value BIGINT)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_percents INTEGER[] := ARRAY(SELECT t::INTEGER FROM jsonb_array_elements_text(COALESCE(p_thresholds, '[80, 100]'::JSONB)) AS t ORDER BY 1);
    v_percent INTEGER;
BEGIN
    IF p_kind = 'sub' AND p_credit_limit IS NOT NULL AND p_credit_limit > 0 THEN
        FOREACH v_percent IN ARRAY v_percents LOOP
            IF (p_total_spent - p_cost) * 100 < p_credit_limit * v_percent AND p_credit_limit * v_percent <= p_total_spent * 100 THEN
                RETURN QUERY SELECT 'al_' || p_message_id || '_cl' || v_percent, 'credit_limit'::TEXT, v_percent, (p_credit_limit * v_percent + 99) / 100, p_total_spent;
            END IF;
        END LOOP;
    END IF;
    IF p_kind = 'sub' AND p_budget IS NOT NULL AND p_budget > 0 THEN
        FOREACH v_percent IN ARRAY v_percents LOOP
            IF (p_period_spent - p_cost) * 100 < p_budget * v_percent AND p_budget * v_percent <= p_period_spent * 100 THEN
                RETURN QUERY SELECT 'al_' || p_message_id || '_bu' || v_percent, 'budget'::TEXT, v_percent, (p_budget * v_percent + 99) / 100, p_period_spent;
            END IF;
        END LOOP;
    END IF;
    IF p_low_balance IS NOT NULL AND p_balance + p_cost >= p_low_balance AND p_balance < p_low_balance THEN
        RETURN QUERY SELECT 'al_' || p_message_id || '_lb', 'low_balance'::TEXT, NULL::INTEGER, p_low_balance, p_balance;
    END IF;
END;
$$;

-- The start of the budget period containing a charge, from the period starts the caller computed for the
-- charge's time (src/domain/periods.ts): a budget's period rolls over inside the charge, with no timer.
CREATE OR REPLACE FUNCTION "gateway_period_start"(p_period TEXT, p_day TIMESTAMP(3), p_week TIMESTAMP(3), p_month TIMESTAMP(3))
RETURNS TIMESTAMP(3) LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_period WHEN 'day' THEN p_day WHEN 'week' THEN p_week ELSE p_month END
$$;

-- The account's side of the charge rule (README.md, "Messages and charging"): active, within its credit limit,
-- within its budget for the current period (what an ended period spent counts as nothing). One definition for
-- the charge's conditional update and for explaining a refusal by the balance.
CREATE OR REPLACE FUNCTION "gateway_account_accepts"(
    p_status TEXT, p_total_spent BIGINT, p_credit_limit BIGINT, p_budget BIGINT, p_period_spent BIGINT,
    p_period_start TIMESTAMP(3), p_current_start TIMESTAMP(3), p_cost BIGINT
) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT p_status = 'active'
       AND (p_credit_limit IS NULL OR p_total_spent + p_cost <= p_credit_limit)
       AND (p_budget IS NULL OR (CASE WHEN p_period_start >= p_current_start THEN p_period_spent ELSE 0 END) + p_cost <= p_budget)
$$;

-- The charge rule for a batch of one team's charges (group commit: src/db/groupCommit.ts), in one call and one
-- transaction (autocommit: an exception undoes the whole batch, and the caller then commits each charge alone).
-- The team row is locked first, then each charge is decided in order against the values the one before it left:
-- its own idempotency check, the account's conditional update, the balance kept in a variable, its message,
-- ledger entry, daily total and alerts. The team row is written once, at the end. Every path locks the team
-- row before any account row, so batches of several instances cannot deadlock.
--
-- One row per charge, in order: 'stored' (charged; or test mode: stored, not charged), 'duplicate' (this
-- account already used the idempotency key: message_id is the original), 'refused' (the account's
-- conditions: the caller reads why, src/db/charges.ts accountRefusal), 'insufficient_balance' (the account
-- would accept it, the balance does not cover it).
CREATE OR REPLACE FUNCTION "gateway_charge_batch"(
    p_team_id TEXT, p_message_ids TEXT[], p_account_ids TEXT[], p_api_key_ids TEXT[], p_tos TEXT[], p_channels TEXT[],
    p_texts TEXT[], p_costs BIGINT[], p_segments INTEGER[], p_test_modes BOOLEAN[], p_idempotency_keys TEXT[],
    p_metadata JSONB[], p_nows TIMESTAMPTZ[], p_ledger_entry_ids TEXT[], p_day_starts TIMESTAMPTZ[],
    p_week_starts TIMESTAMPTZ[], p_month_starts TIMESTAMPTZ[], p_days TEXT[]
) RETURNS TABLE (
    o_ord INTEGER, o_outcome TEXT, o_message_id TEXT, o_total_spent BIGINT, o_credit_limit BIGINT, o_charge_count INTEGER,
    o_account_kind TEXT, o_balance_after BIGINT, o_period_spent BIGINT, o_budget_amount BIGINT, o_alerts JSONB
) LANGUAGE plpgsql AS $$
DECLARE
    v_team RECORD;
    v_team_found BOOLEAN;
    v_balance BIGINT;
    v_alert_count INTEGER;
    v_team_changed_at TIMESTAMP(3);
    v_now TIMESTAMP(3);
    v_current TIMESTAMP(3);
    v_cost BIGINT;
    v_existing TEXT;
    v_account RECORD;
    v_alerts JSONB;
    v_count INTEGER;
    -- The batch's daily totals, one element per (account, channel, day), written once at the end (the team's
    -- rows summed from them): a batch of one team's charges mostly adds to the same few rows.
    v_daily_keys TEXT[] := '{}'; v_daily_accounts TEXT[] := '{}'; v_daily_channels TEXT[] := '{}'; v_daily_days TEXT[] := '{}';
    v_daily_messages INTEGER[] := '{}'; v_daily_segments INTEGER[] := '{}'; v_daily_amounts BIGINT[] := '{}';
    v_at INTEGER;
BEGIN
    SELECT "balance", "lowBalanceThreshold", "alertCount" INTO v_team FROM "Team" WHERE "id" = p_team_id FOR UPDATE;
    v_team_found := FOUND;
    v_balance := v_team."balance";
    v_alert_count := v_team."alertCount";
    FOR i IN 1 .. COALESCE(cardinality(p_message_ids), 0) LOOP
        o_ord := i; o_outcome := NULL; o_message_id := p_message_ids[i]; o_total_spent := NULL; o_credit_limit := NULL;
        o_charge_count := NULL; o_account_kind := NULL; o_balance_after := NULL; o_period_spent := NULL; o_budget_amount := NULL; o_alerts := NULL;
        v_now := p_nows[i] AT TIME ZONE 'UTC';
        v_cost := p_costs[i];
        IF v_cost IS NULL OR v_cost <= 0 THEN
            RAISE EXCEPTION 'a charge is positive (got %)', v_cost;
        END IF;

        IF p_idempotency_keys[i] IS NOT NULL THEN
            SELECT "id" INTO v_existing FROM "Message" WHERE "accountId" = p_account_ids[i] AND "idempotencyKey" = p_idempotency_keys[i];
            IF FOUND THEN
                o_outcome := 'duplicate'; o_message_id := v_existing;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;

        IF NOT p_test_modes[i] THEN
            IF NOT v_team_found OR v_balance < v_cost THEN
                -- Refused either way: by the account's own conditions when they fail (they come first), else by the balance.
                PERFORM 1 FROM "Account" a
                  WHERE a."id" = p_account_ids[i] AND a."teamId" = p_team_id AND v_team_found
                    AND "gateway_account_accepts"(a."status", a."totalSpent", a."creditLimit", a."budgetAmount", a."periodSpent", a."periodStart",
                          "gateway_period_start"(a."budgetPeriod", p_day_starts[i] AT TIME ZONE 'UTC', p_week_starts[i] AT TIME ZONE 'UTC', p_month_starts[i] AT TIME ZONE 'UTC'), v_cost);
                o_outcome := CASE WHEN FOUND THEN 'insufficient_balance' ELSE 'refused' END;
                RETURN NEXT;
                CONTINUE;
            END IF;
            UPDATE "Account" AS a
               SET "totalSpent" = a."totalSpent" + v_cost, "chargeCount" = a."chargeCount" + 1, "updatedAt" = v_now,
                   "periodSpent" = CASE WHEN a."budgetAmount" IS NULL THEN a."periodSpent"
                                        WHEN a."periodStart" >= "gateway_period_start"(a."budgetPeriod", p_day_starts[i] AT TIME ZONE 'UTC', p_week_starts[i] AT TIME ZONE 'UTC', p_month_starts[i] AT TIME ZONE 'UTC')
                                        THEN a."periodSpent" + v_cost ELSE v_cost END,
                   "periodStart" = CASE WHEN a."budgetAmount" IS NULL THEN a."periodStart"
                                        ELSE GREATEST(a."periodStart", "gateway_period_start"(a."budgetPeriod", p_day_starts[i] AT TIME ZONE 'UTC', p_week_starts[i] AT TIME ZONE 'UTC', p_month_starts[i] AT TIME ZONE 'UTC')) END
             WHERE a."id" = p_account_ids[i] AND a."teamId" = p_team_id
               AND "gateway_account_accepts"(a."status", a."totalSpent", a."creditLimit", a."budgetAmount", a."periodSpent", a."periodStart",
                     "gateway_period_start"(a."budgetPeriod", p_day_starts[i] AT TIME ZONE 'UTC', p_week_starts[i] AT TIME ZONE 'UTC', p_month_starts[i] AT TIME ZONE 'UTC'), v_cost)
            RETURNING a."totalSpent", a."creditLimit", a."chargeCount", a."kind", a."periodSpent", a."budgetAmount", a."alertThresholds" INTO v_account;
            IF NOT FOUND THEN
                o_outcome := 'refused';
                RETURN NEXT;
                CONTINUE;
            END IF;
            v_balance := v_balance - v_cost;
            v_team_changed_at := v_now;
        END IF;

        INSERT INTO "Message" ("id", "teamId", "accountId", "apiKeyId", "to", "channel", "text", "status", "cost", "segments",
                               "isTestMode", "idempotencyKey", "metadata", "createdAt", "updatedAt")
        VALUES (p_message_ids[i], p_team_id, p_account_ids[i], p_api_key_ids[i], p_tos[i], p_channels[i], p_texts[i], 'queued', v_cost,
                p_segments[i], p_test_modes[i], p_idempotency_keys[i], p_metadata[i], v_now, v_now);
        o_outcome := 'stored';
        IF p_test_modes[i] THEN
            RETURN NEXT;
            CONTINUE;
        END IF;

        INSERT INTO "LedgerEntry" ("id", "teamId", "accountId", "messageId", "kind", "amount", "balanceAfter", "totalSpentAfter",
                                   "creditLimit", "budgetAmount", "periodSpentAfter", "sequence", "createdAt")
        VALUES (p_ledger_entry_ids[i], p_team_id, p_account_ids[i], p_message_ids[i], 'charge', v_cost, v_balance, v_account."totalSpent",
                v_account."creditLimit", v_account."budgetAmount", CASE WHEN v_account."budgetAmount" IS NOT NULL THEN v_account."periodSpent" END,
                v_account."chargeCount", v_now);

        v_at := array_position(v_daily_keys, p_account_ids[i] || ' ' || p_channels[i] || ' ' || p_days[i]);
        IF v_at IS NULL THEN
            v_daily_keys := v_daily_keys || (p_account_ids[i] || ' ' || p_channels[i] || ' ' || p_days[i]);
            v_daily_accounts := v_daily_accounts || p_account_ids[i]; v_daily_channels := v_daily_channels || p_channels[i];
            v_daily_days := v_daily_days || p_days[i]; v_daily_messages := v_daily_messages || 1;
            v_daily_segments := v_daily_segments || p_segments[i]; v_daily_amounts := v_daily_amounts || v_cost;
        ELSE
            v_daily_messages[v_at] := v_daily_messages[v_at] + 1; v_daily_segments[v_at] := v_daily_segments[v_at] + p_segments[i];
            v_daily_amounts[v_at] := v_daily_amounts[v_at] + v_cost;
        END IF;

        v_alerts := '[]'::JSONB;
        v_count := 0;
        -- Only a charge that could cross something asks which alerts it raises: a threshold T% (1 <= T <= 100) of a
        -- limit L is crossed only if before * 100 < L * 100 and L <= after * 100; the low balance exactly as stated.
        IF (v_account."kind" = 'sub' AND v_account."creditLimit" > 0
                AND v_account."totalSpent" * 100 >= v_account."creditLimit" AND v_account."totalSpent" - v_cost < v_account."creditLimit")
           OR (v_account."kind" = 'sub' AND v_account."budgetAmount" > 0
                AND v_account."periodSpent" * 100 >= v_account."budgetAmount" AND v_account."periodSpent" - v_cost < v_account."budgetAmount")
           OR (v_team."lowBalanceThreshold" IS NOT NULL AND v_balance + v_cost >= v_team."lowBalanceThreshold" AND v_balance < v_team."lowBalanceThreshold") THEN
            SELECT COALESCE(jsonb_agg((to_jsonb(c) - 'n') || jsonb_build_object('sequence', v_alert_count + c.n) ORDER BY c.n), '[]'::JSONB), COUNT(*)
              INTO v_alerts, v_count
              FROM "gateway_alerts_of_charge"(p_message_ids[i], v_account."kind", v_cost, v_account."totalSpent", v_account."creditLimit",
                                              v_account."periodSpent", v_account."budgetAmount", v_account."alertThresholds",
                                              v_balance, v_team."lowBalanceThreshold") WITH ORDINALITY AS c(id, kind, threshold_percent, threshold, value, n);
        END IF;
        IF v_count > 0 THEN
            v_alert_count := v_alert_count + v_count;
            PERFORM "gateway_record_alerts"(p_team_id, p_account_ids[i], v_account."kind", p_message_ids[i], v_alerts, p_nows[i]);
        END IF;

        o_total_spent := v_account."totalSpent"; o_credit_limit := v_account."creditLimit"; o_charge_count := v_account."chargeCount";
        o_account_kind := v_account."kind"; o_balance_after := v_balance; o_budget_amount := v_account."budgetAmount";
        o_period_spent := CASE WHEN v_account."budgetAmount" IS NOT NULL THEN v_account."periodSpent" END;
        o_alerts := v_alerts;
        RETURN NEXT;
    END LOOP;

    IF v_team_changed_at IS NOT NULL THEN
        UPDATE "Team" SET "balance" = v_balance, "alertCount" = v_alert_count, "updatedAt" = v_team_changed_at WHERE "id" = p_team_id;
        INSERT INTO "SpendDaily" ("teamId", "accountId", "channel", "day", "messages", "segments", "amount")
        SELECT p_team_id, d.account_id, d.channel, d.day, d.messages, d.segments, d.amount
          FROM unnest(v_daily_accounts, v_daily_channels, v_daily_days, v_daily_messages, v_daily_segments, v_daily_amounts)
               AS d(account_id, channel, day, messages, segments, amount)
        ON CONFLICT ("accountId", "channel", "day") DO UPDATE
           SET "messages" = "SpendDaily"."messages" + EXCLUDED."messages", "segments" = "SpendDaily"."segments" + EXCLUDED."segments",
               "amount" = "SpendDaily"."amount" + EXCLUDED."amount";
        INSERT INTO "TeamSpendDaily" ("teamId", "day", "channel", "messages", "segments", "amount")
        SELECT p_team_id, d.day, d.channel, SUM(d.messages), SUM(d.segments), SUM(d.amount)
          FROM unnest(v_daily_days, v_daily_channels, v_daily_messages, v_daily_segments, v_daily_amounts)
               AS d(day, channel, messages, segments, amount)
         GROUP BY d.day, d.channel
        ON CONFLICT ("teamId", "day", "channel") DO UPDATE
           SET "messages" = "TeamSpendDaily"."messages" + EXCLUDED."messages", "segments" = "TeamSpendDaily"."segments" + EXCLUDED."segments",
               "amount" = "TeamSpendDaily"."amount" + EXCLUDED."amount";
    END IF;
END;
$$;

-- A charge's alerts (numbered by the caller in the team's gapless sequence) and, for each, its spend.alert
-- webhook event in the same transaction: the outbox's one insert (README.md, "Webhooks"), its data the alert as
-- the API shows it (alertJson in src/db/charges.ts).
CREATE OR REPLACE FUNCTION "gateway_record_alerts"(
    p_team_id TEXT, p_account_id TEXT, p_account_kind TEXT, p_message_id TEXT, p_alerts JSONB, p_now TIMESTAMPTZ
) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    v_now TIMESTAMP(3) := p_now AT TIME ZONE 'UTC';
BEGIN
    INSERT INTO "SpendAlert" ("id", "teamId", "sequence", "kind", "accountId", "thresholdPercent", "threshold", "value", "messageId", "createdAt")
    SELECT alert->>'id', p_team_id, (alert->>'sequence')::INTEGER, alert->>'kind',
           CASE WHEN p_account_kind = 'sub' THEN p_account_id END,
           (alert->>'threshold_percent')::INTEGER, (alert->>'threshold')::BIGINT, (alert->>'value')::BIGINT, p_message_id, v_now
      FROM jsonb_array_elements(p_alerts) AS alert;
    PERFORM "gateway_enqueue_webhook_event"(p_team_id, 'spend.alert', jsonb_build_object(
                'id', alert->>'id', 'kind', alert->>'kind',
                'subAccountId', CASE WHEN p_account_kind = 'sub' THEN p_account_id END,
                'thresholdPercent', (alert->>'threshold_percent')::INTEGER, 'threshold', (alert->>'threshold')::BIGINT,
                'value', (alert->>'value')::BIGINT, 'messageId', p_message_id, 'sequence', (alert->>'sequence')::INTEGER,
                'createdAt', to_char(v_now, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')), p_now)
      FROM jsonb_array_elements(p_alerts) AS alert;
END;
$$;
