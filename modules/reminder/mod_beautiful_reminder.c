/* mod_beautiful_reminder — recurring medication and appointment reminders:
 * handler "beautiful-reminder" for /api/v1/reminders... and the scheduler
 * task that fires them (scheduler.c).
 *
 * This file holds the module: directives, hooks, the route table and the
 * dispatcher. Each route lives in the file named after its job. */
#include "reminder_private.h"
#include "router.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>

#define REMINDER_HANDLER "beautiful-reminder"
#define SCHEDULER_TASK "beautiful-reminder"
#define FEED_PATH "/api/v1/reminders/calendar.ics"

static bl_router *reminder_router;

static const struct {
    const char *method;
    const char *pattern;
    reminder_route_fn *fn;
} reminder_routes[] = {
    {"GET", "/reminders", reminders_list},
    {"POST", "/reminders", reminders_create},
    {"GET", "/reminders/upcoming", reminders_upcoming},
    {"GET", "/reminders/adherence", reminders_adherence},
    {"POST", "/reminders/calendar-token", reminders_calendar_token},
    {"GET", "/reminders/calendar.ics", reminders_calendar_feed},
    {"GET", "/reminders/care-circle", care_circle_list},
    {"POST", "/reminders/care-circle", care_circle_invite},
    {"POST", "/reminders/care-circle/:id/accept", care_circle_accept},
    {"DELETE", "/reminders/care-circle/:id", care_circle_delete},
    {"GET", "/reminders/:id", reminders_get},
    {"PUT", "/reminders/:id", reminders_update},
    {"DELETE", "/reminders/:id", reminders_delete},
    {"POST", "/reminders/:id/complete", reminders_complete},
    {"POST", "/reminders/:id/snooze", reminders_snooze},
    {"POST", "/reminders/:id/skip", reminders_skip},
    {"GET", "/reminders/:id/logs", reminders_logs},
    {NULL, NULL, NULL}
};

/* ---------------------------------------------------------------- config */

const reminder_conf *reminder_config(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &beautiful_reminder_module);
}

static void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    reminder_conf *c = apr_pcalloc(p, sizeof(*c));

    c->enabled = 1;
    c->interval = apr_time_from_sec(15);
    c->catch_up = apr_time_from_sec(3600);
    c->batch_size = 500;
    c->workers = 2;
    c->missed_after_min = 60;
    c->on_time_min = 60;
    return c;
}

/* Every setting is server-wide: one scheduler per host. */
static reminder_conf *global_conf(cmd_parms *cmd, const char **err)
{
    *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    return *err ? NULL
                : ap_get_module_config(cmd->server->module_config, &beautiful_reminder_module);
}

static const char *cmd_scheduler(cmd_parms *cmd, void *dc, int on)
{
    const char *err;
    reminder_conf *c = global_conf(cmd, &err);

    if (c)
        c->enabled = on;
    return err;
}

static const char *cmd_duration(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    reminder_conf *c = global_conf(cmd, &err);
    apr_interval_time_t t;

    if (!c)
        return err;
    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS || t <= 0)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a positive duration (e.g. 15, 500ms, "
                            "1h)", cmd->cmd->name, arg);
    if (cmd->info == (void *)1)
        c->interval = t;
    else
        c->catch_up = t;
    return NULL;
}

static const char *cmd_number(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    reminder_conf *c = global_conf(cmd, &err);
    char *end;
    apr_int64_t v;

    if (!c)
        return err;
    v = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || v < 1 || v > 10000)
        return apr_psprintf(cmd->pool, "%s: expected an integer from 1 to 10000",
                            cmd->cmd->name);
    if (cmd->info == (void *)4 && v > 8)
        return apr_psprintf(cmd->pool, "%s: expected an integer from 1 to 8", cmd->cmd->name);
    if (cmd->info == (void *)1)
        c->batch_size = (int)v;
    else if (cmd->info == (void *)4)
        c->workers = (int)v;
    else if (cmd->info == (void *)2)
        c->missed_after_min = (int)v;
    else
        c->on_time_min = (int)v;
    return NULL;
}

