/* What stands between a request and the model: the caller's profile (for
 * redaction), the daily quota per tier and the circuit breaker, both in
 * Redis so they hold across children and hosts; and the ledger row every
 * call leaves in ai_interactions, with its cost. */
#include "ai_private.h"
#include "redact.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include <stdio.h>
#include <string.h>

APLOG_USE_MODULE(beautiful_ai);

/* ---------------------------------------------------------------- the caller */

int ai_load_person(request_rec *r, ap_dbd_t *db, const char *user_id, ai_person *out)
{
    const char *args[1] = {user_id};
    apr_dbd_results_t *res = bl_db_select(r, db, AI_SQL_PROFILE, 1, args);
    apr_dbd_row_t *row;
    const char **names;

    memset(out, 0, sizeof *out);
    if (!res)
        return -1;
    if (!(row = ai_first_row(r, db, res))) {
        /* A token for an account that is gone or deactivated. */
        bl_send_error(r, HTTP_UNAUTHORIZED, BL_ERR_UNAUTHORIZED, "no such account", NULL);
        return -1;
    }
    out->first_name = bl_db_get(r, db, row, 0);
    out->last_name = bl_db_get(r, db, row, 1);
    out->email = bl_db_get(r, db, row, 2);
    out->date_of_birth = bl_db_get(r, db, row, 3);
    out->country = bl_db_get(r, db, row, 4);
    names = apr_pcalloc(r->pool, 3 * sizeof *names);
    names[0] = out->first_name;
    names[names[0] ? 1 : 0] = out->last_name;
    out->names = names;
    return 0;
}

const char *ai_redact(request_rec *r, const ai_person *who, const char *text)
{
    return bl_redact(r->pool, text, who ? who->names : NULL, who ? who->date_of_birth : NULL);
}

/* ---------------------------------------------------------------- quota */

/* KEYS[1] the day's counter, ARGV[1] the limit, ARGV[2] when it expires
 * (epoch seconds). Returns the new count, or -1 when the limit is reached
 * (nothing counted). */
static const char quota_script[] =
    "local used = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if used >= tonumber(ARGV[1]) then return -1 end "
    "used = redis.call('INCR', KEYS[1]) "
    "redis.call('EXPIREAT', KEYS[1], ARGV[2]) "
    "return used";

/* KEYS[1] the counter: one back, never below zero. */
static const char give_back_script[] =
    "local used = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if used > 0 then redis.call('DECR', KEYS[1]) end return 0";

/* The counter's key for today (UTC) and the epoch second the day ends. */
static const char *quota_key(request_rec *r, const char *user_id, apr_time_t *day_end)
{
    apr_time_exp_t t;
    apr_time_t now = apr_time_now(), midnight;

    apr_time_exp_gmt(&t, now);
    t.tm_hour = t.tm_min = t.tm_sec = t.tm_usec = 0;
    apr_time_exp_gmt_get(&midnight, &t);
    *day_end = midnight + apr_time_from_sec(86400);
    return apr_psprintf(r->pool, "bl:ai:quota:%s:%04d%02d%02d", user_id, t.tm_year + 1900,
                        t.tm_mon + 1, t.tm_mday);
}

static const char *rfc3339(request_rec *r, apr_time_t t)
{
    apr_time_exp_t e;

    apr_time_exp_gmt(&e, t);
    return apr_psprintf(r->pool, "%04d-%02d-%02dT%02d:%02d:%02dZ", e.tm_year + 1900, e.tm_mon + 1,
                        e.tm_mday, e.tm_hour, e.tm_min, e.tm_sec);
}

static int tier_of(request_rec *r, ap_dbd_t *db, const char *user_id, const char **tier)
{
    const char *args[1] = {user_id};

    if (bl_db_value(r, db, AI_SQL_TIER, 1, args, tier) != APR_SUCCESS)
        return -1;
    if (!*tier)
        *tier = "free";
    return 0;
}

static int limit_of(const ai_conf *c, const char *tier)
{
    const int *n = apr_hash_get(c->quotas, tier, APR_HASH_KEY_STRING);

    if (!n)
        n = apr_hash_get(c->quotas, "free", APR_HASH_KEY_STRING);
    return n ? *n : 20;
}

