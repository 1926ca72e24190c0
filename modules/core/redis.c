/* redis.c — the child's pool of Redis connections (hiredis 0.14).
 *
 * The event MPM runs many threads per child, and a hiredis context is not
 * thread-safe: connections live in an apr_reslist created in child_init.
 * A connection that saw an I/O error is invalidated instead of released,
 * so the next command opens a fresh one and a Redis restart heals itself.
 *
 * After a connect that failed only when its timeout ran out (a Redis host
 * that drops packets), the child treats Redis as down for a second:
 * commands fail at once instead of each waiting out the timeout again, so
 * such a Redis cannot hold every worker. A connect refused at once costs
 * nothing and starts no back-off, so a restarted Redis serves the very
 * next request. */
#include "core_hooks.h"
#include "escape.h"

#include <errno.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <apr_atomic.h>
#include <apr_reslist.h>
#include <apr_strings.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_REDIS_TTL apr_time_from_sec(60)
#define BL_REDIS_BACKOFF apr_time_from_sec(1)

typedef struct {
    const char *host;
    int port;
    apr_interval_time_t timeout;
    server_rec *s;
} redis_params;

/* Tries of one command across stale pooled connections (see command). */
#define BL_REDIS_STALE_TRIES 8

static apr_reslist_t *redis_pool;   /* per child; NULL before child_init */
/* apr_time_t before which no connect is tried; 0: none. Per child, read
 * and written by every worker thread. */
static volatile apr_uint64_t redis_retry_at;

static int redis_backing_off(void)
{
    return (apr_time_t)apr_atomic_read64(&redis_retry_at) > apr_time_now();
}

static void redis_back_off(void)
{
    apr_atomic_set64(&redis_retry_at, (apr_uint64_t)(apr_time_now() + BL_REDIS_BACKOFF));
}

static struct timeval to_timeval(apr_interval_time_t t)
{
    struct timeval tv;
    tv.tv_sec = (long)apr_time_sec(t);
    tv.tv_usec = (long)apr_time_usec(t);
    return tv;
}

static apr_status_t redis_construct(void **resource, void *params, apr_pool_t *pool)
{
    const redis_params *rp = params;
    struct timeval tv = to_timeval(rp->timeout);
    apr_time_t started;
    redisContext *c;

    /* APR 1.x calls this with the pool's lock held, so connects queue up:
     * those queued behind a timed-out one must not each wait again */
    if (redis_backing_off())
        return APR_ECONNREFUSED;
    started = apr_time_now();
    c = redisConnectWithTimeout(rp->host, rp->port, tv);
    if (!c || c->err) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, rp->s, "Redis %s:%d: %s", rp->host,
                     rp->port, c ? c->errstr : "cannot allocate context");
        if (c)
            redisFree(c);
        if (apr_time_now() - started >= rp->timeout / 2)
            redis_back_off();
        return APR_ECONNREFUSED;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        redisFree(c);
        return APR_EGENERAL;
    }
    *resource = c;
    return APR_SUCCESS;
}

static apr_status_t redis_destruct(void *resource, void *params, apr_pool_t *pool)
{
    redisFree(resource);
    return APR_SUCCESS;
}

void bl_redis_child_init(apr_pool_t *pchild, server_rec *s)
{
    const bl_server_conf *sc = bl_core_server_conf(s);
    redis_params *rp = apr_pcalloc(pchild, sizeof(*rp));
    int threads = 1;
    apr_status_t rv;

    rp->host = sc->redis_host;
    rp->port = sc->redis_port;
    rp->timeout = sc->redis_timeout;
    rp->s = s;
    apr_atomic_set64(&redis_retry_at, 0);
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    if (threads < 1)
        threads = 1;
    rv = apr_reslist_create(&redis_pool, 0, threads, threads, BL_REDIS_TTL,
                            redis_construct, redis_destruct, rp, pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "cannot create the Redis connection pool");
        redis_pool = NULL;
        return;
    }
    /* every worker thread may hold one; never wait longer than a command */
    apr_reslist_timeout_set(redis_pool, sc->redis_timeout);
}

static apr_status_t free_reply(void *reply)
{
    freeReplyObject(reply);
    return APR_SUCCESS;
}

/* One attempt on a pooled connection. *stale is set when the server had
 * closed it (a Redis restart since it was last used: EOF, or a reset on
 * write): worth a retry on another connection.
 * Logs on s (r when given). */
static redisReply *command_once(server_rec *s, request_rec *r, apr_pool_t *p, int argc,
                                const char **argv, const size_t *argvlen, int *stale)
{
    redisContext *c = NULL;
    redisReply *reply;
    apr_status_t rv = apr_reslist_acquire(redis_pool, (void **)&c);

    *stale = 0;
    if (rv != APR_SUCCESS) {
        if (r)
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "Redis unavailable");
        else
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "Redis unavailable");
        return NULL;
    }
    reply = redisCommandArgv(c, argc, argv, argvlen);
    if (!reply || c->err) {
        const char *cmd = bl_escape_log(p, argv[0], 16);

        /* Read errno before logging can change it; a timeout is not stale. */
        *stale = c->err == REDIS_ERR_EOF
                 || (c->err == REDIS_ERR_IO && (errno == ECONNRESET || errno == EPIPE));
        if (r)
            ap_log_rerror(APLOG_MARK, *stale ? APLOG_INFO : APLOG_ERR, 0, r,
                          "Redis command %s failed: %s", cmd, c->errstr);
        else
            ap_log_error(APLOG_MARK, *stale ? APLOG_INFO : APLOG_ERR, 0, s,
                         "Redis command %s failed: %s", cmd, c->errstr);
        if (reply)
            freeReplyObject(reply);
        apr_reslist_invalidate(redis_pool, c);
        return NULL;
    }
    apr_reslist_release(redis_pool, c);
    return reply;
}

static redisReply *command(server_rec *s, request_rec *r, apr_pool_t *p, int argc,
                           const char **argv, const size_t *argvlen)
{
    redisReply *reply = NULL;
    int stale = 1, tries;

    /* while backing off, fail without a word: the connect error was logged.
     * After a Redis restart every idle connection of the pool is stale; each
     * failed try drops one, so a few tries reach a fresh one. */
    for (tries = 0; redis_pool && !redis_backing_off() && !reply && stale
                    && tries < BL_REDIS_STALE_TRIES; tries++)
        reply = command_once(s, r, p, argc, argv, argvlen, &stale);
    if (!reply) {
        bl_metrics_count_redis_error();
        return NULL;
    }
    apr_pool_cleanup_register(p, reply, free_reply, apr_pool_cleanup_null);
    return reply;
}

redisReply *bl_redis_command(request_rec *r, int argc, const char **argv,
                             const size_t *argvlen)
{
    return command(r->server, r, r->pool, argc, argv, argvlen);
}

redisReply *bl_redis_server_command(server_rec *s, apr_pool_t *p, int argc,
                                    const char **argv, const size_t *argvlen)
{
    return command(s, NULL, p, argc, argv, argvlen);
}
