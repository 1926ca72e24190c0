/* Chat and video sessions: directives, hooks, the background task and the
 * small helpers their route files share. */
#include "chat_video.h"
#include "validate.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define VIDEO_TASK "beautiful-video"
#define TEST_HANDLER "beautiful-video-test"
#define DEFAULT_TEMPLATE "https://meet.jit.si/BeautifulLife-{room}"

/* Set by directives on the main server (pconf time), read-only afterwards.
 * Reset by pre_config so a graceful restart starts from the defaults. */
static chat_video_conf cv_conf;

static void reset_conf(void)
{
    memset(&cv_conf, 0, sizeof cv_conf);
    cv_conf.notify_coalesce = -1;
    cv_conf.remind_minutes = -1;
    cv_conf.task_interval = -1;
    cv_conf.calendar_timeout = -1;
}

const chat_video_conf *chat_video_config(void)
{
    return &cv_conf;
}

static const char *parse_duration(cmd_parms *cmd, const char *arg, apr_interval_time_t min,
                                  apr_interval_time_t max, apr_interval_time_t *out)
{
    apr_interval_time_t t;

    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS || t < min || t > max)
        return apr_psprintf(cmd->pool, "%s takes a duration (e.g. 30s, 500ms, 2min) "
                            "from %" APR_TIME_T_FMT "ms to %" APR_TIME_T_FMT "s",
                            cmd->cmd->name, apr_time_as_msec(min), apr_time_sec(max));
    *out = t;
    return NULL;
}

static const char *https_url(cmd_parms *cmd, const char *arg, int allow_http)
{
    if (strncmp(arg, "https://", 8) == 0 || (allow_http && strncmp(arg, "http://", 7) == 0))
        return NULL;
    return apr_psprintf(cmd->pool, "%s takes an %s URL", cmd->cmd->name,
                        allow_http ? "http(s)" : "https://");
}

const char *chat_video_set(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_VIRTUALHOST);
    char *end;
    long n;

    if (err)
        return err;
    switch ((int)(intptr_t)cmd->info) {
    case CV_DIR_COALESCE:
        return parse_duration(cmd, arg, apr_time_from_msec(100), apr_time_from_sec(86400),
                              &cv_conf.notify_coalesce);
    case CV_DIR_REMIND:
        n = strtol(arg, &end, 10);
        if (!*arg || *end || n < 1 || n > 1440)
            return "BeautifulVideoRemindMinutes takes a number from 1 to 1440";
        cv_conf.remind_minutes = (int)n;
        return NULL;
    case CV_DIR_TASK_INTERVAL:
        return parse_duration(cmd, arg, apr_time_from_msec(100), apr_time_from_sec(3600),
                              &cv_conf.task_interval);
    case CV_DIR_CAL_TIMEOUT:
        return parse_duration(cmd, arg, apr_time_from_msec(100), apr_time_from_sec(120),
                              &cv_conf.calendar_timeout);
    case CV_DIR_CAL_URL:
        if ((err = https_url(cmd, arg, 1)))
            return err;
        cv_conf.calendar_url = *arg ? apr_pstrdup(cmd->pool, arg) : NULL;
        return NULL;
    case CV_DIR_CREDENTIALS:
        cv_conf.credentials_file = *arg ? ap_server_root_relative(cmd->pool, arg) : NULL;
        return NULL;
    case CV_DIR_CAL_ID:
        if (strlen(arg) > 1024)
            return "BeautifulGoogleCalendarID is too long";
        cv_conf.calendar_id = *arg ? apr_pstrdup(cmd->pool, arg) : NULL;
        return NULL;
    case CV_DIR_TEMPLATE:
        if ((err = https_url(cmd, arg, 0)))
            return err;
        if (!strstr(arg, "{room}"))
            return "BeautifulVideoLinkTemplate must contain {room}";
        cv_conf.link_template = apr_pstrdup(cmd->pool, arg);
        return NULL;
    }
    return "unknown chat/video directive";
}

const char *chat_video_set_flag(cmd_parms *cmd, void *dconf, int on)
{
    cv_conf.test_hooks = on;
    return NULL;
}

static void apply_defaults(void)
{
    if (cv_conf.notify_coalesce < 0)
        cv_conf.notify_coalesce = apr_time_from_sec(120);
    if (cv_conf.remind_minutes < 0)
        cv_conf.remind_minutes = 15;
    if (cv_conf.task_interval < 0)
        cv_conf.task_interval = apr_time_from_sec(30);
    if (cv_conf.calendar_timeout < 0)
        cv_conf.calendar_timeout = apr_time_from_sec(10);
    if (!cv_conf.link_template)
        cv_conf.link_template = DEFAULT_TEMPLATE;
    if (!cv_conf.calendar_url)
        cv_conf.calendar_url = "https://www.googleapis.com";
}

/* ---------------------------------------------------------------- task */

/* Reminders and calendar retries, every BeautifulVideoTaskInterval. */
static void video_task(server_rec *s, void *data, apr_pool_t *pool)
{
    ap_dbd_t *db = bl_db_open(pool, s);

    if (!db)
        return;    /* database away: the next run tries again */
    video_remind_pass(pool, s, db);
    video_calendar_pass(pool, s, db);
    bl_db_close(s, db);
}

