/* health.c — handler "beautiful-health".
 *
 *   GET /health        liveness: the process answers.
 *   GET /health/ready  readiness: PostgreSQL and Redis answer; 503 if not.
 *
 * The body is {status, checks, timestamp} at the top level, as probes and
 * monitors read it, plus the envelope's "success" (and "error" on 503) so
 * clients that read every response as an envelope also understand it.
 */
#include "core_private.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include <string.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_HEALTH_RETRY_AFTER "5"   /* seconds; a probe's usual period */

/* Tries this many pooled connections: after PostgreSQL or Redis restarts,
 * each child's idle connections fail once before they are re-opened, and
 * that must not take the server out of rotation. */
#define BL_HEALTH_ATTEMPTS 3

/* SELECT 1 on one pooled connection. */
static int db_ping(request_rec *r, ap_dbd_t *db)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    /* random=1 fetches the whole (one-row) result, so nothing is left pending. */
    int rv = apr_dbd_select(db->driver, r->pool, db->handle, &res, "SELECT 1", 1);

    if (rv == 0 && apr_dbd_get_row(db->driver, r->pool, res, &row, 1) == 0)
        return 1;
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "health: SELECT 1 failed: %s",
                  apr_dbd_error(db->driver, db->handle, rv));
    return 0;
}

/* A query, not just a look at the connection: one that was fine before
 * PostgreSQL went away still looks fine until it is used. A failed one goes
 * back to mod_dbd's pool, whose check re-opens it on the next attempt.
 * ap_dbd_open/close rather than ap_dbd_acquire, which would pin the failed
 * connection to this request. */
int bl_health_database_ok(request_rec *r)
{
    /* Looked up per call (a hash lookup): mod_dbd may be reloaded at a
     * restart, and core must load even where mod_dbd is not. */
    APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);

    for (int i = 0; dbd_open && dbd_close && i < BL_HEALTH_ATTEMPTS; i++) {
        ap_dbd_t *db = dbd_open(r->pool, r->server);
        int ok;
        if (!db)
            break;                      /* the pool cannot connect: down */
        /* a connection PostgreSQL closed while it sat idle reconnects
         * here, so the check passes as soon as the server is back */
        bl_db_ready_session(r->server, db);
        ok = db_ping(r, db);
        dbd_close(r->server, db);
        if (ok)
            return 1;
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "health: the database is unavailable");
    bl_metrics_count_db_error();
    return 0;
}

/* bl_redis_command counts and logs its own failures and reconnects on the
 * next command, so a connection broken by a Redis restart gets one retry. */
int bl_health_redis_ok(request_rec *r)
{
    const char *argv[] = {"PING"};
    redisReply *reply = NULL;

    for (int i = 0; !reply && i < 2; i++)
        reply = bl_redis_command(r, 1, argv, NULL);
    if (!reply)
        return 0;
    if (reply->type == REDIS_REPLY_STATUS && reply->str && strcmp(reply->str, "PONG") == 0)
        return 1;
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "health: Redis PING answered %s",
                  reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str : "unexpectedly");
    return 0;
}

static int health_send(request_rec *r, int status, const char *body)
{
    apr_size_t len = strlen(body);

    r->status = status;
    ap_set_content_type(r, "application/json; charset=utf-8");
    ap_set_content_length(r, (apr_off_t)len);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (!r->header_only)
        ap_rwrite(body, (int)len, r);
    return OK;
}

static int health_live(request_rec *r)
{
    bl_set_route(r, "/health");
    return health_send(r, HTTP_OK,
                       apr_psprintf(r->pool, "{\"success\":true,\"status\":\"ok\","
                                    "\"timestamp\":\"%s\"}\n", bl_timestamp_now(r->pool)));
}

static int health_ready(request_rec *r)
{
    int db_ok, redis_ok, ok;
    const char *checks;

    bl_set_route(r, "/health/ready");
    db_ok = bl_health_database_ok(r);
    redis_ok = bl_health_redis_ok(r);
    ok = db_ok && redis_ok;
    checks = apr_psprintf(r->pool, "{\"database\":\"%s\",\"redis\":\"%s\"}",
                          db_ok ? "ok" : "down", redis_ok ? "ok" : "down");
    if (ok)
        return health_send(r, HTTP_OK,
                           apr_psprintf(r->pool, "{\"success\":true,\"status\":\"ok\","
                                        "\"checks\":%s,\"timestamp\":\"%s\"}\n",
                                        checks, bl_timestamp_now(r->pool)));

    apr_table_setn(r->err_headers_out, "Retry-After", BL_HEALTH_RETRY_AFTER);
    return health_send(r, HTTP_SERVICE_UNAVAILABLE,
                       apr_psprintf(r->pool, "{\"success\":false,\"status\":\"unavailable\","
                                    "\"checks\":%s,\"error\":{\"code\":\"%s\",\"message\":"
                                    "\"A dependency is unavailable\"},\"timestamp\":\"%s\"}\n",
                                    checks, BL_ERR_UNAVAILABLE, bl_timestamp_now(r->pool)));
}

/* Which endpoint, from the end of the path: works under any mount point. */
static int path_ends_with(const char *uri, const char *suffix)
{
    size_t ulen = strlen(uri), slen = strlen(suffix);
    while (ulen > 1 && uri[ulen - 1] == '/')
        ulen--;
    return ulen >= slen && strncmp(uri + ulen - slen, suffix, slen) == 0;
}

int bl_health_handler(request_rec *r)
{
    int ready, live;

    ready = path_ends_with(r->uri, "/health/ready");
    live = !ready && path_ends_with(r->uri, "/health");
    if (!ready && !live)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "No such route", NULL);
    if (r->method_number != M_GET) {
        bl_set_route(r, ready ? "/health/ready" : "/health");
        apr_table_setn(r->err_headers_out, "Allow", "GET, HEAD");
        return bl_send_error(r, HTTP_METHOD_NOT_ALLOWED, BL_ERR_METHOD_NOT_ALLOWED,
                             "Only GET and HEAD are allowed here", NULL);
    }
    return ready ? health_ready(r) : health_live(r);
}
