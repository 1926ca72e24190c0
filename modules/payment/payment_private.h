/* Internal interfaces between the files of mod_beautiful_payment.
 * Only the module structure is exported from the .so (Makefile.inc). */
#ifndef BL_PAYMENT_PRIVATE_H
#define BL_PAYMENT_PRIVATE_H

#include "beautiful.h"
#include "webhook_event.h"

#include <apr_tables.h>
#include <json-c/json.h>

extern module AP_MODULE_DECLARE_DATA beautiful_payment_module;

/* ---------------------------------------------------------------- config */

/* One BeautifulPaymentPlan: a one-time product (access_days) or, with a
 * Razorpay plan id, a subscription plan (billing_cycles). */
typedef struct {
    const char *code;               /* [a-z0-9_]{1,50} */
    apr_int64_t amount;             /* paise, > 0 */
    const char *currency;           /* ISO 4217, upper case */
    const char *name;
    const char *razorpay_plan_id;   /* NULL: one-time */
    const char *tier;               /* tier granted (default: the code) */
    int access_days;                /* one-time: days of tier bought */
    int billing_cycles;             /* subscription: total_count */
} payment_plan;

typedef struct {
    const char *url;                /* BeautifulRazorpayURL (base) */
    const char *key_id;             /* BeautifulRazorpayKeyId */
    const char *key_secret;         /* BeautifulRazorpayKeySecret */
    const char *webhook_secret;     /* BeautifulRazorpayWebhookSecret */
    apr_array_header_t *plans;      /* payment_plan */
    const char *plans_json;         /* GET /payments/plans data, built at start-up */
    apr_interval_time_t connect_timeout, timeout;   /* BeautifulRazorpayTimeout */
    int max_attempts;               /* BeautifulRazorpayAttempts */
    apr_interval_time_t reconcile_interval;  /* BeautifulPaymentReconcileInterval */
    apr_interval_time_t reconcile_age;       /* BeautifulPaymentReconcileAge */
    apr_interval_time_t expiry_interval;     /* BeautifulPaymentExpiryInterval */
    int set_reconcile_interval, set_reconcile_age, set_expiry_interval,
        set_timeout, set_attempts;
} payment_conf;

const payment_conf *payment_config(const request_rec *r);
const payment_conf *payment_server_config(const server_rec *s);
const payment_plan *payment_find_plan(const payment_conf *c, const char *code);
/* Keys present: orders, verification, subscriptions can run. */
int payment_configured(const payment_conf *c);

/* ---------------------------------------------------------------- routes */

typedef int payment_route_fn(request_rec *r, apr_table_t *params);

payment_route_fn payment_list_plans, payment_create_order, payment_verify,
    payment_history, payment_get, payment_webhook, payment_subscribe,
    payment_subscription_current, payment_subscription_cancel;

/* ---------------------------------------------------------------- Razorpay */

typedef enum {
    RZP_OK = 0,          /* 2xx with a JSON object */
    RZP_UNAVAILABLE,     /* no answer, 429 or 5xx (after retries) */
    RZP_REFUSED,         /* another 4xx: our request or our keys are wrong */
    RZP_BAD_ANSWER       /* 2xx that is not a JSON object */
} rzp_outcome;

/* One call to the Razorpay API (HTTP Basic key_id:key_secret): method,
 * path below the base URL ("/v1/orders"), optional JSON body. *out gets
 * the parsed answer on RZP_OK (owned by p). traceparent: the request's
 * (bl_traceparent) or NULL outside a request. Nothing is logged here but the
 * outcome, status and path. POSTs are tried max(1, attempts - 1) times. */
rzp_outcome rzp_call(apr_pool_t *p, server_rec *s, const char *traceparent,
                     const payment_conf *c,
                     const char *method, const char *path, json_object *body,
                     json_object **out);

/* Lower-case hex HMAC-SHA256 signature check in constant time:
 * hex(HMAC(secret, msg)) == sig. */
int payment_signature_ok(const char *secret, const char *msg, apr_size_t len,
                         const char *sig);

/* Reads a string / integer member (NULL / -1 when absent or mistyped). */
const char *rzp_string(json_object *o, const char *name);
apr_int64_t rzp_int(json_object *o, const char *name);

/* Answers for Razorpay failures: 503 PAYMENT_PROVIDER_UNAVAILABLE with
 * Retry-After, or 502 PAYMENT_PROVIDER_ERROR. */