int ai_quota_take(request_rec *r, ap_dbd_t *db, const char *user_id, const char **tier)
{
    apr_time_t day_end;
    const char *key = quota_key(r, user_id, &day_end);
    int limit;
    const char *argv[6];
    redisReply *reply;

    if (tier_of(r, db, user_id, tier) != 0)
        return -1;
    limit = limit_of(ai_config(r), *tier);
    argv[0] = "EVAL";
    argv[1] = quota_script;
    argv[2] = "1";
    argv[3] = key;
    argv[4] = apr_itoa(r->pool, limit);
    argv[5] = apr_ltoa(r->pool, (long)apr_time_sec(day_end) + 3600);
    reply = bl_redis_command(r, 6, argv, NULL);
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        bl_send_unavailable(r, "redis");
        return -1;
    }
    if (reply->integer < 0) {
        long wait = (long)apr_time_sec(day_end - apr_time_now());
        apr_table_setn(r->err_headers_out, "Retry-After", apr_ltoa(r->pool, wait > 0 ? wait : 1));
        bl_send_error(r, HTTP_TOO_MANY_REQUESTS, AI_ERR_QUOTA,
                      apr_psprintf(r->pool, "the daily limit of %d assistant requests for the "
                                   "%s tier is reached; it resets at %s", limit, *tier,
                                   rfc3339(r, day_end)),
                      apr_pstrcat(r->pool, "resets_at: ", rfc3339(r, day_end), NULL));
        return -1;
    }
    return 0;
}

void ai_quota_give_back(request_rec *r, const char *user_id)
{
    apr_time_t day_end;
    const char *argv[4] = {"EVAL", give_back_script, "1", quota_key(r, user_id, &day_end)};

    (void)bl_redis_command(r, 4, argv, NULL);
}

int ai_quota_status(request_rec *r, ap_dbd_t *db, const char *user_id, const char **tier,
                    int *limit, long *used, const char **resets_at)
{
    apr_time_t day_end;
    const char *argv[2] = {"GET", quota_key(r, user_id, &day_end)};
    redisReply *reply;

    if (tier_of(r, db, user_id, tier) != 0)
        return -1;
    *limit = limit_of(ai_config(r), *tier);
    reply = bl_redis_command(r, 2, argv, NULL);
    if (!reply || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)) {
        bl_send_unavailable(r, "redis");
        return -1;
    }
    *used = reply->type == REDIS_REPLY_STRING ? apr_atoi64(reply->str) : 0;
    *resets_at = rfc3339(r, day_end);
    return 0;
}

/* ---------------------------------------------------------------- breaker */

#define BREAKER_OPEN "bl:ai:breaker:open"
#define BREAKER_FAILS "bl:ai:breaker:fails"

/* KEYS[1] failures, KEYS[2] open flag; ARGV failures, window, open secs. */
static const char breaker_fail_script[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end "
    "if n >= tonumber(ARGV[1]) then redis.call('SET', KEYS[2], '1', 'EX', ARGV[3]) "
    "redis.call('DEL', KEYS[1]) end return n";

int ai_breaker_check(request_rec *r)
{
    const char *argv[2] = {"PTTL", BREAKER_OPEN};
    redisReply *reply = bl_redis_command(r, 2, argv, NULL);
    ai_answer a;

    /* Redis away: the breaker cannot know; the quota then answers 503. */
    if (!reply || reply->type != REDIS_REPLY_INTEGER || reply->integer == -2)
        return 0;
    memset(&a, 0, sizeof a);
    a.retry_after = apr_time_from_msec(reply->integer > 0 ? reply->integer : 1000) + APR_USEC_PER_SEC - 1;
    ai_send_unavailable(r, &a);
    return -1;
}

void ai_breaker_record(request_rec *r, int failed)
{
    const ai_conf *c = ai_config(r);

    if (failed) {
        const char *argv[8] = {"EVAL", breaker_fail_script, "2", BREAKER_FAILS, BREAKER_OPEN,
                               apr_itoa(r->pool, c->breaker_failures),
                               apr_itoa(r->pool, c->breaker_window),
                               apr_itoa(r->pool, c->breaker_open)};
        redisReply *reply = bl_redis_command(r, 8, argv, NULL);
        if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer >= c->breaker_failures)
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "mod_beautiful_ai: the provider failed %d times within %d s: no calls "
                          "for %d s", c->breaker_failures, c->breaker_window, c->breaker_open);
    } else {
        const char *argv[2] = {"DEL", BREAKER_FAILS};
        (void)bl_redis_command(r, 2, argv, NULL);
    }
}

