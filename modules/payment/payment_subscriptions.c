/* POST /payments/subscriptions, GET /payments/subscriptions/current and
 * POST /payments/subscriptions/cancel.
 *
 * A subscription is made at Razorpay (POST /v1/subscriptions with the
 * plan's Razorpay plan id) and paid through Checkout; from then on its
 * life (activation, renewals, pending, halts, cancellation) arrives by
 * webhook. One live subscription per user (a unique index). */
#include "payment_private.h"
#include "json.h"
#include "uuid.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_payment);

/* The live subscription of the user (locked when in a transaction):
 * 1 found (*id, *rzp_id set), 0 none, -1 after answering. */
static int live_subscription(request_rec *r, ap_dbd_t *db, const bl_user *user,
                             const char **id, const char **rzp_id)
{
    const char *args[1] = {user->id};
    apr_dbd_results_t *res = bl_db_select(r, db, PAY_SQL_SUB_LIVE, 1, args);
    apr_dbd_row_t *row;

    if (!res)
        return -1;
    if (!(row = payment_first_row(r, db, res)))
        return 0;
    *id = bl_db_get(r, db, row, 0);
    *rzp_id = bl_db_get(r, db, row, 1);
    return 1;
}

static const char *read_plan_code(request_rec *r, json_object *body)
{
    const char *code = NULL, *err = NULL;

    if (bl_json_get_string(r->pool, body, "plan", BL_REQUIRED, 1, 50, &code, &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "plan", err), NULL;
    return code;
}

int payment_subscribe(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"plan", NULL};
    const payment_conf *c;
    const payment_plan *plan;
    const bl_user *user;
    json_object *body, *req, *notes, *sub;
    const char *code, *id, *rzp_id = NULL, *live_id, *live_rzp, *args[6];
    ap_dbd_t *db;
    rzp_outcome outcome;
    int live;

    if (!(c = payment_require_config(r, 0)) || !(user = bl_require_user(r))
        || !(body = bl_read_json(r)) || payment_refuse_unknown(r, body, allowed) != 0
        || !(code = read_plan_code(r, body)))
        return OK;
    if (!(plan = payment_find_plan(c, code)))
        return bl_send_validation_error(r, "plan", "plan is not one of GET /payments/plans");
    if (!plan->razorpay_plan_id)
        return bl_send_validation_error(r, "plan", "plan is a one-time product: use "
                                        "POST /payments/create-order");
    if (!(db = bl_db(r)) || (live = live_subscription(r, db, user, &live_id, &live_rzp)) < 0)
        return OK;
    if (live)
        return bl_send_error(r, HTTP_CONFLICT, "SUBSCRIPTION_EXISTS",
                             "you already have a subscription: cancel it first", NULL);
    if (!(id = bl_uuid_v4(r->pool)))
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL,
                             "could not create an id", NULL);

    req = json_object_new_object();
    notes = json_object_new_object();
    json_object_object_add(req, "plan_id", json_object_new_string(plan->razorpay_plan_id));
    json_object_object_add(req, "total_count", json_object_new_int(plan->billing_cycles));
    json_object_object_add(req, "quantity", json_object_new_int(1));
    json_object_object_add(req, "customer_notify", json_object_new_int(1));
    json_object_object_add(notes, "subscription_id", json_object_new_string(id));
    json_object_object_add(notes, "user_id", json_object_new_string(user->id));
    json_object_object_add(notes, "plan", json_object_new_string(plan->code));
    json_object_object_add(req, "notes", notes);
    outcome = rzp_call(r->pool, r->server, bl_traceparent(r), c, "POST", "/v1/subscriptions", req, &sub);
    json_object_put(req);
    if (outcome != RZP_OK)
        return payment_send_provider_error(r, outcome);
    rzp_id = rzp_string(sub, "id");
    if (!payment_valid_rzp_id(rzp_id))
        return payment_send_provider_error(r, RZP_BAD_ANSWER);

    args[0] = id;
    args[1] = user->id;
    args[2] = plan->code;
    args[3] = plan->tier;
    args[4] = plan->razorpay_plan_id;
    args[5] = rzp_id;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if (bl_db_exec(r, db, PAY_SQL_SUB_INSERT, 6, args) < 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_audit(r, db, user->id, "subscription.created", "subscription", id, "success",
                 apr_psprintf(r->pool, "{\"plan\":%s,\"razorpay_subscription_id\":%s}",
                              bl_json_quote(r->pool, plan->code),
                              bl_json_quote(r->pool, rzp_id))) != 0) {
        bl_db_rollback(r, db);
        return bl_send_unavailable(r, "database");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    {
        json_object *o = json_object_new_object();
        const char *short_url = rzp_string(sub, "short_url");
        int rv;

        json_object_object_add(o, "subscription_id", json_object_new_string(id));
        json_object_object_add(o, "razorpay_subscription_id", json_object_new_string(rzp_id));
        json_object_object_add(o, "key_id", json_object_new_string(c->key_id));
        json_object_object_add(o, "plan", json_object_new_string(plan->code));
        json_object_object_add(o, "name", json_object_new_string(plan->name));
        json_object_object_add(o, "amount", json_object_new_int64(plan->amount));
        json_object_object_add(o, "currency", json_object_new_string(plan->currency));
        json_object_object_add(o, "status", json_object_new_string("created"));
        if (short_url)
            json_object_object_add(o, "short_url", json_object_new_string(short_url));
        rv = bl_send_object(r, HTTP_CREATED, "subscription created", o);
        json_object_put(o);
        return rv;
    }
}

