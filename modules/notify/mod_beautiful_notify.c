/* mod_beautiful_notify — notification delivery.
 *
 * Rows in the notifications table (the outbox other modules write in their
 * own transactions) are delivered by a background task (core's
 * bl_task_register), in one child per host, outside any request; the
 * database claim keeps each row delivered once across hosts. This file
 * holds the configuration and the hooks; delivery.c is the worker, email.c
 * and its transports send. */
#include "notify_private.h"

#include <http_log.h>
#include <http_core.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <curl/curl.h>
#include <unixd.h>

#include <errno.h>
#include <unistd.h>

#define BL_NOTIFY_TASK "beautiful-notify"
#define BL_DEFAULT_FROM "Beautiful Life <no-reply@beautiful-life.invalid>"
#define BL_DEFAULT_MAIL_DIR "/var/lib/beautiful/mail"
#define BL_DEFAULT_SMS_DIR "/var/lib/beautiful/sms"
#define BL_DEFAULT_PUSH_DIR "/var/lib/beautiful/push"
#define BL_CREDENTIALS_MAX 4096

bl_notify_conf *bl_notify_server_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &beautiful_notify_module);
}

static void *notify_create_server_conf(apr_pool_t *p, server_rec *s)
{
    bl_notify_conf *c = apr_pcalloc(p, sizeof(*c));
    const char *err;

    c->enabled = 1;
    c->interval = apr_time_from_sec(1);
    c->batch_size = 20;
    c->max_attempts = 5;
    c->backoff_base = apr_time_from_sec(30);
    c->backoff_max = apr_time_from_sec(3600);
    c->lease = apr_time_from_sec(1800);
    c->mail.transport = BL_MAIL_FILE;
    c->mail.from = BL_DEFAULT_FROM;
    err = bl_mail_parse_from(p, c->mail.from, &c->mail.from_addr, &c->mail.from_domain);
    (void)err; /* the default is valid */
    c->mail.dir = BL_DEFAULT_MAIL_DIR;
    c->mail.smtp_url = "smtp://127.0.0.1:25";
    c->mail.smtp_tls = BL_TLS_REQUIRED;
    c->mail.smtp_connect_timeout = apr_time_from_sec(10);
    c->mail.smtp_timeout = apr_time_from_sec(60);
    c->sms.dir = BL_DEFAULT_SMS_DIR;
    c->push.dir = BL_DEFAULT_PUSH_DIR;
    return c;
}

/* ---------------------------------------------------------------- directives */

/* Every setting here is server-wide: there is one worker per host. */
static bl_notify_conf *global_conf(cmd_parms *cmd, const char **err)
{
    *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    return *err ? NULL : bl_notify_server_conf(cmd->server);
}

static const char *parse_duration(cmd_parms *cmd, const char *arg,
                                  apr_interval_time_t *out)
{
    apr_interval_time_t t;

    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS || t <= 0)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a positive duration "
                            "(e.g. 30, 500ms, 2min)", cmd->cmd->name, arg);
    *out = t;
    return NULL;
}

static const char *parse_int(cmd_parms *cmd, const char *arg, int min, int max,
                             int *out)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || v < min || v > max)
        return apr_psprintf(cmd->pool, "%s: expected an integer from %d to %d",
                            cmd->cmd->name, min, max);
    *out = (int)v;
    return NULL;
}

static const char *cmd_delivery(cmd_parms *cmd, void *dc, int on)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    if (c)
        c->enabled = on;
    return err;
}

static const char *cmd_interval(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    return c ? parse_duration(cmd, arg, &c->interval) : err;
}

static const char *cmd_batch_size(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    return c ? parse_int(cmd, arg, 1, 1000, &c->batch_size) : err;
}

static const char *cmd_max_attempts(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    return c ? parse_int(cmd, arg, 1, 100, &c->max_attempts) : err;
}

static const char *cmd_backoff(cmd_parms *cmd, void *dc, const char *base,
                               const char *max)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    if (!c)
        return err;
    if ((err = parse_duration(cmd, base, &c->backoff_base)) != NULL)
        return err;
    if (max && (err = parse_duration(cmd, max, &c->backoff_max)) != NULL)
        return err;
    if (c->backoff_max < c->backoff_base)
        return "BeautifulNotifyBackoff: the maximum is smaller than the base";
    return NULL;
}

static const char *cmd_lease(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    return c ? parse_duration(cmd, arg, &c->lease) : err;
}

static const char *cmd_mail_transport(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    if (!c)
        return err;
    if (!strcasecmp(arg, "file"))
        c->mail.transport = BL_MAIL_FILE;
    else if (!strcasecmp(arg, "smtp"))
        c->mail.transport = BL_MAIL_SMTP;
    else
        return "BeautifulMailTransport: expected file or smtp";
    return NULL;
}

