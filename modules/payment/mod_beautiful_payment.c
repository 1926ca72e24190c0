/* mod_beautiful_payment — Razorpay orders, checkout verification, webhooks,
 * subscriptions and reconciliation: handler "beautiful-payment" for
 * /api/v1/payments/...
 *
 * This file holds the module: directives, hooks, the route table and the
 * dispatcher. Each route lives in the file named after its job. */
#include "payment_private.h"
#include "http_client.h"
#include "json.h"
#include "router.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_lib.h>
#include <apr_optional_hooks.h>
#include <apr_strings.h>

#include <stdlib.h>
#include <string.h>


#define PAYMENT_HANDLER "beautiful-payment"
#define RECONCILE_TASK "_beautiful_payment_reconcile_"
#define EXPIRY_TASK "_beautiful_payment_expiry_"
#define DEFAULT_URL "https://api.razorpay.com"

/* Built once at start-up (post_config, pconf); read-only afterwards. */
static bl_router *payment_router;

static const struct {
    const char *method;
    const char *pattern;
    payment_route_fn *fn;
} payment_routes[] = {
    {"GET", "/payments/plans", payment_list_plans},
    {"POST", "/payments/create-order", payment_create_order},
    {"POST", "/payments/verify-payment", payment_verify},
    {"GET", "/payments/history", payment_history},
    {"POST", "/payments/webhook", payment_webhook},
    {"POST", "/payments/subscriptions", payment_subscribe},
    {"GET", "/payments/subscriptions/current", payment_subscription_current},
    {"POST", "/payments/subscriptions/cancel", payment_subscription_cancel},
    {"GET", "/payments/:id", payment_get},
    {NULL, NULL, NULL}
};

/* ---------------------------------------------------------------- config */

static void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    payment_conf *c = apr_pcalloc(p, sizeof *c);

    c->plans = apr_array_make(p, 4, sizeof(payment_plan));
    return c;
}

static void *merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    const payment_conf *base = basev, *add = addv;
    payment_conf *c = apr_pcalloc(p, sizeof *c);

#define PICK(f) c->f = add->f ? add->f : base->f
    PICK(url);
    PICK(key_id);
    PICK(key_secret);
    PICK(webhook_secret);
#undef PICK
    c->plans = add->plans->nelts ? add->plans : base->plans;
    c->set_timeout = add->set_timeout || base->set_timeout;
    c->connect_timeout = add->set_timeout ? add->connect_timeout : base->connect_timeout;
    c->timeout = add->set_timeout ? add->timeout : base->timeout;
    c->set_attempts = add->set_attempts || base->set_attempts;
    c->max_attempts = add->set_attempts ? add->max_attempts : base->max_attempts;
    c->set_reconcile_interval = add->set_reconcile_interval || base->set_reconcile_interval;
    c->reconcile_interval = add->set_reconcile_interval ? add->reconcile_interval
                                                         : base->reconcile_interval;
    c->set_reconcile_age = add->set_reconcile_age || base->set_reconcile_age;
    c->reconcile_age = add->set_reconcile_age ? add->reconcile_age : base->reconcile_age;
    c->set_expiry_interval = add->set_expiry_interval || base->set_expiry_interval;
    c->expiry_interval = add->set_expiry_interval ? add->expiry_interval
                                                   : base->expiry_interval;
    return c;
}

/* Fills in what no directive set, so handlers never test for "unset". */
static void apply_defaults(payment_conf *c)
{
    if (!c->url)
        c->url = DEFAULT_URL;
    if (!c->set_timeout) {
        c->connect_timeout = apr_time_from_sec(5);
        c->timeout = apr_time_from_sec(15);
    }
    if (!c->set_attempts)
        c->max_attempts = 3;
    if (!c->set_reconcile_interval)
        c->reconcile_interval = apr_time_from_sec(60);
    if (!c->set_reconcile_age)
        c->reconcile_age = apr_time_from_sec(15 * 60);
    if (!c->set_expiry_interval)
        c->expiry_interval = apr_time_from_sec(60);
}

const payment_conf *payment_server_config(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &beautiful_payment_module);
}

const payment_conf *payment_config(const request_rec *r)
{
    return payment_server_config(r->server);
}

int payment_configured(const payment_conf *c)
{
    return c && c->key_id && *c->key_id && c->key_secret && *c->key_secret;
}

