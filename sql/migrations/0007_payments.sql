-- 0007_payments: what mod_beautiful_payment needs beyond 0001 — the tier a
-- user has paid for, what each order bought (plan, tier, days) and its
-- Idempotency-Key, the reconciliation lease, the subscription's tier and
-- event clock, and the functions that move a payment or a subscription
-- forward. Every state change goes through those functions, so the
-- request paths (verify-payment, webhook) and the background tasks share
-- one forward-only state machine, one lock order and one audit row.

-- ---------------------------------------------------------------- users

ALTER TABLE users
    ADD COLUMN subscription_tier       text        NOT NULL DEFAULT 'free',
    ADD COLUMN subscription_tier_until timestamptz,
    ADD CONSTRAINT users_subscription_tier_shape CHECK (subscription_tier ~ '^[a-z0-9_]{1,50}$');
-- The expiry sweep.
CREATE INDEX users_subscription_tier_until_idx ON users (subscription_tier_until)
    WHERE subscription_tier <> 'free';

-- ---------------------------------------------------------------- payments

ALTER TABLE payments
    -- The plan as configured when the order was made: a later change of
    -- the configuration does not change what was bought.
    ADD COLUMN plan                  text,
    ADD COLUMN tier                  text,
    ADD COLUMN access_days           integer,
    ADD COLUMN idempotency_key       text,
    -- Reconciliation: when this order was last looked up at Razorpay.
    ADD COLUMN reconcile_checked_at  timestamptz,
    ADD CONSTRAINT payments_plan_shape CHECK (plan ~ '^[a-z0-9_]{1,50}$'),
    ADD CONSTRAINT payments_tier_shape CHECK (tier ~ '^[a-z0-9_]{1,50}$'),
    ADD CONSTRAINT payments_access_days CHECK (access_days BETWEEN 1 AND 3660),
    ADD CONSTRAINT payments_idempotency_key_length CHECK (length(idempotency_key) BETWEEN 1 AND 255);
