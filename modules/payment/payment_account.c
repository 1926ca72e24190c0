/* The optional hook "bl_account_deleted" of mod_beautiful_auth: before an
 * account goes, its live subscription is cancelled at Razorpay, so nobody
 * is billed for an account that no longer exists. Billing records stay
 * (detached: user_id becomes NULL). Runs inside the deletion's transaction;
 * a result other than OK aborts the deletion with 503, so when Razorpay
 * cannot be reached the account stays and the user can try again. */
#include "payment_private.h"
#include "json.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_payment);

/* The live subscription's Razorpay id, "" when none, NULL on a database
 * error (logged). Answers nothing: the caller owns the answer. */
static const char *live_razorpay_id(request_rec *r, ap_dbd_t *db, const char *user_id)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, PAY_SQL_SUB_LIVE, APR_HASH_KEY_STRING);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[1] = {user_id}, *id = "";
    char *value = NULL;
    int rv;

    if (!st)
        return NULL;
    rv = apr_dbd_pselect(db->driver, r->pool, db->handle, &res, st, 1, 1, args);
    if (rv != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_beautiful_payment: live subscription "
                      "lookup failed: %s", apr_dbd_error(db->driver, db->handle, rv));
        return NULL;
    }
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0)
        if (apr_dbd_datum_get(db->driver, row, 1, APR_DBD_TYPE_STRING, &value) == APR_SUCCESS
            && value)
            id = apr_pstrdup(r->pool, value);
    return id;
}

static int mark_cancelled(request_rec *r, ap_dbd_t *db, const char *rzp_id)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, PAY_SQL_SUB_APPLY, APR_HASH_KEY_STRING);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[10] = {rzp_id, "cancelled", NULL, NULL, NULL, "account_deleted",
                            NULL, NULL, NULL, NULL};
    int rv;

    args[7] = bl_client_ip(r);
    args[8] = bl_user_agent(r);
    args[9] = apr_table_get(r->subprocess_env, "BL_REQUEST_ID");
    if (!st)
        return -1;
    rv = apr_dbd_pselect(db->driver, r->pool, db->handle, &res, st, 1, 10, args);
    if (rv != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_beautiful_payment: cancelling the "
                      "subscription failed: %s", apr_dbd_error(db->driver, db->handle, rv));
        return -1;
    }
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0)
        ;
    return 0;
}

int payment_account_deleted(request_rec *r, ap_dbd_t *db, const char *user_id)
{
    const payment_conf *c = payment_config(r);
    const char *rzp_id = live_razorpay_id(r, db, user_id);
    json_object *body, *answer;
    rzp_outcome outcome;

    if (!rzp_id)
        return HTTP_SERVICE_UNAVAILABLE;
    if (!*rzp_id)
        return OK;
    if (!payment_configured(c)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_beautiful_payment: an account with a "
                      "live subscription cannot be deleted while Razorpay is not configured");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    body = json_object_new_object();
    json_object_object_add(body, "cancel_at_cycle_end", json_object_new_int(0));
    outcome = rzp_call(r->pool, r->server, bl_traceparent(r), c, "POST",
                       apr_pstrcat(r->pool, "/v1/subscriptions/", rzp_id, "/cancel", NULL),
                       body, &answer);
    json_object_put(body);
    /* A refusal is a subscription Razorpay no longer bills (already
     * cancelled or completed): the account may go. */
    if (outcome == RZP_UNAVAILABLE || outcome == RZP_BAD_ANSWER)
        return HTTP_SERVICE_UNAVAILABLE;
    return mark_cancelled(r, db, rzp_id) == 0 ? OK : HTTP_SERVICE_UNAVAILABLE;
}
