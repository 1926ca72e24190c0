/* errorlog_json.c — BeautifulJSONErrorLog: every error log message of a
 * server, also written as one JSON object per line.
 *
 * An ErrorLogFormat can only shape a line around httpd's own escaping of
 * the message, which writes bytes that are not printable ASCII as \xHH:
 * not JSON. Here the error_log hook gets the message, undoes httpd's
 * escaping and writes it with JSON's (invalid UTF-8 as U+FFFD), with the
 * level, module, process, client, request id and trace id beside it. */
#include "core_hooks.h"

#include <http_core.h>
#include <http_log.h>
#include <apr_strings.h>
#include <apr_portable.h>
#include <unistd.h>

#define LINE_MAX_BYTES 16384

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
    "trace1", "trace2", "trace3", "trace4", "trace5", "trace6", "trace7", "trace8"
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The reverse of ap_escape_errorlog_item: \\ \" \b \n \r \t \v \xHH. */
static apr_size_t httpd_unescape(char *out, apr_size_t cap, const char *in)
{
    apr_size_t o = 0;

    while (*in && o + 1 < cap) {
        char c = *in++;

        if (c == '\\' && *in) {
            char e = *in++;
            switch (e) {
            case 'b': c = '\b'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'v': c = '\v'; break;
            case 'x':
                if (hexval(in[0]) >= 0 && hexval(in[1]) >= 0) {
                    c = (char)(hexval(in[0]) * 16 + hexval(in[1]));
                    in += 2;
                }
                else {
                    c = e;      /* not an escape httpd writes */
                }
                break;
            default: c = e; break;
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return o;
}

typedef struct {
    char buf[LINE_MAX_BYTES];
    apr_size_t len;
} json_line;

static void put_raw(json_line *l, const char *s)
{
    apr_size_t n = strlen(s);

    if (l->len + n < sizeof l->buf) {
        memcpy(l->buf + l->len, s, n);
        l->len += n;
    }
}

/* ,"key":"value" (or null); the first field has no comma. */
static void put_field(json_line *l, const char *key, const char *value, apr_size_t vlen)
{
    put_raw(l, l->len > 1 ? ",\"" : "\"");
    put_raw(l, key);
    put_raw(l, "\":");
    if (!value) {
        put_raw(l, "null");
        return;
    }
    put_raw(l, "\"");
    /* Leave room for the closing quote, the brace and the newline. */
    if (sizeof l->buf > l->len + 4)
        l->len += bl_log_json_escape(l->buf + l->len, sizeof l->buf - l->len - 4, value, vlen);
    put_raw(l, "\"");
}

static void put_text(json_line *l, const char *key, const char *value)
{
    put_field(l, key, value, value ? strlen(value) : 0);
}

static void put_number(json_line *l, const char *key, unsigned long n)
{
    char num[32];

    apr_snprintf(num, sizeof num, "%lu", n);
    put_raw(l, ",\"");
    put_raw(l, key);
    put_raw(l, "\":");
    put_raw(l, num);
}

static const char *request_env(const ap_errorlog_info *info, const char *name)
{
    const request_rec *r = info->r ? info->r : info->rmain;

    return r ? apr_table_get(r->subprocess_env, name) : NULL;
}

static void json_error_log(const ap_errorlog_info *info, const char *errstr)
{
    const bl_server_conf *sc;
    json_line line;
    char message[LINE_MAX_BYTES], when[40], status[120];
    apr_time_exp_t t;
    apr_size_t mlen;

    if (!info->s || !(sc = bl_core_server_conf(info->s)) || !sc->json_errorlog)
        return;
    apr_time_exp_gmt(&t, apr_time_now());
    apr_snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
                 t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
                 t.tm_sec, t.tm_usec);
    mlen = httpd_unescape(message, sizeof message, errstr ? errstr : "");

    line.len = 0;
    put_raw(&line, "{");
    put_text(&line, "time", when);
    put_text(&line, "level", info->level >= 0 && info->level < 16
                                 ? level_names[info->level] : NULL);
    put_text(&line, "module", info->module_index != APLOG_NO_MODULE
                                  ? ap_find_module_short_name(info->module_index) : NULL);
    put_number(&line, "pid", (unsigned long)getpid());
    put_number(&line, "tid", (unsigned long)apr_os_thread_current());
    put_text(&line, "client", info->c ? info->c->client_ip : NULL);
    put_text(&line, "request_id", request_env(info, BL_ENV_REQUEST_ID));
    put_text(&line, "trace_id", request_env(info, BL_ENV_TRACE_ID));
    put_text(&line, "error", info->status
                                 ? apr_strerror(info->status, status, sizeof status) : NULL);
    put_field(&line, "message", message, mlen);
    put_raw(&line, "}\n");
    /* One write per line: O_APPEND keeps lines of several children whole. */
    apr_file_write_full(sc->json_errorlog, line.buf, line.len, NULL);
}

static int open_json_errorlogs(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *main_server)
{
    apr_hash_t *opened = apr_hash_make(ptemp);
    server_rec *s;

    for (s = main_server; s; s = s->next) {
        bl_server_conf *sc = bl_core_server_conf(s);
        apr_status_t rv;

        if (!sc->json_errorlog_path)
            continue;
        sc->json_errorlog = apr_hash_get(opened, sc->json_errorlog_path, APR_HASH_KEY_STRING);
        if (sc->json_errorlog)
            continue;
        rv = apr_file_open(&sc->json_errorlog, sc->json_errorlog_path,
                           APR_FOPEN_WRITE | APR_FOPEN_APPEND | APR_FOPEN_CREATE,
                           APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD, plog);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, rv, main_server,
                         "BeautifulJSONErrorLog: cannot open %s", sc->json_errorlog_path);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        apr_hash_set(opened, sc->json_errorlog_path, APR_HASH_KEY_STRING, sc->json_errorlog);
    }
    return OK;
}

void bl_errorlog_json_register(void)
{
    /* After httpd opened its own logs, so a failure is reported there. */
    static const char *const after_core[] = {"core.c", NULL};

    ap_hook_open_logs(open_json_errorlogs, after_core, NULL, APR_HOOK_MIDDLE);
    ap_hook_error_log(json_error_log, NULL, NULL, APR_HOOK_MIDDLE);
}