const payment_plan *payment_find_plan(const payment_conf *c, const char *code)
{
    const payment_plan *plans = (const payment_plan *)c->plans->elts;
    int i;

    for (i = 0; i < c->plans->nelts; i++)
        if (strcmp(plans[i].code, code) == 0)
            return &plans[i];
    return NULL;
}

static payment_conf *cmd_conf(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &beautiful_payment_module);
}

/* Stores a string setting; an empty value (an unset variable in the
 * shipped conf) leaves it unset. */
static const char *cmd_string(cmd_parms *cmd, void *dc, const char *arg)
{
    payment_conf *c = cmd_conf(cmd);
    const char *v = *arg ? apr_pstrdup(cmd->pool, arg) : NULL;

    switch ((int)(apr_uintptr_t)cmd->info) {
    case 1: {
        size_t len = strlen(arg);
        if (!*arg)
            return NULL;
        if (strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0)
            return "BeautifulRazorpayURL takes an http:// or https:// base URL";
        while (len > 1 && arg[len - 1] == '/')
            len--;
        c->url = apr_pstrndup(cmd->pool, arg, len);
        break;
    }
    case 2: c->key_id = v; break;
    case 3: c->key_secret = v; break;
    default: c->webhook_secret = v; break;
    }
    return NULL;
}

static const char *parse_duration(cmd_parms *cmd, const char *arg, apr_interval_time_t *out)
{
    apr_interval_time_t t;

    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS || t <= 0)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a duration (e.g. 60, 500ms, 15min)",
                            cmd->cmd->name, arg);
    *out = t;
    return NULL;
}

static const char *cmd_duration(cmd_parms *cmd, void *dc, const char *arg)
{
    payment_conf *c = cmd_conf(cmd);

    switch ((int)(apr_uintptr_t)cmd->info) {
    case 1: c->set_reconcile_interval = 1; return parse_duration(cmd, arg, &c->reconcile_interval);
    case 2: c->set_reconcile_age = 1; return parse_duration(cmd, arg, &c->reconcile_age);
    default: c->set_expiry_interval = 1; return parse_duration(cmd, arg, &c->expiry_interval);
    }
}

static const char *cmd_timeout(cmd_parms *cmd, void *dc, const char *connect, const char *total)
{
    payment_conf *c = cmd_conf(cmd);
    const char *err;

    c->set_timeout = 1;
    if ((err = parse_duration(cmd, connect, &c->connect_timeout)) != NULL)
        return err;
    c->timeout = c->connect_timeout * 3;
    return total ? parse_duration(cmd, total, &c->timeout) : NULL;
}

static const char *cmd_attempts(cmd_parms *cmd, void *dc, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || v < 1 || v > 10)
        return "BeautifulRazorpayAttempts takes a number from 1 to 10";
    cmd_conf(cmd)->set_attempts = 1;
    cmd_conf(cmd)->max_attempts = (int)v;
    return NULL;
}