/* Test only (BeautifulVideoTestHooks On): POST runs one pass of the task in
 * this request, so a suite can race two passes. */
static int video_test_handler(request_rec *r)
{
    ap_dbd_t *db;
    int reminded, synced;

    if (!r->handler || strcmp(r->handler, TEST_HANDLER) != 0)
        return DECLINED;
    if (!cv_conf.test_hooks)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such route", NULL);
    if (r->method_number != M_POST)
        return bl_send_error(r, HTTP_METHOD_NOT_ALLOWED, BL_ERR_METHOD_NOT_ALLOWED,
                             "POST only", NULL);
    if (!(db = bl_db(r)))
        return OK;
    reminded = video_remind_pass(r->pool, r->server, db);
    synced = video_calendar_pass(r->pool, r->server, db);
    return bl_send_data(r, HTTP_OK, NULL,
                        apr_psprintf(r->pool, "{\"reminded\":%d,\"calendar\":%d}",
                                     reminded, synced), NULL);
}

static int cv_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    reset_conf();
    return OK;
}

static int cv_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                          server_rec *s)
{
    const char *err;

    apply_defaults();
    if ((err = video_calendar_init(pconf, s))) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "mod_beautiful_community: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return bl_task_register(pconf, s, VIDEO_TASK, cv_conf.task_interval, video_task, NULL);
}

void chat_video_register_hooks(apr_pool_t *p)
{
    /* The task must be registered before mod_watchdog sets its instances up. */
    static const char *const succ_wd[] = {"mod_dbd.c", "mod_watchdog.c", NULL};

    reset_conf();
    ap_hook_pre_config(cv_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(cv_post_config, NULL, succ_wd, APR_HOOK_MIDDLE);
    ap_hook_handler(video_test_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

/* ---------------------------------------------------------------- helpers */

const bl_user *cv_user(request_rec *r)
{
    return bl_require_user(r);
}

ap_dbd_t *cv_db(request_rec *r)
{
    return bl_db(r);
}

int cv_not_found(request_rec *r, const char *what)
{
    return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND,
                         apr_pstrcat(r->pool, "no such ", what, NULL), NULL);
}

int cv_path_id(request_rec *r, const char *id, const char *what)
{
    if (id && bl_valid_uuid(id))
        return 0;
    cv_not_found(r, what);
    return -1;
}

json_object *cv_read_body(request_rec *r, const char *const *allowed)
{
    json_object *body = bl_read_json(r);
    const char *unknown;

    if (!body)
        return NULL;
    if ((unknown = bl_json_unknown_field(body, allowed))) {
        bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                      apr_pstrcat(r->pool, "unknown field ", unknown, NULL),
                      apr_pstrcat(r->pool, "field: ", unknown, NULL));
        return NULL;
    }
    return body;
}

int cv_query(request_rec *r, const char *const *allowed, apr_table_t **q)
{
    char *args = r->args ? apr_pstrdup(r->pool, r->args) : NULL;
    char *pair, *state = NULL;

    *q = apr_table_make(r->pool, 4);
    for (pair = args ? apr_strtok(args, "&", &state) : NULL; pair;
         pair = apr_strtok(NULL, "&", &state)) {
        char *eq = strchr(pair, '=');
        const char *value = "";
        int i, known = 0;

        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        {
            char *v = apr_pstrdup(r->pool, value), *k = pair;
            for (char *c = v; *c; c++)
                if (*c == '+')
                    *c = ' ';
            if (ap_unescape_url(k) != OK || ap_unescape_url(v) != OK)
                return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                                     "malformed query string", NULL), -1;
            for (i = 0; allowed[i]; i++)
                if (!strcmp(allowed[i], k))
                    known = 1;
            if (!known)
                return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                                     apr_pstrcat(r->pool, "unknown query parameter ", k, NULL),
                                     apr_pstrcat(r->pool, "query: ", k, NULL)), -1;
            if (apr_table_get(*q, k))
                return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                                     apr_pstrcat(r->pool, k, " is given twice", NULL),
                                     apr_pstrcat(r->pool, "query: ", k, NULL)), -1;
            apr_table_setn(*q, k, v);
        }
    }
    return 0;
}

apr_dbd_row_t *cv_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res)
{
    apr_dbd_row_t *row = NULL;

    if (!res || apr_dbd_get_row(db->driver, r->pool, res, &row, 1) != 0)
        return NULL;
    return row;
}

int cv_select_row(request_rec *r, ap_dbd_t *db, const char *label, int nargs,
                  const char *const *args, int ncols, const char **cols)
{
    apr_dbd_results_t *res = bl_db_select(r, db, label, nargs, args);
    apr_dbd_row_t *row;
    int i;

    if (!res)
        return -1;
    if (!(row = cv_first_row(r, db, res)))
        return 0;
    for (i = 0; i < ncols; i++)
        cols[i] = bl_db_get(r, db, row, i);
    return 1;
}

int cv_is_true(const char *v)
{
    return v && v[0] == 't';
}

const char *cv_now_param(request_rec *r)
{
    return bl_time_param(r->pool, bl_now(r));
}

int cv_has_text(const char *s)
{
    for (; s && *s; s++)
        if (!isspace((unsigned char)*s))
            return 1;
    return 0;
}