static const char *cmd_mail_from(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    if (!c)
        return err;
    err = bl_mail_parse_from(cmd->pool, arg, &c->mail.from_addr, &c->mail.from_domain);
    if (err)
        return apr_pstrcat(cmd->pool, "BeautifulMailFrom: ", err, NULL);
    c->mail.from = arg;
    return NULL;
}

static const char *cmd_mail_dir(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    if (!c)
        return err;
    c->mail.dir = ap_server_root_relative(cmd->pool, arg);
    return c->mail.dir ? NULL : "BeautifulMailDir: invalid path";
}

static const char *cmd_smtp_url(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    if (!c)
        return err;
    if (strncasecmp(arg, "smtp://", 7) && strncasecmp(arg, "smtps://", 8))
        return "BeautifulSMTPURL: expected smtp://host[:port] or smtps://host[:port]";
    c->mail.smtp_url = arg;
    return NULL;
}

static const char *cmd_smtp_starttls(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    if (!c)
        return err;
    if (!strcasecmp(arg, "off"))
        c->mail.smtp_tls = BL_TLS_OFF;
    else if (!strcasecmp(arg, "try"))
        c->mail.smtp_tls = BL_TLS_TRY;
    else if (!strcasecmp(arg, "required"))
        c->mail.smtp_tls = BL_TLS_REQUIRED;
    else
        return "BeautifulSMTPStartTLS: expected off, try or required";
    return NULL;
}

/* The file holds "user:password" on its first line. It is read here, at
 * start-up as root, so it can stay readable by root only. */
static const char *cmd_smtp_credentials(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);
    const char *path;
    apr_file_t *f;
    char buf[BL_CREDENTIALS_MAX];
    apr_size_t len = sizeof(buf) - 1;
    char *colon;
    apr_status_t rv;

    if (!c)
        return err;
    path = ap_server_root_relative(cmd->pool, arg);
    rv = path ? apr_file_open(&f, path, APR_FOPEN_READ, 0, cmd->temp_pool) : APR_EBADPATH;
    if (rv != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "BeautifulSMTPCredentialsFile: cannot open %s", arg);
    rv = apr_file_read(f, buf, &len);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF)
        return apr_psprintf(cmd->pool, "BeautifulSMTPCredentialsFile: cannot read %s", arg);
    buf[len] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    colon = strchr(buf, ':');
    if (!colon || colon == buf)
        return "BeautifulSMTPCredentialsFile: expected user:password on the first line";
    *colon = '\0';
    c->mail.smtp_user = apr_pstrdup(cmd->pool, buf);
    c->mail.smtp_password = apr_pstrdup(cmd->pool, colon + 1);
    memset(buf, 0, sizeof(buf));
    return NULL;
}

static const char *cmd_smtp_timeout(cmd_parms *cmd, void *dc, const char *connect,
                                    const char *total)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    if (!c)
        return err;
    if ((err = parse_duration(cmd, connect, &c->mail.smtp_connect_timeout)) != NULL)
        return err;
    if (total && (err = parse_duration(cmd, total, &c->mail.smtp_timeout)) != NULL)
        return err;
    return NULL;
}

/* BeautifulSMSDir, BeautifulPushDir */
static const char *cmd_sink_dir(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);
    const char *dir;

    if (!c)
        return err;
    if (!(dir = ap_server_root_relative(cmd->pool, arg)))
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": invalid path", NULL);
    if (cmd->info == (void *)1)
        c->sms.dir = dir;
    else
        c->push.dir = dir;
    return NULL;
}

/* A base URL: http(s)://host[:port][/path], no trailing slash kept. An
 * empty value (an unset environment variable) leaves the file sink. */
static const char *base_url(cmd_parms *cmd, const char *arg, const char **out)
{
    size_t len = strlen(arg);

    if (len == 0) {
        *out = NULL;
        return NULL;
    }
    if (strncasecmp(arg, "https://", 8) && strncasecmp(arg, "http://", 7))
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expected an http:// or https:// URL",
                           NULL);
    while (len > 0 && arg[len - 1] == '/')
        len--;
    *out = apr_pstrndup(cmd->pool, arg, len);
    return NULL;
}

static const char *cmd_twilio_url(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    return c ? base_url(cmd, arg, &c->sms.url) : err;
}

static const char *cmd_twilio_string(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    if (!c)
        return err;
    switch ((int)(apr_uintptr_t)cmd->info) {
    case 1:
        c->sms.account_sid = arg;
        break;
    case 2:
        c->sms.auth_token = arg;
        break;
    default:
        c->sms.from = arg;
        break;
    }
    return NULL;
}