-- A retried create-order with the same key finds its order.
CREATE UNIQUE INDEX payments_user_idempotency_key ON payments (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Orders waiting for money: what reconciliation looks at.
CREATE INDEX payments_open_idx ON payments (created_at) WHERE status IN ('created', 'attempted');

-- ---------------------------------------------------------------- subscriptions

ALTER TABLE subscriptions
    ADD COLUMN tier          text,
    -- created_at of the newest Razorpay event applied: an older event
    -- arriving late changes nothing.
    ADD COLUMN last_event_at timestamptz,
    ADD CONSTRAINT subscriptions_tier_shape CHECK (tier ~ '^[a-z0-9_]{1,50}$');

-- ---------------------------------------------------------------- helpers

-- The order of a payment's life: a status only ever moves to a higher
-- rank. failed ranks below authorized and captured because an order may
-- be paid on a second attempt after a first one failed.
CREATE FUNCTION payment_status_rank(s payment_status) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE s WHEN 'created' THEN 0 WHEN 'attempted' THEN 1 WHEN 'failed' THEN 2
                  WHEN 'authorized' THEN 3 WHEN 'captured' THEN 4 WHEN 'refunded' THEN 5 END
$$;

-- Paise as text for people: 49900 -> '499.00'. Integer arithmetic only.
CREATE FUNCTION payment_amount_text(paise bigint) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (paise / 100)::text || '.' || lpad((paise % 100)::text, 2, '0')
$$;

-- One payment as the API shows it.
CREATE FUNCTION payment_json(p payments) RETURNS json
    LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', p.id, 'plan', p.plan, 'description', p.description,
        'amount', p.amount_paise, 'currency', p.currency, 'status', p.status,
        'razorpay_order_id', p.razorpay_order_id,
        'razorpay_payment_id', p.razorpay_payment_id,
        'subscription_id', p.subscription_id,
        'failure_reason', p.failure_reason,
        'paid_at', to_char(p.paid_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'refunded_at', to_char(p.refunded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'created_at', to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;

-- One subscription as the API shows it.
CREATE FUNCTION payment_subscription_json(s subscriptions) RETURNS json
    LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', s.id, 'plan', s.plan, 'tier', s.tier, 'status', s.status,
        'razorpay_subscription_id', s.razorpay_subscription_id,
        'current_period_start', to_char(s.current_period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'current_period_end', to_char(s.current_period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'cancel_at_period_end', s.cancel_at_period_end,
        'cancelled_at', to_char(s.cancelled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'created_at', to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;

-- ---------------------------------------------------------------- payment state

-- Moves payment p_id to p_status when that is forward, under the row's
-- lock, and in the same transaction applies what was bought (a capture
-- extends the user's tier by the order's days; a refund takes them back)
-- and writes the audit row. A move that is not forward changes nothing.
-- Returns whether it changed, the status now, and for a fresh capture the
-- receipt to put in the outbox ({user_id, title, body, data}).
CREATE FUNCTION payment_settle(
    p_id uuid, p_status payment_status, p_razorpay_payment_id text,
    p_signature text, p_failure text, p_source text,
    p_actor uuid, p_ip text, p_user_agent text, p_request_id text)
RETURNS TABLE (changed boolean, status payment_status, receipt json)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p payments;
BEGIN
    SELECT * INTO p FROM payments WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF payment_status_rank(p_status) <= payment_status_rank(p.status) THEN
        RETURN QUERY SELECT false, p.status, NULL::json;
        RETURN;
    END IF;
    UPDATE payments SET
        status = p_status,
        razorpay_payment_id = coalesce(p_razorpay_payment_id, payments.razorpay_payment_id),
        razorpay_signature = coalesce(p_signature, payments.razorpay_signature),
        signature_verified = payments.signature_verified OR p_signature IS NOT NULL,
        failure_reason = CASE WHEN p_status = 'failed' THEN left(p_failure, 2000)
                              ELSE payments.failure_reason END,
        paid_at = CASE WHEN p_status = 'captured' THEN now() ELSE payments.paid_at END,
        refunded_at = CASE WHEN p_status = 'refunded' THEN now() ELSE payments.refunded_at END
    WHERE id = p_id;

    IF p.user_id IS NOT NULL AND p.tier IS NOT NULL AND p.access_days IS NOT NULL THEN
        IF p_status = 'captured' THEN
            UPDATE users SET subscription_tier = p.tier,
                subscription_tier_until = greatest(coalesce(subscription_tier_until, now()), now())
                                          + p.access_days * interval '1 day'
            WHERE id = p.user_id;
        ELSIF p_status = 'refunded' AND p.status = 'captured' THEN
            UPDATE users SET
                subscription_tier = CASE WHEN subscription_tier_until - p.access_days * interval '1 day'
                                              > now() THEN subscription_tier ELSE 'free' END,
                subscription_tier_until = CASE WHEN subscription_tier_until - p.access_days * interval '1 day'
                                              > now() THEN subscription_tier_until
                                              - p.access_days * interval '1 day' END
            WHERE id = p.user_id AND subscription_tier = p.tier;
        END IF;
    END IF;

    INSERT INTO audit_logs (user_id, action, resource_type, resource_id, outcome,
                            ip_address, user_agent, request_id, details)
    VALUES (coalesce(p_actor, p.user_id), 'payment.' || p_status::text, 'payment', p_id::text,
            'success', p_ip::inet, p_user_agent, p_request_id,
            json_build_object('from', p.status, 'to', p_status, 'source', p_source,
                              'razorpay_order_id', p.razorpay_order_id,
                              'razorpay_payment_id',
                              coalesce(p_razorpay_payment_id, p.razorpay_payment_id))::jsonb);

    RETURN QUERY SELECT true, p_status,
        CASE WHEN p_status = 'captured' AND p.user_id IS NOT NULL THEN json_build_object(
            'user_id', p.user_id,
            'title', 'Payment received: ' || coalesce(p.description, p.plan, 'Beautiful Life'),
            'body', 'Thank you. We received ' || p.currency || ' '
                    || payment_amount_text(p.amount_paise) || ' for '
                    || coalesce(p.description, p.plan, 'your order') || E'.\n\n'
                    || 'Receipt: ' || p.id::text || E'\n'
                    || 'Razorpay payment: ' || coalesce(p_razorpay_payment_id, p.razorpay_payment_id)
                    || E'\nRazorpay order: ' || p.razorpay_order_id || E'\n',
            'data', json_build_object('payment_id', p.id, 'amount', p.amount_paise,
                                      'currency', p.currency, 'plan', p.plan))
        END;
END
$$;

-- ---------------------------------------------------------------- subscription state

-- Applies a Razorpay subscription event (status, period) to our row, under
-- its lock, unless an event newer than p_event_at was already applied or
-- the subscription already ended (cancelled, completed, expired never come
-- back). Moves the user's tier: active grants the plan's tier up to the
-- period end; halted takes it away at once; cancelled leaves what was paid
-- for until the period ends (the expiry task ends it). Writes the audit
-- row. Returns whether it changed, the status now, the user and a notice
-- for the outbox ({title, body, data}) when the status changed.
CREATE FUNCTION payment_subscription_apply(
    p_razorpay_subscription_id text, p_status subscription_status,
    p_period_start timestamptz, p_period_end timestamptz, p_event_at timestamptz,
    p_source text, p_actor uuid, p_ip text, p_user_agent text, p_request_id text)
RETURNS TABLE (changed boolean, status subscription_status, user_id uuid, notice json)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    s subscriptions;
BEGIN
    SELECT * INTO s FROM subscriptions
    WHERE razorpay_subscription_id = p_razorpay_subscription_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF s.status IN ('cancelled', 'completed', 'expired')
       OR (s.last_event_at IS NOT NULL AND p_event_at IS NOT NULL AND p_event_at < s.last_event_at)
       OR (s.status = p_status AND p_period_end IS NOT DISTINCT FROM s.current_period_end) THEN
        RETURN QUERY SELECT false, s.status, s.user_id, NULL::json;
        RETURN;
    END IF;
    -- A subscription is created before checkout: nothing goes back to it.
    IF p_status = 'created' THEN
        RETURN QUERY SELECT false, s.status, s.user_id, NULL::json;
        RETURN;
    END IF;
    UPDATE subscriptions SET
        status = p_status,
        current_period_start = coalesce(p_period_start, subscriptions.current_period_start),
        current_period_end = coalesce(p_period_end, subscriptions.current_period_end),
        cancelled_at = CASE WHEN p_status = 'cancelled' THEN now() ELSE subscriptions.cancelled_at END,
        last_event_at = greatest(subscriptions.last_event_at, p_event_at)
    WHERE id = s.id;

    IF s.user_id IS NOT NULL THEN
        IF p_status = 'active' AND coalesce(p_period_end, s.current_period_end) IS NOT NULL THEN
            UPDATE users SET subscription_tier = coalesce(s.tier, s.plan),
                subscription_tier_until = greatest(coalesce(subscription_tier_until, now()),
                                                   coalesce(p_period_end, s.current_period_end))
            WHERE id = s.user_id;
        ELSIF p_status = 'halted' THEN
            UPDATE users SET subscription_tier = 'free', subscription_tier_until = NULL
            WHERE id = s.user_id AND subscription_tier = coalesce(s.tier, s.plan);
        END IF;
    END IF;

    INSERT INTO audit_logs (user_id, action, resource_type, resource_id, outcome,
                            ip_address, user_agent, request_id, details)
    VALUES (coalesce(p_actor, s.user_id), 'subscription.' || p_status::text, 'subscription',
            s.id::text, 'success', p_ip::inet, p_user_agent, p_request_id,
            json_build_object('from', s.status, 'to', p_status, 'source', p_source,
                              'razorpay_subscription_id', p_razorpay_subscription_id,
                              'current_period_end', coalesce(p_period_end, s.current_period_end))::jsonb);

    RETURN QUERY SELECT true, p_status, s.user_id,
        CASE WHEN s.user_id IS NULL OR s.status = p_status THEN NULL
             ELSE json_build_object(
            'title', CASE p_status
                WHEN 'authenticated' THEN 'Your subscription is set up'
                WHEN 'active' THEN 'Your subscription is active'
                WHEN 'pending' THEN 'Your subscription payment did not go through'
                WHEN 'halted' THEN 'Your subscription is on hold'
                WHEN 'cancelled' THEN 'Your subscription is cancelled'
                ELSE 'Your subscription has ended' END,
            'body', CASE p_status
                WHEN 'authenticated' THEN 'Your payment method is confirmed; the first charge follows shortly.'
                WHEN 'active' THEN 'Thank you. Your ' || s.plan || ' subscription is active until '
                                   || to_char(coalesce(p_period_end, s.current_period_end)
                                              AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '.'
                WHEN 'pending' THEN 'We could not charge your renewal. Razorpay will try again; '
                                    || 'please check your payment method.'
                WHEN 'halted' THEN 'Renewal payments failed, so your subscription is on hold '
                                   || 'and its benefits are paused.'
                WHEN 'cancelled' THEN 'Your ' || s.plan || ' subscription is cancelled. What you '
                                      || 'paid for stays until the end of the current period.'
                ELSE 'Your ' || s.plan || ' subscription has ended.' END,
            'data', json_build_object('subscription_id', s.id, 'status', p_status, 'plan', s.plan))
        END;
END
$$;

-- ---------------------------------------------------------------- background work

-- Claims up to p_batch open orders older than p_age_seconds for
-- reconciliation: each order is claimed by one pass only (SKIP LOCKED, and
-- the claim stamps reconcile_checked_at so the next pass waits
-- p_recheck_seconds). Orders older than a day are no longer looked at.
CREATE FUNCTION payment_reconcile_claim(p_age_seconds integer, p_recheck_seconds integer,
                                        p_batch integer)
RETURNS TABLE (id uuid, razorpay_order_id text, amount_paise bigint, currency text)
LANGUAGE sql AS $$
    UPDATE payments p SET reconcile_checked_at = now()
    WHERE p.id IN (
        SELECT q.id FROM payments q
        WHERE q.status IN ('created', 'attempted')
          AND q.subscription_id IS NULL
          AND q.created_at <= now() - p_age_seconds * interval '1 second'
          AND q.created_at > now() - interval '1 day'
          AND (q.reconcile_checked_at IS NULL
               OR q.reconcile_checked_at <= now() - p_recheck_seconds * interval '1 second')
        ORDER BY q.created_at
        LIMIT p_batch
        FOR UPDATE SKIP LOCKED)
    RETURNING p.id, p.razorpay_order_id, p.amount_paise, p.currency
$$;

-- Ends the tiers whose paid period is over (back to 'free'), one audit row
-- per user; rows another pass holds are skipped. Returns how many.
CREATE FUNCTION payment_expire_tiers(p_batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n integer;
BEGIN
    WITH expired AS (
        UPDATE users u SET subscription_tier = 'free', subscription_tier_until = NULL
        WHERE u.id IN (
            SELECT x.id FROM users x
            WHERE x.subscription_tier <> 'free' AND x.subscription_tier_until <= now()
            ORDER BY x.subscription_tier_until
            LIMIT p_batch
            FOR UPDATE SKIP LOCKED)
        RETURNING u.id
    ), audited AS (
        INSERT INTO audit_logs (user_id, action, resource_type, resource_id, outcome, details)
        SELECT e.id, 'subscription.tier_expired', 'user', e.id::text, 'success',
               '{"source":"expiry"}'::jsonb
        FROM expired e
        RETURNING 1
    )
    SELECT count(*) INTO n FROM audited;
    RETURN n;
END
$$;

-- A subscription charge (subscription.charged): records the payment of
-- the period, once per Razorpay payment id, captured through
-- payment_settle (audit row, receipt). The tier moves with the
-- subscription itself (payment_subscription_apply). Returns what
-- payment_settle returned, or no row when the charge was already recorded
-- or the subscription is not ours.
CREATE FUNCTION payment_record_charge(
    p_razorpay_subscription_id text, p_razorpay_payment_id text, p_razorpay_order_id text,
    p_amount_paise bigint, p_currency text, p_source text,
    p_ip text, p_user_agent text, p_request_id text)
RETURNS TABLE (changed boolean, status payment_status, receipt json)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    s subscriptions;
    new_id uuid;
BEGIN
    SELECT * INTO s FROM subscriptions WHERE razorpay_subscription_id = p_razorpay_subscription_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- Both unique keys (order id, payment id) make a second delivery a no-op.
    INSERT INTO payments (user_id, subscription_id, razorpay_order_id, razorpay_payment_id,
                          amount_paise, currency, plan, description)
    VALUES (s.user_id, s.id, coalesce(p_razorpay_order_id, 'charge_' || p_razorpay_payment_id),
            p_razorpay_payment_id, p_amount_paise, p_currency, s.plan, 'Subscription ' || s.plan)
    ON CONFLICT DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM payment_settle(new_id, 'captured', p_razorpay_payment_id, NULL, NULL,
                                              p_source, NULL, p_ip, p_user_agent, p_request_id);
END
$$;
