/* headers.c — request id, security headers and CORS.
 *
 * Response headers go to r->err_headers_out so they survive an error
 * response (ap_send_error_response keeps only those). */
#include "core_hooks.h"
#include "uuid.h"

#include <http_protocol.h>
#include <http_log.h>
#include <apr_strings.h>
#include <apr_lib.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_CORS_METHODS "GET, POST, PUT, PATCH, DELETE, OPTIONS"
#define BL_CORS_HEADERS "Authorization, Content-Type, X-Request-ID, traceparent, tracestate"
#define BL_CORS_MAX_AGE "600"

/* ---------------------------------------------------------------- request id */

/* [A-Za-z0-9._-]{1,64}: safe in logs and headers as it is. */
static int valid_request_id(const char *s)
{
    apr_size_t n = 0;

    if (!s)
        return 0;
    for (; *s; s++, n++) {
        if (n >= 64 || !(apr_isalnum(*s) || *s == '.' || *s == '_' || *s == '-'))
            return 0;
    }
    return n > 0;
}

static const char *request_id(request_rec *r)
{
    const char *id = apr_table_get(r->headers_in, "X-Request-ID");
    request_rec *orig = r->prev ? r->prev : r->main;

    if (orig && apr_table_get(orig->subprocess_env, BL_ENV_REQUEST_ID))
        return apr_table_get(orig->subprocess_env, BL_ENV_REQUEST_ID);
    if (valid_request_id(id))
        return id;
    id = bl_uuid_v4(r->pool);
    return id ? id : apr_psprintf(r->pool, "%" APR_TIME_T_FMT, apr_time_now());
}

int bl_headers_post_read_request(request_rec *r)
{
    const char *id = request_id(r);

    apr_table_setn(r->subprocess_env, BL_ENV_REQUEST_ID, id);
    apr_table_setn(r->err_headers_out, "X-Request-ID", id);
    return DECLINED;
}

/* ---------------------------------------------------------------- security */

void bl_set_security_headers(request_rec *r)
{
    apr_table_t *h = r->err_headers_out;
    const bl_dir_conf *dc = bl_core_dir_conf(r);

    apr_table_setn(h, "X-Content-Type-Options", "nosniff");
    apr_table_setn(h, "X-Frame-Options", "DENY");
    apr_table_setn(h, "Referrer-Policy", "no-referrer");

    apr_table_setn(h, "Content-Security-Policy", dc && dc->csp ? dc->csp
                   : "default-src 'none'; frame-ancestors 'none'");
    apr_table_setn(h, "Cross-Origin-Resource-Policy", "same-origin");
    if (!apr_table_get(h, "Cache-Control"))
        apr_table_setn(h, "Cache-Control", "no-store");
    /* HSTS only means something over TLS (here or, per a trusted proxy,
     * at the edge); on plain HTTP browsers ignore it */
    if (!strcmp(ap_http_scheme(r), "https") || bl_proxy_forwarded_https(r))
        apr_table_setn(h, "Strict-Transport-Security", "max-age=63072000; includeSubDomains");
    if (!apr_table_get(h, "X-Request-ID")) {
        const char *id = apr_table_get(r->subprocess_env, BL_ENV_REQUEST_ID);
        if (id)
            apr_table_setn(h, "X-Request-ID", id);
    }
}

/* ---------------------------------------------------------------- CORS */

const char *bl_url_origin(apr_pool_t *p, const char *url)
{
    const char *host = url ? strstr(url, "://") : NULL;
    const char *slash = host ? strchr(host + 3, '/') : NULL;

    if (!host)
        return NULL;
    return slash ? apr_pstrmemdup(p, url, (apr_size_t)(slash - url)) : url;
}

static int cors_listed(request_rec *r, const char *origin)
{
    const apr_array_header_t *list = bl_core_server_conf(r->server)->cors_origins;
    int i;

    for (i = 0; list && i < list->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(list, i, const char *), origin))
            return 1;
    }
    return 0;
}

int bl_origin_allowed(request_rec *r, const char *origin)
{
    const char *own;

    if (!origin || !*origin)
        return 0;
    if (cors_listed(r, origin))
        return 1;
    own = bl_url_origin(r->pool, bl_public_base_url(r));
    return own && !strcmp(own, origin);
}

int bl_is_preflight(const request_rec *r)
{
    return r->method_number == M_OPTIONS
           && apr_table_get(r->headers_in, "Access-Control-Request-Method") != NULL;
}

/* Answers a preflight completely; runs before authentication, which a
 * browser never sends with one. */
static int cors_preflight(request_rec *r, const char *origin, int allowed)
{
    if (!allowed) {
        bl_note_error(r, BL_ERR_FORBIDDEN, "Origin not allowed");
        return HTTP_FORBIDDEN;
    }
    apr_table_setn(r->err_headers_out, "Access-Control-Allow-Methods", BL_CORS_METHODS);
    apr_table_setn(r->err_headers_out, "Access-Control-Allow-Headers", BL_CORS_HEADERS);
    apr_table_setn(r->err_headers_out, "Access-Control-Max-Age", BL_CORS_MAX_AGE);
    r->status = HTTP_NO_CONTENT;
    r->clength = 0;
    ap_finalize_request_protocol(r);
    return DONE;
}

static int apply_cors(request_rec *r)
{
    const char *origin = apr_table_get(r->headers_in, "Origin");
    int allowed;

    apr_table_mergen(r->err_headers_out, "Vary", "Origin");
    if (!origin)
        return DECLINED;
    allowed = cors_listed(r, origin);
    if (allowed) {
        apr_table_setn(r->err_headers_out, "Access-Control-Allow-Origin", origin);
        apr_table_setn(r->err_headers_out, "Access-Control-Allow-Credentials", "true");
        apr_table_setn(r->err_headers_out, "Access-Control-Expose-Headers",
                       "X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, "
                       "RateLimit-Reset");
    }
    if (bl_is_preflight(r))
        return cors_preflight(r, origin, allowed);
    return DECLINED;
}

int bl_headers_header_parser(request_rec *r)
{
    const bl_dir_conf *dc;

    if (!bl_core_api_enabled(r)) {
        /* Pages (not the API): their own policy and the other headers. */
        if ((dc = bl_core_dir_conf(r)) && dc->csp)
            bl_set_security_headers(r);
        return DECLINED;
    }
    bl_set_security_headers(r);
    return apply_cors(r);
}

/* ---------------------------------------------------------------- client */

const char *bl_client_ip(request_rec *r)
{
    return r->useragent_ip;
}

const char *bl_user_agent(request_rec *r)
{
    return apr_table_get(r->headers_in, "User-Agent");
}

void bl_set_route(request_rec *r, const char *route_template)
{
    request_rec *top = r;

    while (top->main)
        top = top->main;
    apr_table_set(top->notes, BL_NOTE_ROUTE, route_template);
    if (top != r)
        apr_table_set(r->notes, BL_NOTE_ROUTE, route_template);
}