static const char *cmd_fcm_url(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);

    return c ? base_url(cmd, arg, &c->push.url) : err;
}

/* Read here, at start-up as root: the key file can stay root's. */
static const char *cmd_fcm_credentials(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;
    bl_notify_conf *c = global_conf(cmd, &err);
    const char *path;

    if (!c)
        return err;
    if (!*arg)
        return NULL;
    path = ap_server_root_relative(cmd->pool, arg);
    if (!path || !(c->push.credentials = bl_google_credentials_load(cmd->pool, path, &err)))
        return apr_psprintf(cmd->pool, "BeautifulFCMCredentials %s: %s", arg,
                            path ? err : "invalid path");
    return NULL;
}

static const command_rec notify_cmds[] = {
    AP_INIT_FLAG("BeautifulNotifyDelivery", cmd_delivery, NULL, RSRC_CONF,
                 "On (default): this host runs the delivery worker"),
    AP_INIT_TAKE1("BeautifulNotifyInterval", cmd_interval, NULL, RSRC_CONF,
                  "How often the worker looks for due notifications (default 1s)"),
    AP_INIT_TAKE1("BeautifulNotifyBatchSize", cmd_batch_size, NULL, RSRC_CONF,
                  "Notifications claimed per pass (default 20)"),
    AP_INIT_TAKE1("BeautifulNotifyMaxAttempts", cmd_max_attempts, NULL, RSRC_CONF,
                  "Attempts before a notification is marked failed (default 5)"),
    AP_INIT_TAKE12("BeautifulNotifyBackoff", cmd_backoff, NULL, RSRC_CONF,
                   "Retry delay: base, doubled per attempt, up to max (default 30s 1h)"),
    AP_INIT_TAKE1("BeautifulNotifyLease", cmd_lease, NULL, RSRC_CONF,
                  "How long a claimed notification may stay 'sending' before it "
                  "is retried (default 30min)"),
    AP_INIT_TAKE1("BeautifulMailTransport", cmd_mail_transport, NULL, RSRC_CONF,
                  "file (default: .eml files in BeautifulMailDir) or smtp"),
    AP_INIT_TAKE1("BeautifulMailFrom", cmd_mail_from, NULL, RSRC_CONF,
                  "From header: \"Name <address>\" or address"),
    AP_INIT_TAKE1("BeautifulMailDir", cmd_mail_dir, NULL, RSRC_CONF,
                  "Directory the file transport writes to"),
    AP_INIT_TAKE1("BeautifulSMTPURL", cmd_smtp_url, NULL, RSRC_CONF,
                  "smtp://host:port or smtps://host:port of the relay"),
    AP_INIT_TAKE1("BeautifulSMTPStartTLS", cmd_smtp_starttls, NULL, RSRC_CONF,
                  "off, try or required (default) for smtp:// URLs"),
    AP_INIT_TAKE1("BeautifulSMTPCredentialsFile", cmd_smtp_credentials, NULL, RSRC_CONF,
                  "File whose first line is user:password for SMTP AUTH"),
    AP_INIT_TAKE12("BeautifulSMTPTimeout", cmd_smtp_timeout, NULL, RSRC_CONF,
                   "Connect timeout and whole-message timeout (default 10s 60s)"),
    AP_INIT_TAKE1("BeautifulSMSDir", cmd_sink_dir, (void *)1, RSRC_CONF,
                  "SMS file sink directory (used when BeautifulTwilioURL is unset)"),
    AP_INIT_TAKE1("BeautifulPushDir", cmd_sink_dir, (void *)2, RSRC_CONF,
                  "Push file sink directory (used when BeautifulFCMURL is unset)"),
    AP_INIT_TAKE1("BeautifulTwilioURL", cmd_twilio_url, NULL, RSRC_CONF,
                  "Base URL of Twilio's API (https://api.twilio.com); empty: file sink"),
    AP_INIT_TAKE1("BeautifulTwilioAccountSID", cmd_twilio_string, (void *)1, RSRC_CONF,
                  "Twilio Account SID"),
    AP_INIT_TAKE1("BeautifulTwilioAuthToken", cmd_twilio_string, (void *)2, RSRC_CONF,
                  "Twilio Auth Token"),
    AP_INIT_TAKE1("BeautifulTwilioFrom", cmd_twilio_string, (void *)3, RSRC_CONF,
                  "Sender: a Twilio number in E.164 or a Messaging Service SID"),
    AP_INIT_TAKE1("BeautifulFCMURL", cmd_fcm_url, NULL, RSRC_CONF,
                  "Base URL of FCM (https://fcm.googleapis.com); empty: file sink"),
    AP_INIT_TAKE1("BeautifulFCMCredentials", cmd_fcm_credentials, NULL, RSRC_CONF,
                  "Google service-account JSON file for FCM"),
    {NULL}
};

