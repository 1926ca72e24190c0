/* POST /payments/webhook — Razorpay's deliveries.
 *
 * Public, but nothing is believed or stored before the X-Razorpay-Signature
 * (HMAC-SHA256 of the raw body with the webhook secret) checks out. Each
 * event is stored once by its X-Razorpay-Event-Id, in the same transaction
 * as what it changes, so a redelivery answers 200 and changes nothing, and
 * a failure rolls back to "not received" for Razorpay to retry. Statuses
 * only move forward (payment_settle, payment_subscription_apply). */
#include "payment_private.h"
#include "json.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_payment);

#define SIGNATURE_HEADER "X-Razorpay-Signature"
#define EVENT_ID_HEADER "X-Razorpay-Event-Id"

/* Our payment for the event's payment (by its order), with amount and
 * currency; NULL when it is not ours (subscription charges, other shops
 * on the same account). -1 in *failed after answering. */
static const char *our_payment(request_rec *r, ap_dbd_t *db, const char *label,
                               const char *key, const char **amount, const char **currency,
                               int *failed)
{
    const char *args[1] = {key};
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;

    *failed = 0;
    if (!key)
        return NULL;
    if (!(res = bl_db_select(r, db, label, 1, args))) {
        *failed = 1;
        return NULL;
    }
    if (!(row = payment_first_row(r, db, res)))
        return NULL;
    *amount = bl_db_get(r, db, row, 1);
    *currency = bl_db_get(r, db, row, 2);
    return bl_db_get(r, db, row, 0);
}

/* payment.authorized / .captured / .failed and order.paid. */
static int apply_payment_event(request_rec *r, ap_dbd_t *db, const bl_webhook_event *ev,
                               const char *status)
{
    const char *amount = NULL, *currency = NULL, *id;
    const char *order = ev->payment_order_id ? ev->payment_order_id : ev->order_id;
    int failed;

    id = our_payment(r, db, PAY_SQL_BY_ORDER, order, &amount, &currency, &failed);
    if (failed)
        return -1;
    if (!id || !ev->payment_id)
        return 0;
    /* Money is taken only for what we asked. */
    if (strcmp(status, "failed") != 0
        && (ev->payment_amount != apr_atoi64(amount) || !ev->payment_currency
            || strcmp(ev->payment_currency, currency) != 0)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "mod_beautiful_payment: webhook %s for payment %s: amount or currency "
                      "differ from the order; not applied", ev->event, id);
        payment_audit(r, db, "payment.webhook_mismatch", "payment", id, "denied",
                      apr_psprintf(r->pool, "{\"event\":%s}", bl_json_quote(r->pool, ev->event)));
        return 0;
    }
    return payment_settle_in_request(r, db, id, status, ev->payment_id, NULL,
                                     strcmp(status, "failed") == 0
                                         ? (ev->payment_error ? ev->payment_error : "failed")
                                         : NULL,
                                     "webhook");
}

static int apply_refund(request_rec *r, ap_dbd_t *db, const bl_webhook_event *ev)
{
    const char *amount = NULL, *currency = NULL, *id;
    int failed;

    id = our_payment(r, db, PAY_SQL_BY_RZP_PAYMENT, ev->refund_payment_id, &amount, &currency,
                     &failed);
    if (failed)
        return -1;
    /* A partial refund leaves the purchase in place. */
    if (!id || ev->refund_amount < apr_atoi64(amount))
        return 0;
    return payment_settle_in_request(r, db, id, "refunded", NULL, NULL, NULL, "webhook");
}

static int apply_subscription_event(request_rec *r, ap_dbd_t *db, const bl_webhook_event *ev,
                                    const char *status)
{
    const char *args[9];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    const char *changed, *user;
    int rv;

    if (!ev->subscription_id)
        return 0;
    rv = payment_subscription_in_request(r, db, ev->subscription_id, status,
                                         ev->subscription_start, ev->subscription_end,
                                         ev->created_at, "webhook");
    if (rv < 0 || strcmp(ev->event, "subscription.charged") != 0 || !ev->payment_id
        || ev->payment_amount <= 0 || !ev->payment_currency)
        return rv;
    /* The period's payment: recorded once, with its receipt. */
    args[0] = ev->subscription_id;
    args[1] = ev->payment_id;
    args[2] = ev->payment_order_id;
    args[3] = apr_psprintf(r->pool, "%" APR_INT64_T_FMT, (apr_int64_t)ev->payment_amount);
    args[4] = ev->payment_currency;
    args[5] = "webhook";
    args[6] = bl_client_ip(r);
    args[7] = bl_user_agent(r);
    args[8] = apr_table_get(r->subprocess_env, "BL_REQUEST_ID");
    if (!(res = bl_db_select(r, db, PAY_SQL_CHARGE, 9, args)))
        return -1;
    if (!(row = payment_first_row(r, db, res)))
        return rv;
    changed = bl_db_get(r, db, row, 0);
    user = bl_db_get(r, db, row, 2);
    if (changed && strcmp(changed, "true") == 0 && user
        && bl_outbox_add(r, db, user, "email", "payment.receipt", bl_db_get(r, db, row, 3),
                         bl_db_get(r, db, row, 4), bl_db_get(r, db, row, 5)) != 0)
        return bl_send_unavailable(r, "database"), -1;
    return 1;
}

