/* Background tasks (core's bl_task_register, one httpd child per host):
 *
 *  - reconciliation: orders still 'created' or 'attempted' after
 *    BeautifulPaymentReconcileAge are settled from Razorpay
 *    (GET /v1/orders/:id/payments), so a lost webhook or a closed browser
 *    never loses a payment. The claim (payment_reconcile_claim, FOR UPDATE
 *    SKIP LOCKED plus a lease stamp) gives each order to one pass on one
 *    host; the settlement is the same forward-only payment_settle as
 *    verify-payment and the webhook, so a race with them changes nothing.
 *  - tier expiry: tiers whose paid period is over go back to 'free'
 *    (payment_expire_tiers, also SKIP LOCKED).
 *
 * Both run outside any request: their own pooled connection, and the
 * receipt goes to the outbox in the settling statement itself. */
#include "payment_private.h"
#include "json.h"

#include <http_log.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_payment);

#define RECONCILE_BATCH 20
#define EXPIRY_BATCH 500

static apr_dbd_prepared_t *statement(server_rec *s, ap_dbd_t *db, const char *label)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, label, APR_HASH_KEY_STRING);

    if (!st)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "mod_beautiful_payment: statement %s is not prepared (migrations "
                     "applied?)", label);
    return st;
}

static const char *column(ap_dbd_t *db, apr_pool_t *p, apr_dbd_row_t *row, int col)
{
    char *value = NULL;

    if (apr_dbd_datum_get(db->driver, row, col, APR_DBD_TYPE_STRING, &value) != APR_SUCCESS
        || !value)
        return NULL;
    return apr_pstrdup(p, value);
}

typedef struct {
    const char *id, *order_id, *currency;
    apr_int64_t amount;
} open_order;

/* Claims the orders due for a look; NULL on a database error. */
static apr_array_header_t *claim_orders(server_rec *s, apr_pool_t *p, ap_dbd_t *db,
                                        const payment_conf *c)
{
    apr_dbd_prepared_t *st = statement(s, db, PAY_SQL_RECONCILE_CLAIM);
    apr_interval_time_t recheck = c->reconcile_interval;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_array_header_t *orders;
    const char *args[3];
    int rv;

    if (!st)
        return NULL;
    if (recheck < apr_time_from_sec(1))
        recheck = apr_time_from_sec(1);
    args[0] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_sec(c->reconcile_age));
    args[1] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_sec(recheck));
    args[2] = apr_itoa(p, RECONCILE_BATCH);
    rv = apr_dbd_pselect(db->driver, p, db->handle, &res, st, 1, 3, args);
    if (rv != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "mod_beautiful_payment: reconcile claim "
                     "failed: %s", apr_dbd_error(db->driver, db->handle, rv));
        return NULL;
    }
    orders = apr_array_make(p, RECONCILE_BATCH, sizeof(open_order));
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        open_order *o = apr_array_push(orders);
        const char *amount = column(db, p, row, 2);
        o->id = column(db, p, row, 0);
        o->order_id = column(db, p, row, 1);
        o->currency = column(db, p, row, 3);
        o->amount = amount ? apr_atoi64(amount) : -1;
    }
    return orders;
}

/* What Razorpay's payments of an order say about it: the best of
 * captured > authorized > failed > attempted, for payments that match
 * the order's amount and currency. */
typedef struct {
    const char *status;             /* NULL: nothing to change */
    const char *payment_id;
    const char *failure;
} order_outcome;

static void judge_payments(json_object *list, const open_order *o, order_outcome *out)
{
    static const char *const rank[] = {"attempted", "failed", "authorized", "captured", NULL};
    json_object *items = NULL;
    int best = -1, i, j, n;

    memset(out, 0, sizeof *out);
    if (!json_object_object_get_ex(list, "items", &items)
        || !json_object_is_type(items, json_type_array))
        return;
    n = (int)json_object_array_length(items);
    for (i = 0; i < n; i++) {
        json_object *pay = json_object_array_get_idx(items, (size_t)i);
        const char *status = rzp_string(pay, "status"), *id = rzp_string(pay, "id");
        const char *currency = rzp_string(pay, "currency");
        int level = 0;       /* any payment at all: the order was attempted */

        if (!status || !payment_valid_rzp_id(id) || !currency)
            continue;
        if (rzp_int(pay, "amount") == o->amount && strcmp(currency, o->currency) == 0)
            for (j = 1; rank[j]; j++)
                if (strcmp(status, rank[j]) == 0)
                    level = j;
        if (level > best) {
            best = level;
            out->status = rank[level];
            out->payment_id = level > 0 ? id : NULL;
            out->failure = level == 1 ? rzp_string(pay, "error_description") : NULL;
        }
    }
}

