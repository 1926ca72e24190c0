/* Every SQL statement of mod_beautiful_payment, prepared at start-up.
 * Arguments are text (apr_dbd %s) and cast here; JSON answers are built by
 * PostgreSQL. State changes go through the functions of
 * sql/migrations/0007_payments.sql (forward-only, audited, locked). Every
 * statement a user reaches names the user in its WHERE clause. */
#include "payment_private.h"

#define TS(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* What payment_settle returns, flattened for C: changed, status, and the
 * receipt's user, title, body and data. */
#define SETTLE_COLUMNS \
    "SELECT s.changed::text, s.status::text, s.receipt->>'user_id', s.receipt->>'title', " \
    "s.receipt->>'body', (s.receipt->'data')::text"

const bl_statement payment_statements[] = {
    /* id, user, order, amount, currency, plan, tier, days, description,
     * notes, idempotency key: a concurrent retry with the same key loses
     * the race quietly (no row) and reads the winner's order. */
    {PAY_SQL_ORDER_INSERT,
     "INSERT INTO payments (id, user_id, razorpay_order_id, amount_paise, currency, plan, tier, "
     "access_days, description, notes, idempotency_key) VALUES (%s::uuid, %s::uuid, %s, "
     "%s::bigint, %s, %s, %s, %s::int, %s, %s::jsonb, %s) "
     "ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"},
    /* user, key */
    {PAY_SQL_ORDER_BY_KEY,
     "SELECT id, razorpay_order_id, amount_paise::text, currency, plan FROM payments "
     "WHERE user_id = %s::uuid AND idempotency_key = %s"},
    /* order id, user: only the user who created the order verifies it. */
    {PAY_SQL_FOR_VERIFY,
     "SELECT id, amount_paise::text, currency, status::text, razorpay_payment_id "
     "FROM payments WHERE razorpay_order_id = %s AND user_id = %s::uuid "
     "AND subscription_id IS NULL"},
    /* payment id, user */
    {PAY_SQL_JSON,
     "SELECT payment_json(p) FROM payments p WHERE p.id = %s::uuid AND p.user_id = %s::uuid"},
    /* user, limit, offset */
    {PAY_SQL_HISTORY,
     "SELECT (SELECT count(*) FROM payments WHERE user_id = %s::uuid), "
     "coalesce((SELECT json_agg(payment_json(p) ORDER BY p.created_at DESC, p.id) FROM "
     "(SELECT * FROM payments WHERE user_id = %s::uuid ORDER BY created_at DESC, id "
     "LIMIT %s::int OFFSET %s::int) p), '[]'::json)"},
    /* id, status, razorpay payment id, signature, failure, source, actor,
     * ip, user agent, request id */
    {PAY_SQL_SETTLE,
     SETTLE_COLUMNS " FROM payment_settle(%s::uuid, %s::payment_status, %s, %s, %s, %s, "
     "%s::uuid, %s, %s, %s) s"},
    /* The same for background tasks, with the receipt put in the outbox by
     * the same statement (there is no request for bl_outbox_add). */
    {PAY_SQL_SETTLE_TASK,
     "WITH s AS (SELECT * FROM payment_settle(%s::uuid, %s::payment_status, %s, NULL, %s, "
     "%s, NULL, NULL, NULL, NULL)), "
     "o AS (INSERT INTO notifications (user_id, channel, type, title, body, data) "
     "SELECT (s.receipt->>'user_id')::uuid, 'email', 'payment.receipt', s.receipt->>'title', "
     "s.receipt->>'body', (s.receipt->'data')::jsonb FROM s WHERE s.receipt IS NOT NULL) "
     "SELECT s.changed::text, s.status::text FROM s"},
    /* order id -> our payment (webhooks: Razorpay is the caller) */
    {PAY_SQL_BY_ORDER,
     "SELECT id, amount_paise::text, currency FROM payments WHERE razorpay_order_id = %s"},
    {PAY_SQL_BY_RZP_PAYMENT,
     "SELECT id, amount_paise::text, currency FROM payments WHERE razorpay_payment_id = %s"},
    /* event id, type, payload: no row when it was delivered before */
    {PAY_SQL_EVENT_INSERT,
     "INSERT INTO payment_webhook_events (event_id, event_type, payload) "
     "VALUES (%s, %s, %s::jsonb) ON CONFLICT (event_id) DO NOTHING RETURNING event_id"},
    {PAY_SQL_EVENT_DONE,
     "UPDATE payment_webhook_events SET processed_at = now() WHERE event_id = %s"},
    /* id, user, plan, tier, razorpay plan, razorpay subscription */
    {PAY_SQL_SUB_INSERT,
     "INSERT INTO subscriptions (id, user_id, plan, tier, razorpay_plan_id, "
     "razorpay_subscription_id) VALUES (%s::uuid, %s::uuid, %s, %s, %s, %s)"},
    /* user: the live subscription, locked */
    {PAY_SQL_SUB_LIVE,
     "SELECT id, razorpay_subscription_id, status::text FROM subscriptions "
     "WHERE user_id = %s::uuid AND status IN ('authenticated', 'active', 'pending', 'halted') "
     "FOR UPDATE"},
    /* user: the live subscription, else the newest one; with the tier */
    {PAY_SQL_SUB_CURRENT,
     "SELECT json_build_object('subscription', payment_subscription_json(s), "
     "'subscription_tier', u.subscription_tier, "
     "'subscription_tier_until', " TS("u.subscription_tier_until") ") "
     "FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE s.user_id = %s::uuid "
     "ORDER BY s.status IN ('authenticated', 'active', 'pending', 'halted') DESC, "
     "s.created_at DESC LIMIT 1"},
    /* razorpay subscription id, user */
    {PAY_SQL_SUB_FOR_VERIFY,
     "SELECT id, status::text FROM subscriptions "
     "WHERE razorpay_subscription_id = %s AND user_id = %s::uuid"},
    /* razorpay subscription id, status, period start, period end, event
     * time, source, actor, ip, user agent, request id */
    {PAY_SQL_SUB_APPLY,
     "SELECT s.changed::text, s.status::text, s.user_id, s.notice->>'title', "
     "s.notice->>'body', (s.notice->'data')::text "
     "FROM payment_subscription_apply(%s, %s::subscription_status, %s::timestamptz, "
     "%s::timestamptz, %s::timestamptz, %s, %s::uuid, %s, %s, %s) s"},
    /* id, user */
    {PAY_SQL_SUB_SET_CANCEL_END,
     "UPDATE subscriptions SET cancel_at_period_end = true "
     "WHERE id = %s::uuid AND user_id = %s::uuid"},
    {PAY_SQL_SUB_JSON,
     "SELECT payment_subscription_json(s) FROM subscriptions s "
     "WHERE s.id = %s::uuid AND s.user_id = %s::uuid"},
    /* razorpay subscription, payment id, order id, amount, currency,
     * source, ip, user agent, request id */
    {PAY_SQL_CHARGE,
     SETTLE_COLUMNS " FROM payment_record_charge(%s, %s, %s, %s::bigint, %s, %s, %s, %s, %s) s"},
    {PAY_SQL_TIER_JSON,
     "SELECT json_build_object('subscription_tier', subscription_tier, "
     "'subscription_tier_until', " TS("subscription_tier_until") ") "
     "FROM users WHERE id = %s::uuid"},
    /* age seconds, recheck seconds, batch */
    {PAY_SQL_RECONCILE_CLAIM,
     "SELECT id::text, razorpay_order_id, amount_paise::text, currency "
     "FROM payment_reconcile_claim(%s::int, %s::int, %s::int)"},
    {PAY_SQL_EXPIRE, "SELECT payment_expire_tiers(%s::int)::text"},
    {NULL, NULL}
};
