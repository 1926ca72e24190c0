/* envelope.c — the JSON response envelope (DESIGN.md §3).
 *
 * Handlers answer through bl_send_*. Errors httpd answers itself (401 from
 * authn, 403 from authz, 404, 405, 413, 500, 503 ...) in BeautifulAPI
 * locations go through an error output filter added by the
 * insert_error_filter hook: it drops httpd's HTML body and writes the
 * envelope with the same status. A filter (rather than ErrorDocument
 * redirects) keeps the original request — its headers, notes and per-dir
 * config — and cannot loop through authentication again. */
#include "core_hooks.h"
#include "json.h"

#include <http_protocol.h>
#include <http_log.h>
#include <util_filter.h>
#include <util_script.h>
#include <apr_strings.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_JSON_TYPE "application/json; charset=utf-8"
#define BL_ERROR_FILTER "BL_ERROR_ENVELOPE"

static ap_filter_rec_t *error_filter_handle;

const char *bl_timestamp_now(apr_pool_t *p)
{
    apr_time_exp_t t;
    char buf[32];
    apr_size_t len;

    apr_time_exp_gmt(&t, apr_time_now());
    apr_strftime(buf, &len, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &t);
    return apr_pstrmemdup(p, buf, len);
}

static int send_json(request_rec *r, int status, const char *json)
{
    apr_size_t len = strlen(json);

    bl_core_req_state(r)->answered = 1;
    r->status = status;
    ap_set_content_type(r, BL_JSON_TYPE);
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only)
        ap_rwrite(json, (int)len, r);
    return OK;
}

int bl_send_data(request_rec *r, int status, const char *message,
                 const char *data_json, const char *meta_json)
{
    const char *json = apr_pstrcat(r->pool, "{\"success\":true",
        message ? ",\"message\":" : "", message ? bl_json_quote(r->pool, message) : "",
        data_json ? ",\"data\":" : "", data_json ? data_json : "",
        meta_json ? ",\"meta\":" : "", meta_json ? meta_json : "",
        ",\"timestamp\":\"", bl_timestamp_now(r->pool), "\"}", NULL);
    return send_json(r, status, json);
}

int bl_send_object(request_rec *r, int status, const char *message, json_object *data)
{
    return bl_send_data(r, status, message, data ? bl_json_to_string(r->pool, data) : NULL,
                        NULL);
}

int bl_send_no_content(request_rec *r)
{
    bl_core_req_state(r)->answered = 1;
    r->status = HTTP_NO_CONTENT;
    r->clength = 0;
    return OK;
}

const char *bl_envelope_error_json(request_rec *r, int status, const char *code,
                                   const char *message, const char *details)
{
    return apr_pstrcat(r->pool, "{\"success\":false,\"error\":{\"code\":",
        bl_json_quote(r->pool, code), ",\"message\":", bl_json_quote(r->pool, message),
        details ? ",\"details\":" : "", details ? bl_json_quote(r->pool, details) : "",
        "},\"timestamp\":\"", bl_timestamp_now(r->pool), "\"}", NULL);
}

int bl_send_error(request_rec *r, int status, const char *code,
                  const char *message, const char *details)
{
    if (status == HTTP_UNAUTHORIZED && !apr_table_get(r->err_headers_out, "WWW-Authenticate"))
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", BL_WWW_AUTH);
    return send_json(r, status, bl_envelope_error_json(r, status, code, message, details));
}

int bl_send_unavailable(request_rec *r, const char *what)
{
    apr_table_setn(r->err_headers_out, "Retry-After", "5");
    return bl_send_error(r, HTTP_SERVICE_UNAVAILABLE, BL_ERR_UNAVAILABLE,
                         "The service is temporarily unavailable, try again shortly",
                         what ? apr_pstrcat(r->pool, "dependency: ", what, NULL) : NULL);
}

int bl_send_validation_error(request_rec *r, const char *field, const char *message)
{
    return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION, message,
                         field ? apr_pstrcat(r->pool, "field: ", field, NULL) : NULL);
}