static const command_rec reminder_cmds[] = {
    AP_INIT_FLAG("BeautifulReminderScheduler", cmd_scheduler, NULL, RSRC_CONF,
                 "Run the reminder scheduler on this host (default On)"),
    AP_INIT_TAKE1("BeautifulReminderInterval", cmd_duration, (void *)1, RSRC_CONF,
                  "How often the scheduler looks for due reminders (default 15s)"),
    AP_INIT_TAKE1("BeautifulReminderCatchUp", cmd_duration, (void *)2, RSRC_CONF,
                  "Occurrences older than this when found are logged missed, not fired "
                  "(default 1h)"),
    AP_INIT_TAKE1("BeautifulReminderBatchSize", cmd_number, (void *)1, RSRC_CONF,
                  "Reminders claimed per transaction (default 500)"),
    AP_INIT_TAKE1("BeautifulReminderWorkers", cmd_number, (void *)4, RSRC_CONF,
                  "Database connections firing batches at once when many reminders are due "
                  "(1 to 8, default 2)"),
    AP_INIT_TAKE1("BeautifulReminderMissedAfter", cmd_number, (void *)2, RSRC_CONF,
                  "Minutes after which an unanswered medication dose without nag settings "
                  "is missed (default 60)"),
    AP_INIT_TAKE1("BeautifulReminderOnTime", cmd_number, (void *)3, RSRC_CONF,
                  "Minutes after its time within which a dose counts as taken on time "
                  "(default 60)"),
    {NULL}
};

/* ---------------------------------------------------------------- dispatch */

static int reminder_handler(request_rec *r)
{
    apr_table_t *params;
    void *handler;

    if (!r->handler || strcmp(r->handler, REMINDER_HANDLER) != 0)
        return DECLINED;
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (!(handler = bl_route(r, reminder_router, &params)))
        return OK;
    /* The feed authenticates by its token; everything else needs a user. */
    if (handler != (void *)reminders_calendar_feed && !bl_require_user(r))
        return OK;
    return ((reminder_route_fn *)handler)(r, params);
}

/* The feed token travels in the query string: never into the logs. */
static int reminder_redact_log(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, REMINDER_HANDLER) != 0 || !r->the_request)
        return DECLINED;
    if (strstr(r->the_request, FEED_PATH "?")) {
        const char *q = strstr(r->the_request, FEED_PATH "?");
        const char *end = q + strcspn(q, " ");
        r->the_request = apr_pstrcat(r->pool,
                                     apr_pstrmemdup(r->pool, r->the_request,
                                                    (apr_size_t)(q - r->the_request)),
                                     FEED_PATH "?[redacted]", end, NULL);
        r->args = NULL;
    }
    return DECLINED;
}

/* ---------------------------------------------------------------- hooks */

static int reminder_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                server_rec *s)
{
    const reminder_conf *c = reminder_config(s);
    int i;

    bl_db_prepare_all(s, reminder_statements);
    bl_db_prepare_all(s, reminder_scheduler_statements);
    reminder_router = bl_router_create(pconf);
    for (i = 0; reminder_routes[i].method; i++) {
        if (bl_router_add(reminder_router, reminder_routes[i].method,
                          reminder_routes[i].pattern, (void *)reminder_routes[i].fn) != 0) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "mod_beautiful_reminder: bad route %s %s",
                         reminder_routes[i].method, reminder_routes[i].pattern);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (!c->enabled)
        return OK;
    return bl_task_register(pconf, s, SCHEDULER_TASK, c->interval, reminder_scheduler_task,
                            NULL);
}

static void reminder_child_init(apr_pool_t *pchild, server_rec *s)
{
    reminder_metrics_init();
}

static void reminder_register_hooks(apr_pool_t *p)
{
    static const char *const succ_dbd_wd[] = {"mod_dbd.c", "mod_watchdog.c", NULL};
    static const char *const pred_log[] = {NULL};
    static const char *const succ_log[] = {"mod_log_config.c", NULL};

    ap_hook_post_config(reminder_post_config, NULL, succ_dbd_wd, APR_HOOK_MIDDLE);
    ap_hook_child_init(reminder_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(reminder_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(reminder_redact_log, pred_log, succ_log, APR_HOOK_REALLY_FIRST);
}

AP_DECLARE_MODULE(beautiful_reminder) = {
    STANDARD20_MODULE_STUFF,
    NULL,
    NULL,
    create_server_conf,
    NULL,
    reminder_cmds,
    reminder_register_hooks,
    AP_MODULE_FLAG_NONE
};
