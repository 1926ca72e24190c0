/* mod_beautiful_auth — accounts, sessions, profiles and admin user
 * management: handler "beautiful-auth" for /api/v1/auth/..., /api/v1/users/...,
 * /api/v1/admin/users... and /.well-known/jwks.json.
 *
 * This file holds the module: directives, hooks, the route table and the
 * dispatcher. Each route lives in the file named after its job. */
#include "auth_private.h"
#include "router.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_optional.h>
#include <apr_optional_hooks.h>
#include <apr_strings.h>
#include <unixd.h>

#include <errno.h>
#include <unistd.h>

#include <stdlib.h>
#include <string.h>

#define AUTH_HANDLER "beautiful-auth"
#define JWKS_PATH "/.well-known/jwks.json"
/* The verification token travels in the path: never into the logs. */
#define VERIFY_PREFIX "/api/v1/auth/verify-email/"
#define CLEANUP_TASK "_beautiful_auth_"
#define CLEANUP_INTERVAL apr_time_from_sec(3600)

/* Built once at start-up (post_config, pconf); read-only afterwards. */
static bl_router *auth_router;

static const struct {
    const char *method;
    const char *pattern;
    auth_route_fn *fn;
} auth_routes[] = {
    {"POST", "/auth/register", auth_register},
    {"POST", "/auth/login", auth_login},
    {"POST", "/auth/logout", auth_logout},
    {"POST", "/auth/logout-all", auth_logout_all},
    {"POST", "/auth/refresh", auth_refresh},
    {"POST", "/auth/forgot-password", auth_forgot_password},
    {"POST", "/auth/reset-password", auth_reset_password},
    {"GET", "/auth/verify-email/:token", auth_verify_email},
    {"POST", "/auth/resend-verification", auth_resend_verification},
    {"GET", "/users/profile", users_get_profile},
    {"PUT", "/users/profile", users_put_profile},
    {"GET", "/users/profile/:id", users_get_public_profile},
    {"PUT", "/users/password", users_change_password},
    {"POST", "/users/upload-avatar", users_upload_avatar},
    {"DELETE", "/users/account", users_delete_account},
    {"GET", "/admin/users", admin_list_users},
    {"PUT", "/admin/users/:id", admin_update_user},
    {"GET", "/admin/analytics", admin_analytics},
    {NULL, NULL, NULL}
};

/* ---------------------------------------------------------------- config */

static void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    auth_conf *c = apr_pcalloc(p, sizeof *c);

    c->avatar_max = 0;
    c->login_ip_limit = -1;
    c->login_acct_limit = -1;
    c->mail_limit = -1;
    c->confirm_limit = -1;
    c->verify_ttl = -1;
    c->reset_ttl = -1;
    return c;
}

static void *merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    const auth_conf *base = basev, *add = addv;
    auth_conf *c = apr_pcalloc(p, sizeof *c);

    c->avatar_dir = add->avatar_dir ? add->avatar_dir : base->avatar_dir;
    c->avatar_max = add->avatar_max ? add->avatar_max : base->avatar_max;
    c->avatar_url = add->avatar_url ? add->avatar_url : base->avatar_url;
    c->common_passwords = add->common_passwords ? add->common_passwords
                                                : base->common_passwords;
#define MERGE_PAIR(a, b) \
    if (add->a >= 0) { c->a = add->a; c->b = add->b; } \
    else { c->a = base->a; c->b = base->b; }
    MERGE_PAIR(login_ip_limit, login_ip_window)
    MERGE_PAIR(login_acct_limit, login_acct_window)
    MERGE_PAIR(mail_limit, mail_window)
    MERGE_PAIR(confirm_limit, confirm_window)
#undef MERGE_PAIR
    c->verify_ttl = add->verify_ttl >= 0 ? add->verify_ttl : base->verify_ttl;
    c->reset_ttl = add->reset_ttl >= 0 ? add->reset_ttl : base->reset_ttl;
    return c;
}