/* ---------------------------------------------------------------- pagination */

const char *bl_pagination_meta(request_rec *r, int page, int per_page, long total)
{
    long pages = per_page > 0 ? (total + per_page - 1) / per_page : 0;
    return apr_psprintf(r->pool,
                        "{\"page\":%d,\"per_page\":%d,\"total\":%ld,\"total_pages\":%ld}",
                        page, per_page, total, pages);
}

int bl_pagination_args(request_rec *r, int *page, int *per_page)
{
    apr_table_t *args = NULL;
    const char *v;
    long n;

    *page = 1;
    *per_page = 20;
    if (!r->args)
        return 0;
    ap_args_to_table(r, &args);
    if ((v = apr_table_get(args, "page"))) {
        if (bl_parse_long(v, 1, 1000000, &n)) {
            bl_send_validation_error(r, "page", "page must be an integer from 1");
            return -1;
        }
        *page = (int)n;
    }
    if ((v = apr_table_get(args, "per_page"))) {
        if (bl_parse_long(v, 1, 100, &n)) {
            bl_send_validation_error(r, "per_page", "per_page must be an integer from 1 to 100");
            return -1;
        }
        *per_page = (int)n;
    }
    return 0;
}

/* ---------------------------------------------------------------- httpd's errors */

void bl_note_error(request_rec *r, const char *code, const char *message)
{
    apr_table_setn(r->notes, BL_NOTE_ERROR_CODE, code);
    apr_table_setn(r->notes, BL_NOTE_ERROR_MESSAGE, message);
}

static void default_error(int status, const char **code, const char **message)
{
    switch (status) {
    case HTTP_BAD_REQUEST:
        *code = "BAD_REQUEST"; *message = "The request could not be understood"; break;
    case HTTP_UNAUTHORIZED:
        *code = BL_ERR_UNAUTHORIZED; *message = "Authentication required"; break;
    case HTTP_FORBIDDEN:
        *code = BL_ERR_FORBIDDEN; *message = "You are not allowed to do this"; break;
    case HTTP_NOT_FOUND:
        *code = BL_ERR_NOT_FOUND; *message = "Not found"; break;
    case HTTP_METHOD_NOT_ALLOWED:
        *code = BL_ERR_METHOD_NOT_ALLOWED; *message = "Method not allowed"; break;
    case HTTP_REQUEST_TIME_OUT:
        *code = "REQUEST_TIMEOUT"; *message = "The request took too long to arrive"; break;
    case HTTP_LENGTH_REQUIRED:
        *code = "LENGTH_REQUIRED"; *message = "A Content-Length is required"; break;
    case HTTP_REQUEST_ENTITY_TOO_LARGE:
        *code = BL_ERR_TOO_LARGE; *message = "The request body is too large"; break;
    case HTTP_REQUEST_URI_TOO_LARGE:
        *code = "URI_TOO_LONG"; *message = "The request URI is too long"; break;
    case HTTP_UNSUPPORTED_MEDIA_TYPE:
        *code = BL_ERR_UNSUPPORTED_MEDIA; *message = "Unsupported content type"; break;
    case HTTP_TOO_MANY_REQUESTS:
        *code = BL_ERR_RATE_LIMITED; *message = "Too many requests, slow down"; break;
    case HTTP_NOT_IMPLEMENTED:
        *code = "NOT_IMPLEMENTED"; *message = "Method not implemented"; break;
    case HTTP_SERVICE_UNAVAILABLE:
        *code = BL_ERR_UNAVAILABLE;
        *message = "The service is temporarily unavailable, try again shortly"; break;
    default:
        if (status >= 500) {
            *code = BL_ERR_INTERNAL; *message = "Internal error";
        }
        else {
            *code = "BAD_REQUEST"; *message = "The request could not be processed";
        }
    }
}