/* Captures an authorized payment (accounts without automatic capture). */
static int capture(apr_pool_t *p, server_rec *s, const payment_conf *c, const open_order *o,
                   const char *payment_id)
{
    json_object *body = json_object_new_object(), *answer;
    rzp_outcome outcome;

    json_object_object_add(body, "amount", json_object_new_int64(o->amount));
    json_object_object_add(body, "currency", json_object_new_string(o->currency));
    outcome = rzp_call(p, s, NULL, c, "POST",
                       apr_pstrcat(p, "/v1/payments/", payment_id, "/capture", NULL), body,
                       &answer);
    json_object_put(body);
    return outcome == RZP_OK && rzp_string(answer, "status")
           && strcmp(rzp_string(answer, "status"), "captured") == 0;
}

static void settle(server_rec *s, apr_pool_t *p, ap_dbd_t *db, const open_order *o,
                   const order_outcome *out)
{
    apr_dbd_prepared_t *st = statement(s, db, PAY_SQL_SETTLE_TASK);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[5];
    int rv;

    if (!st)
        return;
    args[0] = o->id;
    args[1] = out->status;
    args[2] = out->payment_id;
    args[3] = out->status && strcmp(out->status, "failed") == 0
                  ? (out->failure ? out->failure : "failed") : NULL;
    args[4] = "reconcile";
    rv = apr_dbd_pselect(db->driver, p, db->handle, &res, st, 1, 5, args);
    if (rv != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "mod_beautiful_payment: settling payment %s "
                     "failed: %s", o->id, apr_dbd_error(db->driver, db->handle, rv));
        return;
    }
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        const char *changed = column(db, p, row, 0);
        if (changed && strcmp(changed, "true") == 0)
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "mod_beautiful_payment: "
                         "reconciliation moved payment %s to %s", o->id, out->status);
    }
}

void payment_reconcile_task(server_rec *s, void *data, apr_pool_t *pool)
{
    const payment_conf *c = payment_server_config(s);
    apr_array_header_t *orders;
    ap_dbd_t *db;
    int i;

    if (!payment_configured(c) || !(db = bl_db_open(pool, s)))
        return;
    orders = claim_orders(s, pool, db, c);
    for (i = 0; orders && i < orders->nelts; i++) {
        const open_order *o = &((const open_order *)orders->elts)[i];
        order_outcome out;
        json_object *list;
        rzp_outcome outcome;

        if (!o->id || !payment_valid_rzp_id(o->order_id))
            continue;
        outcome = rzp_call(pool, s, NULL, c, "GET",
                           apr_pstrcat(pool, "/v1/orders/", o->order_id, "/payments", NULL),
                           NULL, &list);
        if (outcome == RZP_UNAVAILABLE)
            break;         /* the claimed rest is looked at again after the lease */
        if (outcome != RZP_OK)
            continue;
        judge_payments(list, o, &out);
        if (out.status && strcmp(out.status, "authorized") == 0
            && capture(pool, s, c, o, out.payment_id))
            out.status = "captured";
        if (out.status)
            settle(s, pool, db, o, &out);
    }
    bl_db_close(s, db);
}

void payment_expiry_task(server_rec *s, void *data, apr_pool_t *pool)
{
    ap_dbd_t *db = bl_db_open(pool, s);
    apr_dbd_prepared_t *st;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[1];
    int rv;

    if (!db)
        return;
    if ((st = statement(s, db, PAY_SQL_EXPIRE)) != NULL) {
        args[0] = apr_itoa(pool, EXPIRY_BATCH);
        rv = apr_dbd_pselect(db->driver, pool, db->handle, &res, st, 1, 1, args);
        if (rv != 0)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_beautiful_payment: tier expiry "
                         "failed: %s", apr_dbd_error(db->driver, db->handle, rv));
        else
            while (apr_dbd_get_row(db->driver, pool, res, &row, -1) == 0)
                ;
    }
    bl_db_close(s, db);
}