int payment_subscription_current(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    const char *args[1], *json = NULL;
    ap_dbd_t *db;

    if (!payment_require_config(r, 0) || !(user = bl_require_user(r)) || !(db = bl_db(r)))
        return OK;
    args[0] = user->id;
    if (bl_db_value(r, db, PAY_SQL_SUB_CURRENT, 1, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no subscription", NULL);
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}

int payment_subscription_cancel(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"at_period_end", NULL};
    const payment_conf *c;
    const bl_user *user;
    json_object *body, *req, *answer;
    const char *err = NULL, *id = NULL, *rzp_id = NULL, *args[2], *json = NULL;
    ap_dbd_t *db;
    rzp_outcome outcome;
    int at_end = 0, live;

    if (!(c = payment_require_config(r, 0)) || !(user = bl_require_user(r))
        || !(body = bl_read_json(r)) || payment_refuse_unknown(r, body, allowed) != 0)
        return OK;
    if (bl_json_get_bool(r->pool, body, "at_period_end", BL_REQUIRED, &at_end, &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "at_period_end", err);
    if (!(db = bl_db(r)) || (live = live_subscription(r, db, user, &id, &rzp_id)) < 0)
        return OK;
    if (!live || !rzp_id)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no live subscription", NULL);

    req = json_object_new_object();
    json_object_object_add(req, "cancel_at_cycle_end", json_object_new_int(at_end ? 1 : 0));
    outcome = rzp_call(r->pool, r->server, bl_traceparent(r), c, "POST",
                       apr_pstrcat(r->pool, "/v1/subscriptions/", rzp_id, "/cancel", NULL),
                       req, &answer);
    json_object_put(req);
    if (outcome != RZP_OK)
        return payment_send_provider_error(r, outcome);

    args[0] = id;
    args[1] = user->id;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if (at_end) {
        /* Razorpay ends it at the cycle's end and tells us by webhook. */
        if (bl_db_exec(r, db, PAY_SQL_SUB_SET_CANCEL_END, 2, args) < 0) {
            bl_db_rollback(r, db);
            return OK;
        }
        if (bl_audit(r, db, user->id, "subscription.cancel_requested", "subscription", id,
                     "success", "{\"at_period_end\":true}") != 0) {
            bl_db_rollback(r, db);
            return bl_send_unavailable(r, "database");
        }
    } else if (payment_subscription_in_request(r, db, rzp_id, "cancelled", -1, -1, -1,
                                               "cancel") < 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    if (bl_db_value(r, db, PAY_SQL_SUB_JSON, 2, args, &json) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_OK,
                        at_end ? "the subscription ends with the current period"
                               : "subscription cancelled",
                        json, NULL);
}