/* Applies the event; returns 1 changed, 0 nothing to change (unknown
 * event, not ours, not forward), -1 after answering. */
static int apply_event(request_rec *r, ap_dbd_t *db, const bl_webhook_event *ev)
{
    static const struct {
        const char *event;
        const char *status;
        int subscription;
    } map[] = {
        {"payment.authorized", "authorized", 0},
        {"payment.captured", "captured", 0},
        {"payment.failed", "failed", 0},
        {"order.paid", "captured", 0},
        {"subscription.authenticated", "authenticated", 1},
        {"subscription.activated", "active", 1},
        {"subscription.charged", "active", 1},
        {"subscription.pending", "pending", 1},
        {"subscription.halted", "halted", 1},
        {"subscription.cancelled", "cancelled", 1},
        {"subscription.completed", "completed", 1},
        {NULL, NULL, 0}
    };
    int i;

    if (strcmp(ev->event, "refund.processed") == 0)
        return apply_refund(r, db, ev);
    for (i = 0; map[i].event; i++)
        if (strcmp(ev->event, map[i].event) == 0)
            return map[i].subscription ? apply_subscription_event(r, db, ev, map[i].status)
                                       : apply_payment_event(r, db, ev, map[i].status);
    return 0;
}

static int send_result(request_rec *r, const char *event_id, const char *result)
{
    return bl_send_data(r, HTTP_OK, NULL,
                        apr_psprintf(r->pool, "{\"event_id\":%s,\"result\":\"%s\"}",
                                     bl_json_quote(r->pool, event_id), result),
                        NULL);
}

int payment_webhook(request_rec *r, apr_table_t *params)
{
    const payment_conf *c;
    const char *body = NULL, *sig, *event_id, *err = NULL, *args[3], *stored = NULL;
    apr_size_t len = 0;
    bl_webhook_event ev;
    apr_dbd_results_t *res;
    ap_dbd_t *db;
    int rv;

    if (!(c = payment_require_config(r, 1)))
        return OK;
    if (bl_read_body(r, BL_WEBHOOK_MAX_BODY, &body, &len) != 0)
        return OK;
    sig = apr_table_get(r->headers_in, SIGNATURE_HEADER);
    if (!sig || !payment_signature_ok(c->webhook_secret, body, len, sig)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "mod_beautiful_payment: webhook with a missing or bad signature refused");
        return bl_send_error(r, HTTP_BAD_REQUEST, "INVALID_SIGNATURE",
                             "the webhook signature is not valid", "header: " SIGNATURE_HEADER);
    }
    event_id = apr_table_get(r->headers_in, EVENT_ID_HEADER);
    if (!event_id || !*event_id || strlen(event_id) > 100 || !payment_valid_rzp_id(event_id))
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                             "the event id header is missing or malformed",
                             "header: " EVENT_ID_HEADER);
    if (bl_webhook_event_parse(r->pool, body, len, &ev, &err) != 0)
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_MALFORMED_JSON, err, NULL);
    if (!(db = bl_db(r)) || bl_db_begin(r, db) != 0)
        return OK;
    args[0] = event_id;
    args[1] = ev.event;
    args[2] = apr_pstrmemdup(r->pool, body, len);
    if (!(res = bl_db_select(r, db, PAY_SQL_EVENT_INSERT, 3, args))) {
        bl_db_rollback(r, db);
        return OK;
    }
    {
        apr_dbd_row_t *row = payment_first_row(r, db, res);
        stored = row ? bl_db_get(r, db, row, 0) : NULL;
    }
    if (!stored) {
        bl_db_rollback(r, db);
        return send_result(r, event_id, "duplicate");
    }
    if ((rv = apply_event(r, db, &ev)) < 0
        || bl_db_exec(r, db, PAY_SQL_EVENT_DONE, 1, args) < 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return send_result(r, event_id, rv > 0 ? "applied" : "ignored");
}