int payment_send_provider_error(request_rec *r, rzp_outcome outcome);

/* ---------------------------------------------------------------- state */

/* payment_settle in the caller's transaction, by our payment id: a move
 * that is not forward changes nothing; a fresh capture puts the receipt
 * in the outbox (bl_outbox_add). Returns 1 changed, 0 unchanged (also:
 * no such payment), -1 after answering. */
/* A state change on /metrics (beautiful_payments_total{event}); unknown
 * events are not counted. payment_metrics_init shows every series at 0. */
void payment_count_event(const char *event);
void payment_metrics_init(void);

int payment_settle_in_request(request_rec *r, ap_dbd_t *db, const char *payment_id,
                              const char *status, const char *razorpay_payment_id,
                              const char *signature, const char *failure,
                              const char *source);
/* payment_subscription_apply in the caller's transaction; a change of
 * status puts a notice in the outbox. Returns 1, 0 or -1 as above. */
int payment_subscription_in_request(request_rec *r, ap_dbd_t *db,
                                    const char *razorpay_subscription_id,
                                    const char *status, apr_int64_t period_start,
                                    apr_int64_t period_end, apr_int64_t event_at,
                                    const char *source);
/* Unix seconds as the SQL text of a timestamptz (NULL for < 0). */
const char *payment_unix_ts(apr_pool_t *p, apr_int64_t t);

/* ---------------------------------------------------------------- helpers */

/* 503 PAYMENTS_NOT_CONFIGURED unless configured (webhook: unless the
 * webhook secret is set). Returns the config or NULL after answering. */
const payment_conf *payment_require_config(request_rec *r, int webhook);
/* Answers 400 naming the first unknown field; -1, or 0 when none. An
 * amount-like field gets its own message: prices live on the server. */
int payment_refuse_unknown(request_rec *r, json_object *obj, const char *const *allowed);
/* A Razorpay id (order_, pay_, sub_ ...): [A-Za-z0-9_]{1,100}. */
int payment_valid_rzp_id(const char *s);
/* First row, or NULL. */
apr_dbd_row_t *payment_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res);
/* Audit row written as best effort (logged when it fails). */
void payment_audit(request_rec *r, ap_dbd_t *db, const char *action,
                   const char *type, const char *id, const char *outcome,
                   const char *details_json);

/* mod_beautiful_auth's optional hook "bl_account_deleted": cancels the
 * user's live subscription at Razorpay (payment_account.c). */
int payment_account_deleted(request_rec *r, ap_dbd_t *db, const char *user_id);

/* ---------------------------------------------------------------- tasks */

void payment_reconcile_task(server_rec *s, void *data, apr_pool_t *pool);
void payment_expiry_task(server_rec *s, void *data, apr_pool_t *pool);

/* ---------------------------------------------------------------- SQL */

extern const bl_statement payment_statements[];

#define PAY_SQL_ORDER_INSERT        "payment_order_insert"
#define PAY_SQL_ORDER_BY_KEY        "payment_order_by_key"
#define PAY_SQL_FOR_VERIFY          "payment_for_verify"
#define PAY_SQL_JSON                "payment_json"
#define PAY_SQL_HISTORY             "payment_history"
#define PAY_SQL_SETTLE              "payment_settle"
#define PAY_SQL_SETTLE_TASK         "payment_settle_task"
#define PAY_SQL_BY_ORDER            "payment_by_order"
#define PAY_SQL_BY_RZP_PAYMENT      "payment_by_rzp_payment"
#define PAY_SQL_EVENT_INSERT        "payment_event_insert"
#define PAY_SQL_EVENT_DONE          "payment_event_done"
#define PAY_SQL_SUB_INSERT          "payment_sub_insert"
#define PAY_SQL_SUB_LIVE            "payment_sub_live"
#define PAY_SQL_SUB_CURRENT         "payment_sub_current"
#define PAY_SQL_SUB_FOR_VERIFY      "payment_sub_for_verify"
#define PAY_SQL_SUB_APPLY           "payment_sub_apply"
#define PAY_SQL_SUB_SET_CANCEL_END  "payment_sub_set_cancel_end"
#define PAY_SQL_SUB_JSON            "payment_sub_json"
#define PAY_SQL_CHARGE              "payment_charge"
#define PAY_SQL_TIER_JSON           "payment_tier_json"
#define PAY_SQL_RECONCILE_CLAIM     "payment_reconcile_claim"
#define PAY_SQL_EXPIRE              "payment_expire"

#endif