/* Fills in what no directive set, so handlers never test for "unset". */
static void apply_defaults(apr_pool_t *p, auth_conf *c)
{
    if (!c->avatar_dir)
        c->avatar_dir = ap_server_root_relative(p, "uploads/avatars");
    if (!c->avatar_max)
        c->avatar_max = 2 * 1024 * 1024;
    if (!c->avatar_url)
        c->avatar_url = "/uploads/avatars";
    if (c->login_ip_limit < 0) {
        c->login_ip_limit = 30;
        c->login_ip_window = 60;
    }
    if (c->login_acct_limit < 0) {
        c->login_acct_limit = 10;
        c->login_acct_window = 900;
    }
    if (c->mail_limit < 0) {
        c->mail_limit = 5;
        c->mail_window = 3600;
    }
    if (c->confirm_limit < 0) {
        c->confirm_limit = 10;
        c->confirm_window = 900;
    }
    if (c->verify_ttl < 0)
        c->verify_ttl = 86400;
    if (c->reset_ttl < 0)
        c->reset_ttl = 3600;
}

const auth_conf *auth_config(const request_rec *r)
{
    return ap_get_module_config(r->server->module_config, &beautiful_auth_module);
}

static auth_conf *cmd_conf(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &beautiful_auth_module);
}

/* 0 and *out set for a decimal number in 1..100000000, else -1. */
static int parse_positive(const char *arg, int *out)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || v <= 0 || v > 100000000L)
        return -1;
    *out = (int)v;
    return 0;
}

static const char *cmd_avatar_dir(cmd_parms *cmd, void *dc, const char *arg)
{
    cmd_conf(cmd)->avatar_dir = ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

static const char *cmd_avatar_url(cmd_parms *cmd, void *dc, const char *arg)
{
    size_t len = strlen(arg);

    /* Stored as a prefix without a trailing slash. */
    while (len > 1 && arg[len - 1] == '/')
        len--;
    cmd_conf(cmd)->avatar_url = apr_pstrndup(cmd->pool, arg, len);
    return NULL;
}

static const char *cmd_avatar_max(cmd_parms *cmd, void *dc, const char *arg)
{
    int v;

    if (parse_positive(arg, &v))
        return "BeautifulAuthAvatarMaxSize takes a positive number of bytes";
    cmd_conf(cmd)->avatar_max = (apr_size_t)v;
    return NULL;
}

static const char *cmd_common_passwords(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = NULL;
    const char *path = ap_server_root_relative(cmd->pool, arg);
    apr_hash_t *h;

    if (!path)
        return "BeautifulAuthCommonPasswords: invalid path";
    h = auth_load_common_passwords(cmd->pool, path, &err);
    if (!h)
        return apr_psprintf(cmd->pool, "BeautifulAuthCommonPasswords %s: %s", path, err);
    cmd_conf(cmd)->common_passwords = h;
    return NULL;
}

/* BeautifulAuthLoginLimit ip|account <count> <seconds> */
static const char *cmd_login_limit(cmd_parms *cmd, void *dc, const char *which,
                                   const char *count, const char *window)
{
    auth_conf *c = cmd_conf(cmd);
    int n, w;

    if (parse_positive(count, &n) || parse_positive(window, &w))
        return "BeautifulAuthLoginLimit: count and seconds must be positive numbers";
    if (strcasecmp(which, "ip") == 0) {
        c->login_ip_limit = n;
        c->login_ip_window = w;
    } else if (strcasecmp(which, "account") == 0) {
        c->login_acct_limit = n;
        c->login_acct_window = w;
    } else {
        return "BeautifulAuthLoginLimit: first argument is ip or account";
    }
    return NULL;
}

/* BeautifulAuthMailLimit / BeautifulAuthConfirmLimit <count> <seconds> */
static const char *cmd_pair_limit(cmd_parms *cmd, void *dc, const char *count,
                                  const char *window)
{
    auth_conf *c = cmd_conf(cmd);
    int n, w;

    if (parse_positive(count, &n) || parse_positive(window, &w))
        return apr_pstrcat(cmd->pool, cmd->cmd->name,
                           ": count and seconds must be positive numbers", NULL);
    if (cmd->info == (void *)1) {
        c->mail_limit = n;
        c->mail_window = w;
    } else {
        c->confirm_limit = n;
        c->confirm_window = w;
    }
    return NULL;
}

/* BeautifulAuthVerifyTTL / BeautifulAuthResetTTL <seconds> */
static const char *cmd_ttl(cmd_parms *cmd, void *dc, const char *arg)
{
    int v;

    if (parse_positive(arg, &v))
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " takes a positive number of seconds",
                           NULL);
    if (cmd->info == (void *)1)
        cmd_conf(cmd)->verify_ttl = v;
    else
        cmd_conf(cmd)->reset_ttl = v;
    return NULL;
}