/* The envelope for r->status, with the code/message a hook left in notes. */
static const char *error_body(request_rec *r)
{
    const char *code, *message;

    default_error(r->status, &code, &message);
    if (apr_table_get(r->notes, BL_NOTE_ERROR_CODE)) {
        code = apr_table_get(r->notes, BL_NOTE_ERROR_CODE);
        message = apr_table_get(r->notes, BL_NOTE_ERROR_MESSAGE);
        if (!message)
            message = "Request refused";
    }
    return bl_envelope_error_json(r, r->status, code, message,
                                  apr_table_get(r->notes, BL_NOTE_ERROR_DETAILS));
}

/* Swallows httpd's HTML error page; at EOS writes the envelope instead. */
static apr_status_t error_envelope_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    apr_bucket *e, *eos = NULL;
    const char *json;
    apr_size_t len;

    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);) {
        apr_bucket *next = APR_BUCKET_NEXT(e);
        /* nothing, not even a FLUSH, may reach the header filter before
         * the Content-Type is fixed */
        if (APR_BUCKET_IS_EOS(e))
            eos = e;
        else
            apr_bucket_delete(e);
        e = next;
    }
    if (!eos)
        return APR_SUCCESS;

    json = error_body(r);
    len = strlen(json);
    ap_set_content_type(r, BL_JSON_TYPE);
    ap_set_content_length(r, (apr_off_t)len);
    APR_BUCKET_INSERT_BEFORE(eos, apr_bucket_pool_create(json, len, r->pool,
                                                         f->c->bucket_alloc));
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

/* mod_authz_core answers 401 to an authenticated user that Require lines
 * refuse (the Basic-auth habit of prompting again). A valid access token
 * was presented, so asking for credentials again cannot help: it is 403. */
static void authenticated_but_refused(request_rec *r)
{
    const bl_req_state *st = ap_get_module_config(r->request_config, &beautiful_core_module);

    if (r->status != HTTP_UNAUTHORIZED || !r->user || !st || !st->user)
        return;
    r->status = HTTP_FORBIDDEN;
    r->status_line = NULL;
    apr_table_unset(r->err_headers_out, "WWW-Authenticate");
    if (!apr_table_get(r->notes, BL_NOTE_ERROR_CODE))
        bl_note_error(r, BL_ERR_FORBIDDEN, "You are not allowed to do this");
}

/* path is prefix or below it (a whole segment: not "/api/v10"). */
static int under(const char *path, const char *prefix)
{
    apr_size_t n = strlen(prefix);

    return path && !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

/* Errors httpd finds before the <Location> walk (a bad %-escape is 400,
 * %00 is 404) leave r->per_dir_config at the server's defaults, where
 * BeautifulAPI is unset: the URI decides then, by the prefixes
 * beautiful_core.conf marks as API. r->uri may be cut at a decoded %00;
 * parsed_uri.path is the other copy httpd keeps. */
static int error_in_api(request_rec *r)
{
    const bl_dir_conf *dc = bl_core_dir_conf(r);
    int merged = r->per_dir_config != r->server->lookup_defaults;

    if (dc && dc->api == 1)
        return 1;
    if (merged && dc && dc->api == 0)
        return 0;
    return under(r->uri, BL_API_PREFIX) || under(r->uri, "/health")
        || under(r->parsed_uri.path, BL_API_PREFIX) || under(r->parsed_uri.path, "/health");
}

/* insert_error_filter hook: httpd is about to answer an error itself. */
void bl_insert_error_filter(request_rec *r)
{
    authenticated_but_refused(r);
    if (r->status < 400 || !error_in_api(r))
        return;
    bl_set_security_headers(r);
    ap_add_output_filter_handle(error_filter_handle, NULL, r, r->connection);
}

void bl_envelope_register(void)
{
    error_filter_handle = ap_register_output_filter(BL_ERROR_FILTER, error_envelope_filter,
                                                    NULL, AP_FTYPE_CONTENT_SET);
}

/* "beautiful-api": the default handler under /api/v1, reached only when no
 * domain module claims the path. */
int bl_api_handler(request_rec *r)
{
    return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "No such route", NULL);
}