/* ---------------------------------------------------------------- hooks */

static void notify_task(server_rec *s, void *worker, apr_pool_t *pool)
{
    bl_notify_worker_run(worker, pool);
}

static apr_status_t notify_curl_cleanup(void *unused)
{
    curl_global_cleanup();
    return APR_SUCCESS;
}

static int check_mail_dir(const bl_mail_conf *mail, apr_pool_t *ptemp, server_rec *s)
{
    apr_finfo_t fi;

    if (mail->transport != BL_MAIL_FILE)
        return OK;
    if (apr_stat(&fi, mail->dir, APR_FINFO_TYPE, ptemp) != APR_SUCCESS
        || fi.filetype != APR_DIR) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "BeautifulMailDir %s is not a directory", mail->dir);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* A sink directory, made at start-up (as root) for the child user. One
 * that cannot be made does not stop httpd (a host may never send SMS):
 * its rows are retried, with the reason in last_error, until it exists. */
static int make_sink_dir(apr_pool_t *p, server_rec *s, const char *dir)
{
    apr_status_t rv = apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, p);

    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "cannot create the sink directory %s: its notifications wait for it", dir);
        return OK;
    }
    if (geteuid() == 0 && chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0)
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s,
                     "cannot hand %s to the httpd user", dir);
    return OK;
}

static int check_sms_push(const bl_notify_conf *conf, apr_pool_t *ptemp, server_rec *s)
{
    int rc;

    if (conf->sms.url && (!conf->sms.account_sid || !conf->sms.auth_token || !conf->sms.from)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "BeautifulTwilioURL needs "
                     "BeautifulTwilioAccountSID, BeautifulTwilioAuthToken and BeautifulTwilioFrom");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (conf->push.url && (!conf->push.credentials
                           || !bl_google_project_id(conf->push.credentials))) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "BeautifulFCMURL needs "
                     "BeautifulFCMCredentials naming a service account with a project_id");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!conf->sms.url && (rc = make_sink_dir(ptemp, s, conf->sms.dir)) != OK)
        return rc;
    if (!conf->push.url && (rc = make_sink_dir(ptemp, s, conf->push.dir)) != OK)
        return rc;
    return OK;
}

static int notify_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    bl_notify_conf *conf = bl_notify_server_conf(s);
    int rc;

    if (!APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare)
        || !APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "mod_beautiful_notify needs mod_dbd (LoadModule dbd_module)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* mod_dbd builds its connection groups in its own post_config: the
     * statements must be registered before (see register_hooks). */
    bl_db_prepare_all(s, notify_inbox_statements);
    bl_db_prepare_all(s, notify_preference_statements);
    bl_db_prepare_all(s, notify_device_statements);
    bl_db_prepare_all(s, notify_admin_statements);
    notify_routes_init(pconf, s);
    if (!conf->enabled)
        return OK;
    bl_db_prepare_all(s, bl_notify_statements);
    /* The first pass only checks the configuration. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    if ((rc = check_mail_dir(&conf->mail, ptemp, s)) != OK
        || (rc = check_sms_push(conf, ptemp, s)) != OK)
        return rc;
    if (conf->lease <= (apr_interval_time_t)conf->batch_size * conf->mail.smtp_timeout
        && conf->mail.transport == BL_MAIL_SMTP)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "BeautifulNotifyLease is shorter than a batch of SMTP timeouts: "
                     "a slow relay may see a message twice");
    /* libcurl's global state must be set up before threads exist. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "curl_global_init failed");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, NULL, notify_curl_cleanup, apr_pool_cleanup_null);
    /* a task of its own, so a slow SMTP relay never delays other tasks */
    return bl_task_register(pconf, s, BL_NOTIFY_TASK, conf->interval, notify_task,
                            bl_notify_worker_create(pconf, s));
}

static void notify_register_hooks(apr_pool_t *p)
{
    static const char *const succ[] = {"mod_dbd.c", "mod_watchdog.c", NULL};

    ap_hook_post_config(notify_post_config, NULL, succ, APR_HOOK_MIDDLE);
    ap_hook_handler(notify_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(beautiful_notify) = {
    STANDARD20_MODULE_STUFF,
    NULL,                        /* per-directory config */
    NULL,                        /* merge per-directory */
    notify_create_server_conf,   /* per-server config */
    NULL,                        /* merge per-server: settings are global */
    notify_cmds,
    notify_register_hooks,
    AP_MODULE_FLAG_NONE
};