static const command_rec auth_cmds[] = {
    AP_INIT_TAKE1("BeautifulAuthAvatarDir", cmd_avatar_dir, NULL, RSRC_CONF,
                  "Directory where avatars are stored (<uuid>.<ext>)"),
    AP_INIT_TAKE1("BeautifulAuthAvatarURL", cmd_avatar_url, NULL, RSRC_CONF,
                  "URL prefix under which that directory is served"),
    AP_INIT_TAKE1("BeautifulAuthAvatarMaxSize", cmd_avatar_max, NULL, RSRC_CONF,
                  "Largest avatar accepted, in bytes (default 2097152)"),
    AP_INIT_TAKE1("BeautifulAuthCommonPasswords", cmd_common_passwords, NULL, RSRC_CONF,
                  "File of common passwords (one per line) refused by the policy"),
    AP_INIT_TAKE3("BeautifulAuthLoginLimit", cmd_login_limit, NULL, RSRC_CONF,
                  "ip|account <count> <seconds>: login attempts allowed per window"),
    AP_INIT_TAKE2("BeautifulAuthMailLimit", cmd_pair_limit, (void *)1, RSRC_CONF,
                  "<count> <seconds>: reset/verification emails per address per window"),
    AP_INIT_TAKE2("BeautifulAuthConfirmLimit", cmd_pair_limit, (void *)2, RSRC_CONF,
                  "<count> <seconds>: password re-confirmations per user per window"),
    AP_INIT_TAKE1("BeautifulAuthVerifyTTL", cmd_ttl, (void *)1, RSRC_CONF,
                  "Lifetime of an email-verification link, seconds (default 86400)"),
    AP_INIT_TAKE1("BeautifulAuthResetTTL", cmd_ttl, (void *)2, RSRC_CONF,
                  "Lifetime of a password-reset link, seconds (default 3600)"),
    {NULL}
};

/* ---------------------------------------------------------------- dispatch */

static int auth_handler(request_rec *r)
{
    apr_table_t *params;
    void *handler;

    if (!r->handler || strcmp(r->handler, AUTH_HANDLER) != 0)
        return DECLINED;
    if (r->parsed_uri.path && strcmp(r->parsed_uri.path, JWKS_PATH) == 0)
        return auth_jwks(r, NULL);
    /* Everything else here is personal data or tokens. */
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");

    if (!(handler = bl_route(r, auth_router, &params)))
        return OK;
    return ((auth_route_fn *)handler)(r, params);
}

/* ---------------------------------------------------------------- hooks */

/* The avatar directory, made at start-up (as root, for the child user) so
 * the first upload does not fail on it. */
static void make_avatar_dir(apr_pool_t *p, server_rec *s, const char *dir)
{
    apr_status_t rv = apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, p);

    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "mod_beautiful_auth: cannot create the avatar directory %s", dir);
        return;
    }
    if (geteuid() == 0 && chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0)
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s,
                     "mod_beautiful_auth: cannot hand %s to the httpd user", dir);
}

/* Deletes expired sessions and tokens (hourly background task). */
static void auth_cleanup_task(server_rec *s, void *data, apr_pool_t *pool)
{
    ap_dbd_t *db = bl_db_open(pool, s);
    apr_dbd_prepared_t *st;
    int nrows = 0, rv;

    if (!db)
        return;    /* database away: try again next time */
    st = apr_hash_get(db->prepared, AUTH_SQL_CLEANUP, APR_HASH_KEY_STRING);
    if (st) {
        rv = apr_dbd_pvquery(db->driver, pool, db->handle, &nrows, st, NULL);
        if (rv != 0)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_beautiful_auth: session cleanup failed: %s",
                         apr_dbd_error(db->driver, db->handle, rv));
    }
    bl_db_close(s, db);
}

