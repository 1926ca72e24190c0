/* Every SQL statement of mod_beautiful_ai, prepared at start-up. Arguments
 * are text (apr_dbd %s) cast here; each statement names the caller's id,
 * so another user's conversation is never read, changed or confirmed.
 * JSON answers are built by PostgreSQL. Reminders and records are read
 * only through columns of 0001 (reminders, reminder_logs, medical_records). */
#include "ai_private.h"

/* RFC 3339 UTC text of a timestamptz column. */
#define TS(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* The start of today / this month, in UTC. */
#define DAY_START "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
#define MONTH_START "(date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"

#define USAGE_SINCE(since) \
    "(SELECT json_build_object(" \
    "'requests', count(*) FILTER (WHERE i.triage = 'none'), " \
    "'triaged', count(*) FILTER (WHERE i.triage <> 'none'), " \
    "'prompt_tokens', coalesce(sum(i.prompt_tokens), 0), " \
    "'completion_tokens', coalesce(sum(i.completion_tokens), 0), " \
    "'cost_usd', coalesce(round(sum(i.cost_usd), 6), 0)) " \
    "FROM ai_interactions i WHERE i.user_id = me.id AND i.created_at >= " since ")"

/* A dose counts as taken once acknowledged. */
#define TAKEN "(l.status = 'acknowledged' OR l.acknowledged_at IS NOT NULL)"