/* ---------------------------------------------------------------- ledger */

double ai_cost(const ai_conf *c, const char *model, long prompt_tokens, long completion_tokens)
{
    int i;

    if (!model)
        return -1;
    for (i = 0; i < c->prices->nelts; i++) {
        const ai_price *p = &APR_ARRAY_IDX(c->prices, i, ai_price);
        if (strcmp(p->model, model) == 0)
            return ((prompt_tokens > 0 ? prompt_tokens : 0) * p->input_per_million
                    + (completion_tokens > 0 ? completion_tokens : 0) * p->output_per_million)
                   / 1e6;
    }
    return -1;
}

/* At most max characters (UTF-8 code points) of s. */
static const char *clip(apr_pool_t *p, const char *s, size_t max)
{
    size_t i = 0, chars = 0;

    if (!s)
        return NULL;
    while (s[i] && chars < max) {
        i++;
        while ((s[i] & 0xC0) == 0x80)
            i++;
        chars++;
    }
    return s[i] ? apr_pstrndup(p, s, i) : s;
}

/* The ledger's figures on /metrics: requests by outcome, tokens, cost. */
static void count_call(const ai_ledger_entry *e, double cost)
{
    const ai_answer *a = e->answer;
    char series[64];

    apr_snprintf(series, sizeof series, "beautiful_ai_requests_total{outcome=\"%s\"}",
                 !a ? "triaged" : a->error ? "error" : "answered");
    bl_metrics_count(series, 1);
    if (a && a->prompt_tokens > 0)
        bl_metrics_count("beautiful_ai_tokens_total{kind=\"prompt\"}", (apr_uint64_t)a->prompt_tokens);
    if (a && a->completion_tokens > 0)
        bl_metrics_count("beautiful_ai_tokens_total{kind=\"completion\"}",
                         (apr_uint64_t)a->completion_tokens);
    if (cost > 0)
        bl_metrics_count("beautiful_ai_cost_microusd_total", (apr_uint64_t)(cost * 1e6 + 0.5));
}

void ai_metrics_init(void)
{
    static const char *const series[] = {
        "beautiful_ai_requests_total{outcome=\"answered\"}",
        "beautiful_ai_requests_total{outcome=\"error\"}",
        "beautiful_ai_requests_total{outcome=\"triaged\"}",
        "beautiful_ai_tokens_total{kind=\"prompt\"}",
        "beautiful_ai_tokens_total{kind=\"completion\"}",
        "beautiful_ai_cost_microusd_total", NULL
    };
    int i;

    for (i = 0; series[i]; i++)
        bl_metrics_count(series[i], 0);
}

int ai_ledger_write(request_rec *r, ap_dbd_t *db, const char *user_id, const ai_ledger_entry *e)
{
    const ai_answer *a = e->answer;
    const char *args[12];
    double cost = a ? ai_cost(ai_config(r), e->model, a->prompt_tokens, a->completion_tokens) : -1;
    const char *prompt = e->prompt && *e->prompt ? e->prompt : "(empty)";

    args[0] = user_id;
    args[1] = e->kind;
    args[2] = clip(r->pool, prompt, 20000);
    args[3] = e->response && *e->response ? clip(r->pool, e->response, 100000) : NULL;
    args[4] = e->model;
    args[5] = a && a->prompt_tokens >= 0 ? apr_ltoa(r->pool, a->prompt_tokens) : NULL;
    args[6] = a && a->completion_tokens >= 0 ? apr_ltoa(r->pool, a->completion_tokens) : NULL;
    args[7] = a ? apr_ltoa(r->pool, (long)apr_time_as_msec(a->latency)) : NULL;
    args[8] = a && a->error ? clip(r->pool, a->error, 2000) : NULL;
    args[9] = e->conversation_id;
    args[10] = cost >= 0 ? apr_psprintf(r->pool, "%.8f", cost) : NULL;
    args[11] = e->triage ? e->triage : "none";
    if (bl_db_exec(r, db, AI_SQL_LEDGER_INSERT, 12, args) < 0)
        return -1;
    count_call(e, cost);
    return 0;
}