static int auth_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                            server_rec *s)
{
    server_rec *vs;
    int i;

    for (vs = s; vs; vs = vs->next) {
        auth_conf *c = ap_get_module_config(vs->module_config, &beautiful_auth_module);
        apply_defaults(pconf, c);
        if (vs == s || c->avatar_dir != ((auth_conf *)ap_get_module_config(
                                   s->module_config, &beautiful_auth_module))->avatar_dir)
            make_avatar_dir(ptemp, vs, c->avatar_dir);
        if (!c->common_passwords && vs == s)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "mod_beautiful_auth: no BeautifulAuthCommonPasswords list: the "
                         "password policy checks length and email only");
    }
    bl_db_prepare_all(s, auth_statements);

    auth_router = bl_router_create(pconf);
    for (i = 0; auth_routes[i].method; i++) {
        if (bl_router_add(auth_router, auth_routes[i].method, auth_routes[i].pattern,
                          (void *)auth_routes[i].fn) != 0) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "mod_beautiful_auth: bad route %s %s",
                         auth_routes[i].method, auth_routes[i].pattern);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    auth_make_dummy_hash(pconf);
    /* Housekeeping: without it (bl_task_register says why) the server still
     * starts, as it always has. */
    (void)bl_task_register(pconf, s, CLEANUP_TASK, CLEANUP_INTERVAL, auth_cleanup_task, NULL);
    return OK;
}

/* Masks the verification token in the request line and URI before the
 * access log (and anything else logging the request) sees it. */
static int auth_redact_log(request_rec *r)
{
    const char *p;

    if (!r->handler || strcmp(r->handler, AUTH_HANDLER) != 0 || !r->the_request)
        return DECLINED;
    p = strstr(r->the_request, VERIFY_PREFIX);
    if (p) {
        const char *end = p + sizeof(VERIFY_PREFIX) - 1;
        end += strcspn(end, " ?#");
        r->the_request = apr_pstrcat(r->pool,
                                     apr_pstrmemdup(r->pool, r->the_request,
                                                    (apr_size_t)(p - r->the_request)),
                                     VERIFY_PREFIX "[redacted]", end, NULL);
    }
    if (strncmp(r->uri, VERIFY_PREFIX, sizeof(VERIFY_PREFIX) - 1) == 0) {
        r->uri = VERIFY_PREFIX "[redacted]";
        r->unparsed_uri = r->uri;
        r->parsed_uri.path = (char *)r->uri;
    }
    return DECLINED;
}

static void auth_child_init(apr_pool_t *pchild, server_rec *s)
{
    auth_activity_child_init(pchild);
}

static int auth_log_transaction(request_rec *r)
{
    auth_touch_last_active(r);
    return DECLINED;
}

/* ---------------------------------------------------------------- account hook */

/* Other modules register with
 *   apr_optional_hook_add("bl_account_deleted", (void (*)(void))fn, NULL, NULL,
 *                         APR_HOOK_MIDDLE);
 * where fn is int fn(request_rec *r, ap_dbd_t *db, const char *user_id).
 * It runs inside the deletion's transaction before the users row goes; a
 * result other than OK or DECLINED aborts the deletion. */
typedef int auth_account_deleted_fn(request_rec *r, ap_dbd_t *db, const char *user_id);
typedef struct {
    auth_account_deleted_fn *fn;
    const char *name;
    const char *const *predecessors;
    const char *const *successors;
    int order;
} auth_hook_link;

int auth_run_account_deleted(request_rec *r, ap_dbd_t *db, const char *user_id)
{
    apr_array_header_t *hooks = apr_optional_hook_get("bl_account_deleted");
    const auth_hook_link *links;
    int i, rv;

    if (!hooks)
        return OK;
    links = (const auth_hook_link *)hooks->elts;
    for (i = 0; i < hooks->nelts; i++) {
        rv = links[i].fn(r, db, user_id);
        if (rv != OK && rv != DECLINED)
            return rv;
    }
    return OK;
}

static void auth_register_hooks(apr_pool_t *p)
{
    /* Statements must be registered before mod_dbd prepares them, the
     * cleanup task before mod_watchdog sets its instances up. */
    static const char *const succ_dbd_wd[] = {"mod_dbd.c", "mod_watchdog.c", NULL};
    static const char *const pred_log[] = {NULL};
    static const char *const succ_log[] = {"mod_log_config.c", NULL};

    ap_hook_post_config(auth_post_config, NULL, succ_dbd_wd, APR_HOOK_MIDDLE);
    ap_hook_child_init(auth_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(auth_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(auth_redact_log, pred_log, succ_log, APR_HOOK_REALLY_FIRST);
    ap_hook_log_transaction(auth_log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(beautiful_auth) = {
    STANDARD20_MODULE_STUFF,
    NULL,
    NULL,
    create_server_conf,
    merge_server_conf,
    auth_cmds,
    auth_register_hooks,
    AP_MODULE_FLAG_NONE
};