const bl_statement ai_statements[] = {
    {AI_SQL_PROFILE,
     "SELECT first_name, last_name, email, date_of_birth::text, country "
     "FROM users WHERE id = %s::uuid AND is_active"},
    /* Premium while a paid subscription is live; free otherwise. */
    {AI_SQL_TIER,
     "SELECT CASE WHEN EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = %s::uuid "
     "AND s.status IN ('authenticated', 'active', 'pending') "
     "AND (s.current_period_end IS NULL OR s.current_period_end > now())) "
     "THEN 'premium' ELSE 'free' END"},
    {AI_SQL_CONVERSATION_OWNED,
     "SELECT 1 FROM ai_conversations WHERE id = %s::uuid AND user_id = %s::uuid"},
    {AI_SQL_CONVERSATION_UPSERT,
     "INSERT INTO ai_conversations AS c (id, user_id, title) VALUES (%s::uuid, %s::uuid, %s) "
     "ON CONFLICT (id) DO UPDATE SET updated_at = now() WHERE c.user_id = EXCLUDED.user_id"},
    {AI_SQL_MESSAGE_INSERT,
     "INSERT INTO ai_messages (conversation_id, role, content, urgency) "
     "VALUES (%s::uuid, %s, %s, %s)"},
    /* Newest first; the handler keeps what fits the token budget. */
    {AI_SQL_HISTORY,
     "SELECT m.role, m.content FROM ai_messages m "
     "JOIN ai_conversations c ON c.id = m.conversation_id "
     "WHERE c.id = %s::uuid AND c.user_id = %s::uuid "
     "ORDER BY m.created_at DESC, m.id DESC LIMIT 100"},
    {AI_SQL_CONVERSATIONS,
     "WITH me AS (SELECT %s::uuid AS id) "
     "SELECT (SELECT count(*) FROM ai_conversations c, me WHERE c.user_id = me.id), "
     "coalesce((SELECT json_agg(json_build_object('id', c.id, 'title', c.title, "
     "'message_count', (SELECT count(*) FROM ai_messages m WHERE m.conversation_id = c.id), "
     "'created_at', " TS("c.created_at") ", 'updated_at', " TS("c.updated_at") ") "
     "ORDER BY c.updated_at DESC, c.id) "
     "FROM (SELECT c.* FROM ai_conversations c, me WHERE c.user_id = me.id "
     "ORDER BY c.updated_at DESC, c.id LIMIT %s::int OFFSET %s::int) c), '[]'::json)"},
    {AI_SQL_CONVERSATION_JSON,
     "SELECT json_build_object('id', c.id, 'title', c.title, "
     "'created_at', " TS("c.created_at") ", 'updated_at', " TS("c.updated_at") ", "
     "'messages', coalesce((SELECT json_agg(json_build_object('role', m.role, "
     "'content', m.content, 'urgency', m.urgency, 'created_at', " TS("m.created_at") ") "
     "ORDER BY m.created_at, m.id) FROM ai_messages m WHERE m.conversation_id = c.id), "
     "'[]'::json)) "
     "FROM ai_conversations c WHERE c.id = %s::uuid AND c.user_id = %s::uuid"},
    {AI_SQL_CONVERSATION_DELETE,
     "DELETE FROM ai_conversations WHERE id = %s::uuid AND user_id = %s::uuid"},
    {AI_SQL_LEDGER_INSERT,
     "INSERT INTO ai_interactions (user_id, kind, prompt, response, model, prompt_tokens, "
     "completion_tokens, latency_ms, error, conversation_id, cost_usd, triage) "
     "VALUES (%s::uuid, %s::ai_interaction_kind, %s, %s, %s, %s::int, %s::int, %s::int, %s, "
     "%s::uuid, %s::numeric, %s)"},
    {AI_SQL_USAGE,
     "WITH me AS (SELECT %s::uuid AS id) "
     "SELECT json_build_object('today', " USAGE_SINCE(DAY_START) ", "
     "'month', " USAGE_SINCE(MONTH_START) ") FROM me"},
    {AI_SQL_MEDICATIONS,
     "SELECT r.medication_name FROM reminders r WHERE r.user_id = %s::uuid "
     "AND r.type = 'medication' AND r.is_active AND r.medication_name IS NOT NULL "
     "GROUP BY r.medication_name ORDER BY min(r.created_at), r.medication_name LIMIT 30"},
    /* Adherence per medication over 7 and 30 days, the current run of
     * doses not taken, the next appointments and records by type. */
    {AI_SQL_INSIGHTS,
     "WITH me AS (SELECT %s::uuid AS id), "
     "meds AS (SELECT r.id, coalesce(r.medication_name, r.title) AS name FROM reminders r, me "
     "  WHERE r.user_id = me.id AND r.type = 'medication'), "
     "logs AS (SELECT m.name, l.scheduled_for, " TAKEN " AS taken FROM reminder_logs l "
     "  JOIN meds m ON m.id = l.reminder_id "
     "  WHERE l.scheduled_for > now() - interval '30 days' AND l.scheduled_for <= now()), "
     "per_med AS (SELECT n.name, "
     "  count(g.*) FILTER (WHERE g.scheduled_for > now() - interval '7 days') AS s7, "
     "  count(g.*) FILTER (WHERE g.scheduled_for > now() - interval '7 days' AND g.taken) AS t7, "
     "  count(g.*) AS s30, count(g.*) FILTER (WHERE g.taken) AS t30, "
     "  (SELECT count(*) FROM logs x WHERE x.name = n.name AND NOT x.taken AND x.scheduled_for > "
     "    coalesce((SELECT max(y.scheduled_for) FROM logs y WHERE y.name = n.name AND y.taken), "
     "    '-infinity')) AS streak "
     "  FROM (SELECT DISTINCT name FROM meds) n LEFT JOIN logs g ON g.name = n.name "
     "  GROUP BY n.name) "
     "SELECT json_build_object("
     "'date', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'), "
     "'adherence', coalesce((SELECT json_agg(json_build_object('medication', p.name, "
     "  'last_7_days', json_build_object('scheduled', p.s7, 'taken', p.t7, 'rate', "
     "    CASE WHEN p.s7 > 0 THEN round(p.t7::numeric / p.s7, 2) END), "
     "  'last_30_days', json_build_object('scheduled', p.s30, 'taken', p.t30, 'rate', "
     "    CASE WHEN p.s30 > 0 THEN round(p.t30::numeric / p.s30, 2) END), "
     "  'missed_streak', p.streak) ORDER BY p.name) FROM per_med p), '[]'::json), "
     "'upcoming_appointments', coalesce((SELECT json_agg(json_build_object('title', a.title, "
     "  'at', " TS("a.at") ", 'location', a.location) ORDER BY a.at) FROM ("
     "  SELECT r.title, r.location, coalesce(r.next_fire_at, r.starts_at) AS at "
     "  FROM reminders r, me WHERE r.user_id = me.id AND r.type = 'appointment' AND r.is_active "
     "  AND coalesce(r.next_fire_at, r.starts_at) > now() "
     "  AND coalesce(r.next_fire_at, r.starts_at) <= now() + interval '30 days' "
     "  ORDER BY 3 LIMIT 10) a), '[]'::json), "
     "'records_by_type', coalesce((SELECT json_object_agg(t.record_type, t.n) FROM ("
     "  SELECT mr.record_type, count(*) AS n FROM medical_records mr, me "
     "  WHERE mr.owner_id = me.id AND mr.deleted_at IS NULL GROUP BY mr.record_type) t), "
     "  '{}'::json)) FROM me"},
    /* What use_my_data lets the model know: never names, contacts or
     * dates of birth. */
    {AI_SQL_CONTEXT,
     "SELECT json_build_object('cancer_type', u.cancer_type, "
     "'treatment_stage', u.treatment_stage, "
     "'medications', coalesce((SELECT json_agg(DISTINCT r.medication_name) FROM reminders r "
     "  WHERE r.user_id = u.id AND r.type = 'medication' AND r.is_active "
     "  AND r.medication_name IS NOT NULL), '[]'::json), "
     "'records_by_type', coalesce((SELECT json_object_agg(t.record_type, t.n) FROM ("
     "  SELECT mr.record_type, count(*) AS n FROM medical_records mr "
     "  WHERE mr.owner_id = u.id AND mr.deleted_at IS NULL GROUP BY mr.record_type) t), "
     "  '{}'::json))::text FROM users u WHERE u.id = %s::uuid"},
    {NULL, NULL}
};

apr_dbd_row_t *ai_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res)
{
    apr_dbd_row_t *row = NULL;

    if (!res || apr_dbd_get_row(db->driver, r->pool, res, &row, -1) != 0)
        return NULL;
    return row;
}
