/* What the routes share: the configuration gate, input rules, and the
 * calls into the state functions of 0007_payments.sql with their outbox
 * rows. */
#include "payment_private.h"
#include "json.h"

#include <http_log.h>
#include <http_protocol.h>
#include <util_time.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_payment);

const payment_conf *payment_require_config(request_rec *r, int webhook)
{
    const payment_conf *c = payment_config(r);

    if (!payment_configured(c) || (webhook && !(c->webhook_secret && *c->webhook_secret)))
        return bl_send_error(r, HTTP_SERVICE_UNAVAILABLE, "PAYMENTS_NOT_CONFIGURED",
                             "payments are not configured on this server", NULL),
               NULL;
    return c;
}

int payment_refuse_unknown(request_rec *r, json_object *obj, const char *const *allowed)
{
    const char *unknown = bl_json_unknown_field(obj, allowed);

    if (!unknown)
        return 0;
    if (strstr(unknown, "amount") || strcmp(unknown, "price") == 0
        || strcmp(unknown, "currency") == 0)
        bl_send_validation_error(r, unknown,
                                 apr_pstrcat(r->pool, unknown, " is set by the server: name a "
                                             "plan (GET /api/v1/payments/plans)", NULL));
    else
        bl_send_validation_error(r, unknown, apr_pstrcat(r->pool, "unknown field: ", unknown,
                                                         NULL));
    return -1;
}

int payment_valid_rzp_id(const char *s)
{
    size_t n = 0;

    for (; s && s[n]; n++)
        if (!(apr_isalnum(s[n]) || s[n] == '_'))
            return 0;
    return n >= 1 && n <= 100;
}

apr_dbd_row_t *payment_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res)
{
    apr_dbd_row_t *row = NULL;

    if (!res || apr_dbd_get_row(db->driver, r->pool, res, &row, -1) != 0)
        return NULL;
    return row;
}

void payment_audit(request_rec *r, ap_dbd_t *db, const char *action, const char *type,
                   const char *id, const char *outcome, const char *details_json)
{
    if (bl_audit(r, db, NULL, action, type, id, outcome, details_json) != 0)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "mod_beautiful_payment: audit row %s not written", action);
}

const char *payment_unix_ts(apr_pool_t *p, apr_int64_t t)
{
    return t < 0 ? NULL : ap_ht_time(p, apr_time_from_sec(t), "%Y-%m-%dT%H:%M:%SZ", 1);
}

/* The request's audit context: actor, IP, user agent, request id. */
static void request_context(request_rec *r, const char **args)
{
    const bl_user *u = bl_current_user(r);

    args[0] = u ? u->id : NULL;
    args[1] = bl_client_ip(r);
    args[2] = bl_user_agent(r);
    args[3] = apr_table_get(r->subprocess_env, "BL_REQUEST_ID");
}

/* Payment and subscription state changes on /metrics. The states come
 * from a fixed set (the state machine's), never from a request. */
static const char *const counted_events[] = {
    "authorized", "captured", "failed", "refunded",
    "subscription_authenticated", "subscription_active", "subscription_pending",
    "subscription_halted", "subscription_cancelled", "subscription_completed",
    "subscription_expired", NULL
};

void payment_count_event(const char *event)
{
    char series[80];
    int i;

    for (i = 0; counted_events[i]; i++) {
        if (!strcmp(counted_events[i], event)) {
            apr_snprintf(series, sizeof series, "beautiful_payments_total{event=\"%s\"}", event);
            bl_metrics_count(series, 1);
            return;
        }
    }
}

void payment_metrics_init(void)
{
    char series[80];
    int i;

    for (i = 0; counted_events[i]; i++) {
        apr_snprintf(series, sizeof series, "beautiful_payments_total{event=\"%s\"}",
                     counted_events[i]);
        bl_metrics_count(series, 0);
    }
}

int payment_settle_in_request(request_rec *r, ap_dbd_t *db, const char *payment_id,
                              const char *status, const char *razorpay_payment_id,
                              const char *signature, const char *failure,
                              const char *source)
{
    const char *args[10];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    const char *changed, *user;

    args[0] = payment_id;
    args[1] = status;
    args[2] = razorpay_payment_id;
    args[3] = signature;
    args[4] = failure;
    args[5] = source;
    request_context(r, args + 6);
    if (!(res = bl_db_select(r, db, PAY_SQL_SETTLE, 10, args)))
        return -1;
    if (!(row = payment_first_row(r, db, res)))
        return 0;
    changed = bl_db_get(r, db, row, 0);
    user = bl_db_get(r, db, row, 2);
    if (!changed || strcmp(changed, "true") != 0)
        return 0;
    payment_count_event(status);
    if (user && bl_outbox_add(r, db, user, "email", "payment.receipt", bl_db_get(r, db, row, 3),
                              bl_db_get(r, db, row, 4), bl_db_get(r, db, row, 5)) != 0)
        return bl_send_unavailable(r, "database"), -1;
    return 1;
}

int payment_subscription_in_request(request_rec *r, ap_dbd_t *db,
                                    const char *razorpay_subscription_id,
                                    const char *status, apr_int64_t period_start,
                                    apr_int64_t period_end, apr_int64_t event_at,
                                    const char *source)
{
    const char *args[10];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    const char *changed, *user, *title;

    args[0] = razorpay_subscription_id;
    args[1] = status;
    args[2] = payment_unix_ts(r->pool, period_start);
    args[3] = payment_unix_ts(r->pool, period_end);
    args[4] = payment_unix_ts(r->pool, event_at);
    args[5] = source;
    request_context(r, args + 6);
    if (!(res = bl_db_select(r, db, PAY_SQL_SUB_APPLY, 10, args)))
        return -1;
    if (!(row = payment_first_row(r, db, res)))
        return 0;
    changed = bl_db_get(r, db, row, 0);
    user = bl_db_get(r, db, row, 2);
    title = bl_db_get(r, db, row, 3);
    if (!changed || strcmp(changed, "true") != 0)
        return 0;
    payment_count_event(apr_pstrcat(r->pool, "subscription_", status, NULL));
    if (user && title
        && bl_outbox_add(r, db, user, "email", "payment.subscription", title,
                         bl_db_get(r, db, row, 4), bl_db_get(r, db, row, 5)) != 0)
        return bl_send_unavailable(r, "database"), -1;
    return 1;
}
