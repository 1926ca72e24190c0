/* GET /payments/plans, POST /payments/create-order and
 * POST /payments/verify-payment: one-time purchases through Razorpay
 * Checkout, and the checkout of a subscription.
 *
 * Prices live on the server: a client names a plan, never an amount. A
 * payment counts only after its checkout signature is valid and the
 * payment fetched from Razorpay matches our order (order, amount,
 * currency, status); the capture and what it buys commit together. */
#include "payment_private.h"
#include "json.h"
#include "uuid.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_payment);

#define IDEMPOTENCY_HEADER "Idempotency-Key"
#define IDEMPOTENCY_MAX 255

int payment_list_plans(request_rec *r, apr_table_t *params)
{
    const payment_conf *c = payment_require_config(r, 0);

    if (!c)
        return OK;
    apr_table_setn(r->headers_out, "Cache-Control", "public, max-age=300");
    apr_table_unset(r->err_headers_out, "Cache-Control");
    return bl_send_data(r, HTTP_OK, NULL, c->plans_json, NULL);
}

/* The plan named by the body's "plan" field, of the kind wanted
 * (subscription or not). NULL after answering 400. */
static const payment_plan *read_plan(request_rec *r, const payment_conf *c, json_object *body,
                                     int subscription)
{
    const char *code = NULL, *err = NULL;
    const payment_plan *plan;

    if (bl_json_get_string(r->pool, body, "plan", BL_REQUIRED, 1, 50, &code, &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "plan", err), NULL;
    if (!(plan = payment_find_plan(c, code)))
        return bl_send_validation_error(r, "plan", "plan is not one of GET /payments/plans"),
               NULL;
    if (subscription && !plan->razorpay_plan_id)
        return bl_send_validation_error(r, "plan", "plan is a one-time product: use "
                                        "POST /payments/create-order"), NULL;
    if (!subscription && plan->razorpay_plan_id)
        return bl_send_validation_error(r, "plan", "plan is a subscription: use "
                                        "POST /payments/subscriptions"), NULL;
    return plan;
}

/* The Idempotency-Key header: absent (NULL, 0), valid (0) or -1 after
 * answering 400. Printable ASCII, 1..255 characters. */
static int read_idempotency_key(request_rec *r, const char **key)
{
    const char *k = apr_table_get(r->headers_in, IDEMPOTENCY_HEADER);
    size_t i, n;

    *key = NULL;
    if (!k)
        return 0;
    n = strlen(k);
    for (i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            break;
    if (n < 1 || n > IDEMPOTENCY_MAX || i != n)
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                             "Idempotency-Key is 1 to 255 printable ASCII characters",
                             "header: Idempotency-Key"), -1;
    *key = k;
    return 0;
}

/* What Razorpay Checkout needs to open the order. */
static int send_checkout(request_rec *r, int status, const payment_conf *c,
                         const payment_plan *plan, const char *payment_id,
                         const char *order_id, const char *amount, const char *currency)
{
    json_object *o = json_object_new_object();
    int rv;

    json_object_object_add(o, "payment_id", json_object_new_string(payment_id));
    json_object_object_add(o, "order_id", json_object_new_string(order_id));
    json_object_object_add(o, "amount", json_object_new_int64(apr_atoi64(amount)));
    json_object_object_add(o, "currency", json_object_new_string(currency));
    json_object_object_add(o, "key_id", json_object_new_string(c->key_id));
    json_object_object_add(o, "plan", json_object_new_string(plan->code));
    json_object_object_add(o, "name", json_object_new_string(plan->name));
    rv = bl_send_object(r, status, status == HTTP_CREATED ? "order created" : "existing order",
                        o);
    json_object_put(o);
    return rv;
}

/* An earlier order made with this Idempotency-Key: answered (1), none
 * (0), or -1 after answering. */
static int replay_order(request_rec *r, ap_dbd_t *db, const payment_conf *c,
                        const payment_plan *plan, const bl_user *user, const char *key)
{
    const char *args[2] = {user->id, key};
    apr_dbd_results_t *res = bl_db_select(r, db, PAY_SQL_ORDER_BY_KEY, 2, args);
    apr_dbd_row_t *row;

    if (!res)
        return -1;
    if (!(row = payment_first_row(r, db, res)))
        return 0;
    if (strcmp(bl_db_get(r, db, row, 4), plan->code) != 0)
        return bl_send_error(r, HTTP_CONFLICT, "IDEMPOTENCY_KEY_REUSED",
                             "this Idempotency-Key was used for another plan", NULL), -1;
    apr_table_setn(r->headers_out, "Idempotent-Replayed", "true");
    send_checkout(r, HTTP_OK, c, plan, bl_db_get(r, db, row, 0), bl_db_get(r, db, row, 1),
                  bl_db_get(r, db, row, 2), bl_db_get(r, db, row, 3));
    return 1;
}

/* POST {BL_RAZORPAY_URL}/v1/orders. Returns the order id or NULL after
 * answering (503 when Razorpay is down: nothing was written). */
static const char *razorpay_order(request_rec *r, const payment_conf *c,
                                  const payment_plan *plan, const bl_user *user,
                                  const char *payment_id)
{
    json_object *body = json_object_new_object(), *notes = json_object_new_object(), *answer;
    const char *order_id;
    rzp_outcome outcome;

    json_object_object_add(body, "amount", json_object_new_int64(plan->amount));
    json_object_object_add(body, "currency", json_object_new_string(plan->currency));
    json_object_object_add(body, "receipt", json_object_new_string(payment_id));
    json_object_object_add(notes, "payment_id", json_object_new_string(payment_id));
    json_object_object_add(notes, "user_id", json_object_new_string(user->id));
    json_object_object_add(notes, "plan", json_object_new_string(plan->code));
    json_object_object_add(body, "notes", notes);
    outcome = rzp_call(r->pool, r->server, bl_traceparent(r), c, "POST", "/v1/orders", body, &answer);
    json_object_put(body);
    if (outcome != RZP_OK)
        return payment_send_provider_error(r, outcome), NULL;
    order_id = rzp_string(answer, "id");
    if (!payment_valid_rzp_id(order_id) || rzp_int(answer, "amount") != plan->amount
        || !rzp_string(answer, "currency")
        || strcmp(rzp_string(answer, "currency"), plan->currency) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_beautiful_payment: Razorpay's order does not match what was asked");
        return payment_send_provider_error(r, RZP_BAD_ANSWER), NULL;
    }
    return order_id;
}

int payment_create_order(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"plan", NULL};
    const payment_conf *c;
    const payment_plan *plan;
    const bl_user *user;
    json_object *body;
    const char *key, *payment_id, *order_id, *args[11];
    ap_dbd_t *db;
    int rows, replayed;

    if (!(c = payment_require_config(r, 0)) || !(user = bl_require_user(r))
        || !(body = bl_read_json(r)) || payment_refuse_unknown(r, body, allowed) != 0
        || !(plan = read_plan(r, c, body, 0)) || read_idempotency_key(r, &key) != 0
        || !(db = bl_db(r)))
        return OK;
    if (key && (replayed = replay_order(r, db, c, plan, user, key)) != 0)
        return OK;
    if (!(payment_id = bl_uuid_v4(r->pool)))
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL,
                             "could not create an id", NULL);
    if (!(order_id = razorpay_order(r, c, plan, user, payment_id)))
        return OK;

    args[0] = payment_id;
    args[1] = user->id;
    args[2] = order_id;
    args[3] = apr_psprintf(r->pool, "%" APR_INT64_T_FMT, plan->amount);
    args[4] = plan->currency;
    args[5] = plan->code;
    args[6] = plan->tier;
    args[7] = apr_itoa(r->pool, plan->access_days);
    args[8] = plan->name;
    args[9] = apr_psprintf(r->pool, "{\"plan\":%s}", bl_json_quote(r->pool, plan->code));
    args[10] = key;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if ((rows = bl_db_exec(r, db, PAY_SQL_ORDER_INSERT, 11, args)) < 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (rows == 0) {
        /* A concurrent request with the same key won: its order is the one. */
        bl_db_rollback(r, db);
        if (replay_order(r, db, c, plan, user, key) == 0)
            return bl_send_unavailable(r, "database");
        return OK;
    }
    if (bl_audit(r, db, user->id, "payment.order_created", "payment", payment_id, "success",
                 apr_psprintf(r->pool, "{\"plan\":%s,\"amount\":%s,\"razorpay_order_id\":%s}",
                              bl_json_quote(r->pool, plan->code), args[3],
                              bl_json_quote(r->pool, order_id))) != 0) {
        bl_db_rollback(r, db);
        return bl_send_unavailable(r, "database");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return send_checkout(r, HTTP_CREATED, c, plan, payment_id, order_id, args[3], plan->currency);
}

/* ---------------------------------------------------------------- verify */

typedef struct {
    const char *order_id;          /* one of order_id ... */
    const char *subscription_id;   /* ... and subscription_id */
    const char *payment_id;
    const char *signature;
} checkout_proof;

static int read_proof(request_rec *r, json_object *body, checkout_proof *pr)
{
    static const char *const allowed[] = {"razorpay_order_id", "razorpay_subscription_id",
                                          "razorpay_payment_id", "razorpay_signature", NULL};
    static const char *const ids[] = {"razorpay_order_id", "razorpay_subscription_id",
                                      "razorpay_payment_id"};
    const char **out[] = {&pr->order_id, &pr->subscription_id, &pr->payment_id};
    const char *err = NULL;
    int i;

    memset(pr, 0, sizeof *pr);
    if (payment_refuse_unknown(r, body, allowed) != 0)
        return -1;
    for (i = 0; i < 3; i++) {
        if (bl_json_get_string(r->pool, body, ids[i], i == 2, 1, 100, out[i], &err)
            == BL_FIELD_INVALID)
            return bl_send_validation_error(r, ids[i], err), -1;
        if (*out[i] && !payment_valid_rzp_id(*out[i]))
            return bl_send_validation_error(r, ids[i], apr_pstrcat(r->pool, ids[i],
                                            " is not a Razorpay id", NULL)), -1;
    }
    if (!pr->order_id == !pr->subscription_id)
        return bl_send_validation_error(r, "razorpay_order_id", "give razorpay_order_id or "
                                        "razorpay_subscription_id (one of them)"), -1;
    if (bl_json_get_string(r->pool, body, "razorpay_signature", BL_REQUIRED, 1, 128,
                           &pr->signature, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "razorpay_signature", err), -1;
    return 0;
}

/* Audits a refused verification and answers 400. Returns -1. */
static int refuse_proof(request_rec *r, ap_dbd_t *db, const char *type, const char *id,
                        const char *code, const char *message, const char *reason)
{
    payment_audit(r, db, "payment.verify", type, id, "denied",
                  apr_psprintf(r->pool, "{\"reason\":%s}", bl_json_quote(r->pool, reason)));
    bl_send_error(r, HTTP_BAD_REQUEST, code, message, NULL);
    return -1;
}

/* Fetches the payment and checks it against our order. Captures an
 * authorized payment. Returns 0 (it is ours and captured), or -1 after
 * answering. */
static int check_fetched_payment(request_rec *r, ap_dbd_t *db, const payment_conf *c,
                                 const checkout_proof *pr, const char *our_id,
                                 const char *amount, const char *currency)
{
    json_object *pay, *capture, *captured;
    const char *status, *path = apr_pstrcat(r->pool, "/v1/payments/", pr->payment_id, NULL);
    rzp_outcome outcome = rzp_call(r->pool, r->server, bl_traceparent(r), c, "GET", path, NULL, &pay);

    if (outcome == RZP_REFUSED)
        return refuse_proof(r, db, "payment", our_id, "PAYMENT_VERIFICATION_FAILED",
                            "the payment does not match this order", "unknown payment");
    if (outcome != RZP_OK)
        return payment_send_provider_error(r, outcome), -1;
    status = rzp_string(pay, "status");
    if (!rzp_string(pay, "order_id") || strcmp(rzp_string(pay, "order_id"), pr->order_id) != 0
        || rzp_int(pay, "amount") != apr_atoi64(amount) || !rzp_string(pay, "currency")
        || strcmp(rzp_string(pay, "currency"), currency) != 0 || !status
        || (strcmp(status, "captured") != 0 && strcmp(status, "authorized") != 0))
        return refuse_proof(r, db, "payment", our_id, "PAYMENT_VERIFICATION_FAILED",
                            "the payment does not match this order",
                            "order, amount, currency or status differ");
    if (strcmp(status, "authorized") == 0) {
        /* Accounts without automatic capture: capture what we verified. */
        capture = json_object_new_object();
        json_object_object_add(capture, "amount", json_object_new_int64(apr_atoi64(amount)));
        json_object_object_add(capture, "currency", json_object_new_string(currency));
        outcome = rzp_call(r->pool, r->server, bl_traceparent(r), c, "POST",
                           apr_pstrcat(r->pool, path, "/capture", NULL), capture, &captured);
        json_object_put(capture);
        if (outcome != RZP_OK || !rzp_string(captured, "status")
            || strcmp(rzp_string(captured, "status"), "captured") != 0)
            return payment_send_provider_error(r, outcome == RZP_OK ? RZP_BAD_ANSWER : outcome),
                   -1;
    }
    return 0;
}

/* The answer of a successful verification: the payment and the tier. */
static int send_verified(request_rec *r, ap_dbd_t *db, const bl_user *user,
                         const char *payment_id, const char *message)
{
    const char *args[2] = {payment_id, user->id}, *payment = NULL, *tier = NULL;

    if (bl_db_value(r, db, PAY_SQL_JSON, 2, args, &payment) != APR_SUCCESS)
        return OK;
    args[0] = user->id;
    if (bl_db_value(r, db, PAY_SQL_TIER_JSON, 1, args, &tier) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_OK, message,
                        apr_psprintf(r->pool, "{\"payment\":%s,\"account\":%s}",
                                     payment ? payment : "null", tier ? tier : "null"),
                        NULL);
}

static int verify_order(request_rec *r, const payment_conf *c, const bl_user *user,
                        ap_dbd_t *db, const checkout_proof *pr)
{
    const char *args[2] = {pr->order_id, user->id}, *id, *amount, *currency, *status, *paid_by;
    apr_dbd_results_t *res = bl_db_select(r, db, PAY_SQL_FOR_VERIFY, 2, args);
    apr_dbd_row_t *row;
    int changed;

    if (!res)
        return OK;
    if (!(row = payment_first_row(r, db, res)))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such order", NULL);
    id = bl_db_get(r, db, row, 0);
    amount = bl_db_get(r, db, row, 1);
    currency = bl_db_get(r, db, row, 2);
    status = bl_db_get(r, db, row, 3);
    paid_by = bl_db_get(r, db, row, 4);
    if (!payment_signature_ok(c->key_secret,
                              apr_pstrcat(r->pool, pr->order_id, "|", pr->payment_id, NULL),
                              strlen(pr->order_id) + 1 + strlen(pr->payment_id), pr->signature))
        return (void)refuse_proof(r, db, "payment", id, "INVALID_SIGNATURE",
                            "the checkout signature is not valid", "signature"), OK;
    /* A retried verification of a payment already taken: same answer. */
    if ((strcmp(status, "captured") == 0 || strcmp(status, "refunded") == 0) && paid_by
        && strcmp(paid_by, pr->payment_id) == 0)
        return send_verified(r, db, user, id, "payment already verified");
    if (check_fetched_payment(r, db, c, pr, id, amount, currency) != 0)
        return OK;
    if (bl_db_begin(r, db) != 0)
        return OK;
    changed = payment_settle_in_request(r, db, id, "captured", pr->payment_id, pr->signature,
                                        NULL, "verify");
    if (changed < 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return send_verified(r, db, user, id, changed ? "payment verified" : "payment already verified");
}

static int verify_subscription(request_rec *r, const payment_conf *c, const bl_user *user,
                               ap_dbd_t *db, const checkout_proof *pr)
{
    const char *args[2] = {pr->subscription_id, user->id}, *id, *rstatus, *status;
    apr_dbd_results_t *res = bl_db_select(r, db, PAY_SQL_SUB_FOR_VERIFY, 2, args);
    json_object *sub;
    apr_dbd_row_t *row;
    rzp_outcome outcome;
    const char *json = NULL;

    if (!res)
        return OK;
    if (!(row = payment_first_row(r, db, res)))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such subscription", NULL);
    id = bl_db_get(r, db, row, 0);
    /* Razorpay signs payment_id|subscription_id for a subscription. */
    if (!payment_signature_ok(c->key_secret,
                              apr_pstrcat(r->pool, pr->payment_id, "|", pr->subscription_id,
                                          NULL),
                              strlen(pr->payment_id) + 1 + strlen(pr->subscription_id),
                              pr->signature))
        return (void)refuse_proof(r, db, "subscription", id, "INVALID_SIGNATURE",
                            "the checkout signature is not valid", "signature"), OK;
    outcome = rzp_call(r->pool, r->server, bl_traceparent(r), c, "GET",
                       apr_pstrcat(r->pool, "/v1/subscriptions/", pr->subscription_id, NULL),
                       NULL, &sub);
    if (outcome != RZP_OK)
        return payment_send_provider_error(r, outcome);
    rstatus = rzp_string(sub, "status");
    if (!rstatus || (strcmp(rstatus, "authenticated") != 0 && strcmp(rstatus, "active") != 0))
        return (void)refuse_proof(r, db, "subscription", id, "PAYMENT_VERIFICATION_FAILED",
                            "the subscription is not paid for", "status"), OK;
    status = rstatus;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if (payment_subscription_in_request(r, db, pr->subscription_id, status,
                                        rzp_int(sub, "current_start"),
                                        rzp_int(sub, "current_end"), -1, "verify") < 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    args[0] = id;
    if (bl_db_value(r, db, PAY_SQL_SUB_JSON, 2, args, &json) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_OK, "subscription verified", json, NULL);
}

int payment_verify(request_rec *r, apr_table_t *params)
{
    const payment_conf *c;
    const bl_user *user;
    checkout_proof proof;
    json_object *body;
    ap_dbd_t *db;

    if (!(c = payment_require_config(r, 0)) || !(user = bl_require_user(r))
        || !(body = bl_read_json(r)) || read_proof(r, body, &proof) != 0 || !(db = bl_db(r)))
        return OK;
    return proof.order_id ? verify_order(r, c, user, db, &proof)
                          : verify_subscription(r, c, user, db, &proof);
}
