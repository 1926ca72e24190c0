/* ratelimit.c — fixed-window rate limits counted in Redis, so one limit
 * holds across every httpd child and every host sharing the Redis.
 *
 *   BeautifulRateLimit name limit window_seconds [key=ip|user]
 *   BeautifulRateLimit off
 *
 * Counter key: "bl:rl:<name>:<sha256(key value), 32 hex>:<window index>".
 * The client key is hashed: keys have a fixed length and no IP or user id
 * sits in Redis in clear (a hash of an IPv4 address can still be reversed
 * by brute force, so Redis stays a private service all the same).
 */
#include "core_private.h"
#include "hmac.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <string.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_RL_NAME_MAX    64
#define BL_RL_LIMIT_MAX   1000000000
#define BL_RL_WINDOW_MAX  (31 * 86400)
#define BL_RL_HASH_HEX    32          /* 128 bits of the SHA-256 */

/* INCR and EXPIRE in one atomic step: a counter can never outlive its
 * window for lack of a TTL, whoever dies between the two calls. */
static const char rl_script[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
    "return n";

/* ---------------------------------------------------------------- directive */

/* The name becomes part of a Redis key: keep it to a safe alphabet. */
static int valid_rule_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > BL_RL_NAME_MAX)
        return 0;
    for (const char *c = name; *c; c++)
        if (!apr_isalnum(*c) && *c != '_' && *c != '-' && *c != '.')
            return 0;
    return 1;
}

const char *bl_cmd_rate_limit(cmd_parms *cmd, void *dirconf, int argc,
                              char *const argv[])
{
    bl_dir_conf *dc = dirconf;
    bl_rate_rule *rule;
    long v;

    if (argc == 1 && strcasecmp(argv[0], "off") == 0) {
        dc->rate_rule = NULL;
        dc->rate_rule_set = 1;
        return NULL;
    }
    if (argc < 3 || argc > 4)
        return "BeautifulRateLimit takes: name limit window_seconds [key=ip|user], or off";

    rule = apr_pcalloc(cmd->pool, sizeof(*rule));
    rule->name = argv[0];
    if (!valid_rule_name(rule->name))
        return apr_psprintf(cmd->pool, "BeautifulRateLimit: name '%s' must be 1 to %d "
                            "characters of A-Z a-z 0-9 _ - .", argv[0], BL_RL_NAME_MAX);
    if (bl_parse_long(argv[1], 1, BL_RL_LIMIT_MAX, &v) != 0)
        return apr_psprintf(cmd->pool, "BeautifulRateLimit %s: limit '%s' must be a whole "
                            "number from 1 to %d", argv[0], argv[1], BL_RL_LIMIT_MAX);
    rule->limit = (int)v;
    if (bl_parse_long(argv[2], 1, BL_RL_WINDOW_MAX, &v) != 0)
        return apr_psprintf(cmd->pool, "BeautifulRateLimit %s: window '%s' must be a whole "
                            "number of seconds from 1 to %d", argv[0], argv[2],
                            BL_RL_WINDOW_MAX);
    rule->window_sec = (int)v;
    rule->key = BL_RATE_KEY_IP;
    if (argc == 4) {
        if (strcasecmp(argv[3], "key=ip") == 0)
            rule->key = BL_RATE_KEY_IP;
        else if (strcasecmp(argv[3], "key=user") == 0)
            rule->key = BL_RATE_KEY_USER;
        else
            return apr_psprintf(cmd->pool, "BeautifulRateLimit %s: '%s' must be key=ip "
                                "or key=user", argv[0], argv[3]);
    }
    dc->rate_rule = rule;
    dc->rate_rule_set = 1;
    return NULL;
}

/* ---------------------------------------------------------------- counting */

/* Counts one hit; returns the count in this window, or -1 when Redis
 * failed (logged; nothing answered). */
static long long rl_incr(request_rec *r, const char *redis_key, int ttl)
{
    const char *argv[5];
    redisReply *reply;

    argv[0] = "EVAL";
    argv[1] = rl_script;
    argv[2] = "1";
    argv[3] = redis_key;
    argv[4] = apr_itoa(r->pool, ttl);
    reply = bl_redis_command(r, 5, argv, NULL);
    if (!reply)
        return -1;                      /* counted and logged by the pool */
    if (reply->type != REDIS_REPLY_INTEGER) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "rate limit: Redis answered %s",
                      reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str
                                                                     : "a non-integer");
        bl_metrics_count_redis_error();
        return -1;
    }
    return reply->integer;
}

/* In err_headers_out, so they stay on error responses (429, 404 ...) too. */
static void rl_headers(request_rec *r, int limit, int remaining, const char *reset)
{
    apr_table_setn(r->err_headers_out, "RateLimit-Limit", apr_itoa(r->pool, limit));
    apr_table_setn(r->err_headers_out, "RateLimit-Remaining", apr_itoa(r->pool, remaining));
    apr_table_setn(r->err_headers_out, "RateLimit-Reset", reset);
}

int bl_rate_limit(request_rec *r, const char *name, const char *key,
                  int limit, int window_sec)
{
    apr_int64_t now = apr_time_sec(apr_time_now());
    apr_int64_t window;
    int reset;
    const char *hash, *redis_key, *reset_text;
    long long count;

    if (window_sec < 1)                 /* a caller's mistake must not divide by 0 */
        window_sec = 1;
    window = now / window_sec;
    reset = window_sec - (int)(now % window_sec);   /* whole seconds, rounded up */
    reset_text = apr_itoa(r->pool, reset);
    key = key ? key : "";
    hash = apr_pstrndup(r->pool, bl_sha256_hex(r->pool, key, strlen(key)), BL_RL_HASH_HEX);
    redis_key = apr_psprintf(r->pool, "bl:rl:%s:%s:%" APR_INT64_T_FMT, name, hash, window);
    count = rl_incr(r, redis_key, window_sec + 1);

    if (count < 0) {
        bl_send_unavailable(r, "redis");
        return -1;
    }

    rl_headers(r, limit, count >= limit ? 0 : (int)(limit - count), reset_text);
    if (count <= limit)
        return 0;

    apr_table_setn(r->err_headers_out, "Retry-After", reset_text);
    bl_send_error(r, HTTP_TOO_MANY_REQUESTS, BL_ERR_RATE_LIMITED,
                  "Too many requests; try again later", NULL);
    return 1;
}

/* ---------------------------------------------------------------- fixups */

/* Runs after authentication, so key=user sees r->user; a request without
 * a user is keyed by IP, so anonymous callers are limited too. */
int bl_rate_limit_fixups(request_rec *r)
{
    const bl_dir_conf *dc;
    const bl_rate_rule *rule;
    const char *key;

    /* count each client request once; a CORS preflight is the browser
     * asking, not the client acting (counting it would halve a login limit
     * for cross-origin callers) */
    if (!ap_is_initial_req(r) || bl_is_preflight(r))
        return DECLINED;
    dc = bl_core_dir_conf(r);
    rule = dc ? dc->rate_rule : NULL;
    if (!rule)
        return DECLINED;

    if (rule->key == BL_RATE_KEY_USER && r->user)
        key = apr_pstrcat(r->pool, "u:", r->user, NULL);
    else
        key = apr_pstrcat(r->pool, "ip:", bl_client_ip(r), NULL);

    /* DONE: the answer is written; httpd finishes the request without
     * running the handler (an HTTP status here would add a second body). */
    return bl_rate_limit(r, rule->name, key, rule->limit, rule->window_sec) == 0
           ? DECLINED : DONE;
}
