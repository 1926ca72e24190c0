/* body.c — reading request bodies with a size limit, and JSON bodies. */
#include "core_hooks.h"
#include "json.h"

#include <http_protocol.h>
#include <http_log.h>
#include <apr_strings.h>
#include <apr_lib.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_READ_CHUNK 8192

static int too_large(request_rec *r, apr_size_t max)
{
    return bl_send_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE, BL_ERR_TOO_LARGE,
                         "The request body is too large",
                         apr_psprintf(r->pool, "limit: %" APR_SIZE_T_FMT " bytes", max));
}

typedef struct {
    char *data;
    apr_size_t len, cap, max;
} body_buf;

/* Room for n more bytes, doubling up to max; -1 when over max. */
static int reserve(apr_pool_t *p, body_buf *b, apr_size_t n)
{
    apr_size_t cap = b->cap;
    char *data;

    if (n > b->max - b->len)
        return -1;
    if (b->len + n <= cap)
        return 0;
    while (cap < b->len + n)
        cap = cap * 2 > b->max ? b->max : cap * 2;
    data = apr_palloc(p, cap + 1);
    memcpy(data, b->data, b->len);
    b->data = data;
    b->cap = cap;
    return 0;
}

/* Appends the data buckets of bb; -1 when over the limit, -2 on error. */
static int collect(request_rec *r, apr_bucket_brigade *bb, body_buf *b, int *eos)
{
    apr_bucket *e;

    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = APR_BUCKET_NEXT(e)) {
        const char *data;
        apr_size_t n;

        if (APR_BUCKET_IS_EOS(e)) {
            *eos = 1;
            break;
        }
        if (APR_BUCKET_IS_METADATA(e))
            continue;
        if (apr_bucket_read(e, &data, &n, APR_BLOCK_READ) != APR_SUCCESS)
            return -2;
        if (reserve(r->pool, b, n))
            return -1;
        memcpy(b->data + b->len, data, n);
        b->len += n;
    }
    return 0;
}

int bl_read_body(request_rec *r, apr_size_t max_bytes, const char **body, apr_size_t *len)
{
    apr_size_t max = max_bytes ? max_bytes : bl_core_server_conf(r->server)->max_body;
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_bucket_brigade *bb;
    body_buf b = {NULL, 0, BL_READ_CHUNK, max};
    int eos = 0;

    *body = "";
    *len = 0;
    /* refuse before reading (and before a 100-continue invites the body) */
    if (cl) {
        apr_off_t declared;
        if (apr_strtoff(&declared, cl, NULL, 10) != APR_SUCCESS || declared < 0) {
            bl_send_error(r, HTTP_BAD_REQUEST, "BAD_REQUEST", "Invalid Content-Length", NULL);
            return -1;
        }
        if ((apr_uint64_t)declared > max) {
            too_large(r, max);
            return -1;
        }
        if ((apr_size_t)declared > b.cap)
            b.cap = (apr_size_t)declared;
    }
    if (b.cap > max)
        b.cap = max;
    b.data = apr_palloc(r->pool, b.cap + 1);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    while (!eos) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                         APR_BLOCK_READ, BL_READ_CHUNK);
        int rc;

        if (rv != APR_SUCCESS) {
            int status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
            if (status == AP_FILTER_ERROR)
                return -1;   /* the input filter has answered already */
            if (status == HTTP_REQUEST_ENTITY_TOO_LARGE)
                too_large(r, max);
            else
                bl_send_error(r, status, status == HTTP_REQUEST_TIME_OUT ? "REQUEST_TIMEOUT"
                              : "BAD_REQUEST", "The request body could not be read", NULL);
            return -1;
        }
        rc = collect(r, bb, &b, &eos);
        apr_brigade_cleanup(bb);
        if (rc == -1) {
            too_large(r, max);
            return -1;
        }
        if (rc < 0) {
            bl_send_error(r, HTTP_BAD_REQUEST, "BAD_REQUEST",
                          "The request body could not be read", NULL);
            return -1;
        }
    }
    b.data[b.len] = '\0';
    *body = b.data;
    *len = b.len;
    return 0;
}

/* application/json, parameters allowed; a charset must be UTF-8. */
static int is_json_type(request_rec *r)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *params, *cs;
    apr_size_t n = sizeof("application/json") - 1;

    if (!ct || strncasecmp(ct, "application/json", n))
        return 0;
    params = ct + n;
    while (*params == ' ' || *params == '\t')
        params++;
    if (*params && *params != ';')
        return 0;
    cs = ap_strcasestr(params, "charset=");
    if (!cs)
        return 1;
    cs += sizeof("charset=") - 1;
    if (*cs == '"')
        cs++;
    return !strncasecmp(cs, "utf-8", 5) && (!cs[5] || strchr("\";, \t", cs[5]));
}

json_object *bl_read_json(request_rec *r)
{
    const char *body, *err = NULL;
    apr_size_t len;
    json_object *obj;

    if (!is_json_type(r)) {
        bl_send_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE, BL_ERR_UNSUPPORTED_MEDIA,
                      "The request body must be application/json", NULL);
        return NULL;
    }
    if (bl_read_body(r, 0, &body, &len) != 0)
        return NULL;
    if (len == 0) {
        bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_MALFORMED_JSON,
                      "The request body is not valid JSON", "empty body");
        return NULL;
    }
    obj = bl_json_parse_object(r->pool, body, len, BL_JSON_DEFAULT_MAX_DEPTH, &err);
    if (!obj) {
        bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_MALFORMED_JSON,
                      "The request body is not valid JSON", err ? err : "parse error");
        return NULL;
    }
    return obj;
}