static int valid_code(const char *s)
{
    size_t n = strlen(s), i;

    if (n < 1 || n > 50)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

static int parse_bounded(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (!*s || *s == '-' || *s == '+')
        return -1;
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* BeautifulPaymentPlan <code> <amount in paise> <currency> "<name>"
 *                      [razorpay_plan_id] [tier=<tier>] [days=<n>] [cycles=<n>] */
static const char *cmd_plan(cmd_parms *cmd, void *dc, const char *args)
{
    static const char usage[] = "BeautifulPaymentPlan <code> <amount in paise> <currency> "
                                "\"<name>\" [razorpay_plan_id] [tier=<tier>] [days=<n>] "
                                "[cycles=<n>]";
    payment_conf *c = cmd_conf(cmd);
    payment_plan plan;
    const char *w[4], *opt;
    long v;
    int i;

    memset(&plan, 0, sizeof plan);
    for (i = 0; i < 4; i++) {
        w[i] = ap_getword_conf(cmd->pool, &args);
        if (!*w[i])
            return usage;
    }
    if (!valid_code(w[0]))
        return "BeautifulPaymentPlan: the code is 1 to 50 of a-z, 0-9 and _";
    if (payment_find_plan(c, w[0]))
        return apr_psprintf(cmd->pool, "BeautifulPaymentPlan: %s is defined twice", w[0]);
    /* Integer paise: "499.00" is refused rather than guessed at. */
    if (parse_bounded(w[1], 1, 100000000000L, &v) != 0)
        return "BeautifulPaymentPlan: the amount is a whole number of paise (49900 for 499.00)";
    if (strlen(w[2]) != 3 || !apr_isupper(w[2][0]) || !apr_isupper(w[2][1])
        || !apr_isupper(w[2][2]))
        return "BeautifulPaymentPlan: the currency is a 3-letter upper-case code (INR)";
    if (strlen(w[3]) > 200)
        return "BeautifulPaymentPlan: the name is at most 200 characters";
    plan.code = w[0];
    plan.amount = v;
    plan.currency = w[2];
    plan.name = w[3];
    plan.tier = w[0];
    plan.access_days = 30;
    plan.billing_cycles = 12;
    while (*(opt = ap_getword_conf(cmd->pool, &args))) {
        if (strncmp(opt, "tier=", 5) == 0) {
            if (!valid_code(opt + 5))
                return "BeautifulPaymentPlan: tier= takes 1 to 50 of a-z, 0-9 and _";
            plan.tier = opt + 5;
        } else if (strncmp(opt, "days=", 5) == 0) {
            if (parse_bounded(opt + 5, 1, 3660, &v) != 0)
                return "BeautifulPaymentPlan: days= takes 1 to 3660";
            plan.access_days = (int)v;
        } else if (strncmp(opt, "cycles=", 7) == 0) {
            if (parse_bounded(opt + 7, 1, 1200, &v) != 0)
                return "BeautifulPaymentPlan: cycles= takes 1 to 1200";
            plan.billing_cycles = (int)v;
        } else if (!plan.razorpay_plan_id && !strchr(opt, '=') && strlen(opt) <= 100) {
            plan.razorpay_plan_id = opt;
        } else {
            return apr_psprintf(cmd->pool, "BeautifulPaymentPlan: unexpected '%s' (%s)", opt,
                                usage);
        }
    }
    if (strcmp(plan.tier, "free") == 0)
        return "BeautifulPaymentPlan: a paid plan cannot grant the tier 'free'";
    *(payment_plan *)apr_array_push(c->plans) = plan;
    return NULL;
}

static const command_rec payment_cmds[] = {
    AP_INIT_TAKE1("BeautifulRazorpayURL", cmd_string, (void *)1, RSRC_CONF,
                  "Base URL of the Razorpay API (default https://api.razorpay.com)"),
    AP_INIT_TAKE1("BeautifulRazorpayKeyId", cmd_string, (void *)2, RSRC_CONF,
                  "Razorpay key id (rzp_test_... / rzp_live_...); empty: payments off"),
    AP_INIT_TAKE1("BeautifulRazorpayKeySecret", cmd_string, (void *)3, RSRC_CONF,
                  "Razorpay key secret; empty: payments off"),
    AP_INIT_TAKE1("BeautifulRazorpayWebhookSecret", cmd_string, (void *)4, RSRC_CONF,
                  "Secret of the Razorpay webhook; empty: the webhook answers 503"),
    AP_INIT_TAKE12("BeautifulRazorpayTimeout", cmd_timeout, NULL, RSRC_CONF,
                   "<connect> [<total>]: timeouts of one Razorpay call (default 5s 15s)"),
    AP_INIT_TAKE1("BeautifulRazorpayAttempts", cmd_attempts, NULL, RSRC_CONF,
                  "Attempts of a Razorpay GET on 429/5xx/transport errors (default 3)"),
    AP_INIT_RAW_ARGS("BeautifulPaymentPlan", cmd_plan, NULL, RSRC_CONF,
                     "<code> <amount in paise> <currency> \"<name>\" [razorpay_plan_id] "
                     "[tier=<tier>] [days=<n>] [cycles=<n>]"),
    AP_INIT_TAKE1("BeautifulPaymentReconcileInterval", cmd_duration, (void *)1, RSRC_CONF,
                  "How often open orders are settled from Razorpay (default 60s)"),
    AP_INIT_TAKE1("BeautifulPaymentReconcileAge", cmd_duration, (void *)2, RSRC_CONF,
                  "Age of an open order before reconciliation looks at it (default 15min)"),
    AP_INIT_TAKE1("BeautifulPaymentExpiryInterval", cmd_duration, (void *)3, RSRC_CONF,
                  "How often tiers whose period is over are ended (default 60s)"),
    {NULL}
};

/* The public plan list, built once: [{code, name, amount, currency, kind,
 * tier, days | billing_cycles}]. */
static const char *build_plans_json(apr_pool_t *p, const payment_conf *c)
{
    const payment_plan *plans = (const payment_plan *)c->plans->elts;
    json_object *list = json_object_new_array();
    const char *out;
    int i;

    for (i = 0; i < c->plans->nelts; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "code", json_object_new_string(plans[i].code));
        json_object_object_add(o, "name", json_object_new_string(plans[i].name));
        json_object_object_add(o, "amount", json_object_new_int64(plans[i].amount));
        json_object_object_add(o, "currency", json_object_new_string(plans[i].currency));
        json_object_object_add(o, "kind", json_object_new_string(
                                   plans[i].razorpay_plan_id ? "subscription" : "one_time"));
        json_object_object_add(o, "tier", json_object_new_string(plans[i].tier));
        if (plans[i].razorpay_plan_id) {
            json_object_object_add(o, "interval", json_object_new_string("monthly"));
            json_object_object_add(o, "billing_cycles",
                                   json_object_new_int(plans[i].billing_cycles));
        } else {
            json_object_object_add(o, "days", json_object_new_int(plans[i].access_days));
        }
        json_object_array_add(list, o);
    }
    out = apr_pstrdup(p, json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN));
    json_object_put(list);
    return out;
}

