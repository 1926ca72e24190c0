/* GET /ai/insights and GET /ai/usage.
 *
 * Insights are computed from the caller's own data first, in SQL and
 * deterministically (adherence, missed-dose streaks, appointments, record
 * counts); with use_my_data=true the model adds a short summary of those
 * figures. The answer is cached in Redis per user per day (UTC), one entry
 * with and one without the summary. */
#include "ai_private.h"
#include "json.h"

#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

static const char insight_task[] =
    "Task: in three to five short sentences, summarise these figures from the person's own "
    "reminders and records for them: how regularly they take each medicine, any missed doses "
    "in a row, upcoming appointments. Be encouraging and practical; suggest talking to the care "
    "team about anything worrying. Do not invent figures.";

static const char *cache_key(request_rec *r, const char *user_id, int summary, apr_time_t *day_end)
{
    apr_time_exp_t t;
    apr_time_t midnight;

    apr_time_exp_gmt(&t, apr_time_now());
    t.tm_hour = t.tm_min = t.tm_sec = t.tm_usec = 0;
    apr_time_exp_gmt_get(&midnight, &t);
    *day_end = midnight + apr_time_from_sec(86400);
    return apr_psprintf(r->pool, "bl:ai:insights:%s:%04d%02d%02d:%d", user_id, t.tm_year + 1900,
                        t.tm_mon + 1, t.tm_mday, summary);
}

/* The model's summary of the figures, or NULL (the reason in *why). */
static const char *summarise(request_rec *r, ap_dbd_t *db, const bl_user *user,
                             const ai_person *who, const char *figures, const char **why)
{
    const ai_conf *c = ai_config(r);
    const char *sent = ai_redact(r, who, figures);
    json_object *messages = json_object_new_array(), *sys, *u;
    ai_answer answer;
    ai_ledger_entry entry = {"insight", sent, NULL, c->model, NULL, "none", &answer};

    sys = json_object_new_object();
    json_object_object_add(sys, "role", json_object_new_string("system"));
    json_object_object_add(sys, "content", json_object_new_string(
        apr_pstrcat(r->pool, ai_system_prompt, "\n\n", insight_task, NULL)));
    u = json_object_new_object();
    json_object_object_add(u, "role", json_object_new_string("user"));
    json_object_object_add(u, "content", json_object_new_string(
        apr_pstrcat(r->pool, "My figures (JSON): ", sent, NULL)));
    json_object_array_add(messages, sys);
    json_object_array_add(messages, u);
    ai_complete(r, messages, NULL, NULL, NULL, NULL, &answer);
    json_object_put(messages);
    entry.response = answer.content;
    if (ai_ledger_write(r, db, user->id, &entry) != 0)
        return NULL;
    if (!answer.content) {
        ai_quota_give_back(r, user->id);
        *why = AI_ERR_UNAVAILABLE;
        return NULL;
    }
    return answer.content;
}

int ai_insights(request_rec *r, apr_table_t *params)
{
    const ai_conf *c = ai_config(r);
    const bl_user *user;
    int use_my_data;
    apr_time_t day_end;
    const char *key, *figures = NULL, *summary = NULL, *why = NULL, *tier, *doc;
    const char *args[1];
    redisReply *reply;
    ap_dbd_t *db;
    ai_person who;
    json_object *data;

    if (!(user = bl_require_user(r)) || ai_query_bool(r, "use_my_data", &use_my_data) != 0)
        return OK;
    key = cache_key(r, user->id, use_my_data, &day_end);
    {
        const char *argv[2] = {"GET", key};
        reply = bl_redis_command(r, 2, argv, NULL);
        if (reply && reply->type == REDIS_REPLY_STRING)
            return bl_send_data(r, HTTP_OK, NULL, apr_pstrdup(r->pool, reply->str), NULL);
    }
    if (!(db = bl_db(r)))
        return OK;
    args[0] = user->id;
    if (bl_db_value(r, db, AI_SQL_INSIGHTS, 1, args, &figures) != APR_SUCCESS)
        return OK;
    if (!figures)
        return bl_send_unavailable(r, "database");
    if (use_my_data) {
        if (!ai_configured(c))
            why = AI_ERR_NOT_CONFIGURED;
        else if (ai_load_person(r, db, user->id, &who) != 0 || ai_breaker_check(r) != 0
                 || ai_quota_take(r, db, user->id, &tier) != 0)
            return OK;
        else if (!(summary = summarise(r, db, user, &who, figures, &why)) && !why)
            return OK;
    }
    data = json_tokener_parse(figures);
    if (!data)
        return bl_send_unavailable(r, "database");
    json_object_object_add(data, "summary", summary ? json_object_new_string(summary) : NULL);
    if (why)
        json_object_object_add(data, "summary_unavailable", json_object_new_string(why));
    if (summary)
        json_object_object_add(data, "disclaimer", json_object_new_string(ai_disclaimer));
    doc = bl_json_to_string(r->pool, data);
    json_object_put(data);
    /* A summary that failed is not cached: the next request tries again. */
    if (!why || strcmp(why, AI_ERR_NOT_CONFIGURED) == 0) {
        long ttl = (long)apr_time_sec(day_end - apr_time_now());
        const char *set[5] = {"SET", key, doc, "EX", apr_ltoa(r->pool, ttl > 0 ? ttl : 1)};
        (void)bl_redis_command(r, 5, set, NULL);
    }
    return bl_send_data(r, HTTP_OK, NULL, doc, NULL);
}

int ai_usage(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    const char *args[1], *usage = NULL, *tier, *resets_at;
    int limit;
    long used;
    ap_dbd_t *db;
    json_object *data, *quota;
    const char *doc;

    if (!(user = bl_require_user(r)))
        return OK;
    if (r->args && *r->args)
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                             "this route takes no query parameters", NULL);
    if (!(db = bl_db(r)))
        return OK;
    args[0] = user->id;
    if (bl_db_value(r, db, AI_SQL_USAGE, 1, args, &usage) != APR_SUCCESS)
        return OK;
    if (ai_quota_status(r, db, user->id, &tier, &limit, &used, &resets_at) != 0)
        return OK;
    if (!usage || !(data = json_tokener_parse(usage)))
        return bl_send_unavailable(r, "database");
    quota = json_object_new_object();
    json_object_object_add(quota, "tier", json_object_new_string(tier));
    json_object_object_add(quota, "daily_limit", json_object_new_int(limit));
    json_object_object_add(quota, "used_today", json_object_new_int64(used));
    json_object_object_add(quota, "remaining", json_object_new_int64(used < limit ? limit - used : 0));
    json_object_object_add(quota, "resets_at", json_object_new_string(resets_at));
    json_object_object_add(data, "quota", quota);
    doc = bl_json_to_string(r->pool, data);
    json_object_put(data);
    return bl_send_data(r, HTTP_OK, NULL, doc, NULL);
}
