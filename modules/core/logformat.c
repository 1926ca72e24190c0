/* logformat.c — "%{item}J" for mod_log_config: a value as a JSON string
 * literal (quotes included) or null, so a LogFormat can write one valid
 * JSON object per line whatever a client sent. mod_log_config's own
 * escaping (\xHH) is not JSON; this one is (\", \\, \n, \u00XX, and bytes
 * that are not UTF-8 as U+FFFD).
 *
 * Items: time (request start, RFC 3339 UTC with milliseconds), request
 * (the request line), method, uri, query, protocol, user, handler, route
 * (bl_set_route's template), hdr:<request header>, resp:<response
 * header>, env:<variable>, note:<note>. */
#include "core_hooks.h"
#include "validate.h"

#include <mod_log_config.h>
#include <apr_strings.h>
#include <apr_time.h>

apr_size_t bl_log_json_escape(char *out, apr_size_t cap, const char *text, apr_size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)text;
    apr_size_t i = 0, o = 0;

    /* Room for the longest form (\u00XX or a 4-byte character) and a NUL. */
    while (i < len && o + 7 < cap) {
        unsigned char c = s[i];
        apr_size_t n = bl_utf8_sequence_length(s + i, len - i);

        if (n > 1) {                      /* a whole UTF-8 character */
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
            continue;
        }
        i++;
        if (n == 0) {                     /* not UTF-8: U+FFFD */
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
        }
        else if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        }
        else if (c == '\n' || c == '\r' || c == '\t') {
            out[o++] = '\\';
            out[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        }
        else if (c < 0x20 || c == 0x7f) {
            memcpy(out + o, "\\u00", 4);
            o += 4;
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
        else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return o;
}

/* The JSON string literal of s, or "null". */
static const char *json_literal(apr_pool_t *p, const char *s)
{
    apr_size_t len, cap;
    char *out;

    if (!s)
        return "null";
    len = strlen(s);
    cap = len * 6 + 8;
    out = apr_palloc(p, cap + 2);
    out[0] = '"';
    len = bl_log_json_escape(out + 1, cap, s, len);
    out[len + 1] = '"';
    out[len + 2] = '\0';
    return out;
}

static const char *request_time(request_rec *r)
{
    apr_time_exp_t t;

    apr_time_exp_gmt(&t, r->request_time);
    return apr_psprintf(r->pool, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                        t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour,
                        t.tm_min, t.tm_sec, t.tm_usec / 1000);
}

static const char *item_value(request_rec *r, const char *item)
{
    if (!strncmp(item, "hdr:", 4))
        return apr_table_get(r->headers_in, item + 4);
    if (!strncmp(item, "resp:", 5)) {
        const char *v = apr_table_get(r->err_headers_out, item + 5);
        return v ? v : apr_table_get(r->headers_out, item + 5);
    }
    if (!strncmp(item, "env:", 4))
        return apr_table_get(r->subprocess_env, item + 4);
    if (!strncmp(item, "note:", 5))
        return apr_table_get(r->notes, item + 5);
    if (!strcmp(item, "time"))
        return request_time(r);
    if (!strcmp(item, "request"))
        return r->the_request;
    if (!strcmp(item, "method"))
        return r->method;
    if (!strcmp(item, "uri"))
        return r->uri;
    if (!strcmp(item, "query"))
        return r->args;
    if (!strcmp(item, "protocol"))
        return r->protocol;
    if (!strcmp(item, "user"))
        return r->user;
    if (!strcmp(item, "handler"))
        return r->handler;
    if (!strcmp(item, "route"))
        return apr_table_get(r->notes, BL_NOTE_ROUTE);
    return NULL;
}

static const char *log_json_item(request_rec *r, char *item)
{
    request_rec *orig = r;

    /* The final request of an internal redirect holds what happened. */
    while (r->next)
        r = r->next;
    return json_literal(orig->pool, item_value(r, item));
}

int bl_logformat_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    APR_OPTIONAL_FN_TYPE(ap_register_log_handler) *reg =
        APR_RETRIEVE_OPTIONAL_FN(ap_register_log_handler);

    if (reg)
        reg(pconf, "J", log_json_item, 0);
    return OK;
}