/* ---------------------------------------------------------------- dispatch */

static int payment_handler(request_rec *r)
{
    apr_table_t *params;
    void *handler;

    if (!r->handler || strcmp(r->handler, PAYMENT_HANDLER) != 0)
        return DECLINED;
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (!(handler = bl_route(r, payment_router, &params)))
        return OK;
    return ((payment_route_fn *)handler)(r, params);
}

/* ---------------------------------------------------------------- hooks */

static int payment_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    payment_conf *main_conf = ap_get_module_config(s->module_config, &beautiful_payment_module);
    server_rec *vs;
    int i;

    bl_http_global_init();
    for (vs = s; vs; vs = vs->next) {
        payment_conf *c = ap_get_module_config(vs->module_config, &beautiful_payment_module);
        apply_defaults(c);
        c->plans_json = build_plans_json(pconf, c);
    }
    if (!payment_configured(main_conf))
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "mod_beautiful_payment: no Razorpay keys (BeautifulRazorpayKeyId, "
                     "BeautifulRazorpayKeySecret): payment routes answer 503 "
                     "PAYMENTS_NOT_CONFIGURED");
    bl_db_prepare_all(s, payment_statements);

    payment_router = bl_router_create(pconf);
    for (i = 0; payment_routes[i].method; i++) {
        if (bl_router_add(payment_router, payment_routes[i].method, payment_routes[i].pattern,
                          (void *)payment_routes[i].fn) != 0) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "mod_beautiful_payment: bad route %s %s",
                         payment_routes[i].method, payment_routes[i].pattern);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    /* Tiers end whether or not Razorpay is configured; reconciliation
     * needs the keys. Without mod_watchdog the server still starts. */
    (void)bl_task_register(pconf, s, EXPIRY_TASK, main_conf->expiry_interval,
                           payment_expiry_task, NULL);
    if (payment_configured(main_conf))
        (void)bl_task_register(pconf, s, RECONCILE_TASK, main_conf->reconcile_interval,
                               payment_reconcile_task, NULL);
    return OK;
}

static void payment_child_init(apr_pool_t *pchild, server_rec *s)
{
    payment_metrics_init();
}

static void payment_register_hooks(apr_pool_t *p)
{
    /* Statements must be registered before mod_dbd prepares them, the
     * tasks before mod_watchdog sets its instances up. */
    static const char *const succ_dbd_wd[] = {"mod_dbd.c", "mod_watchdog.c", NULL};

    ap_hook_post_config(payment_post_config, NULL, succ_dbd_wd, APR_HOOK_MIDDLE);
    ap_hook_child_init(payment_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(payment_handler, NULL, NULL, APR_HOOK_MIDDLE);
    apr_optional_hook_add("bl_account_deleted", (void (*)(void))payment_account_deleted,
                          NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(beautiful_payment) = {
    STANDARD20_MODULE_STUFF,
    NULL,
    NULL,
    create_server_conf,
    merge_server_conf,
    payment_cmds,
    payment_register_hooks,
    AP_MODULE_FLAG_NONE
};
