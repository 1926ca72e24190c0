/* reminder_sql.c — every prepared statement of mod_beautiful_reminder, and
 * the small helpers around them. Responses are built as JSON by PostgreSQL.
 * Object-level authorization is in each statement: the caller's id is a
 * parameter, and a reminder is visible to its owner and to caregivers the
 * owner accepted into the care circle. */
#include "reminder_private.h"
#include "validate.h"

#include <http_log.h>
#include <httpd.h>
#include <apr_strings.h>

APLOG_USE_MODULE(beautiful_reminder);

#define TS(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The reminder r as the API shows it. */
#define REMINDER_JSON \
    "json_build_object('id', r.id, 'user_id', r.user_id, 'type', r.type, 'title', r.title," \
    " 'notes', r.notes," \
    " 'medication', CASE WHEN r.medication_name IS NOT NULL OR r.dosage IS NOT NULL THEN" \
    "   json_build_object('name', r.medication_name, 'dosage', r.dosage) END," \
    " 'location', r.location," \
    " 'schedule', json_build_object('rrule', r.rrule, 'timezone', r.timezone," \
    "   'starts_at', " TS("r.starts_at") ", 'ends_at', " TS("r.ends_at") "," \
    "   'times', r.schedule_times, 'days', r.schedule_days)," \
    " 'channels', r.channels," \
    " 'nag', CASE WHEN r.nag_after_minutes IS NOT NULL THEN json_build_object(" \
    "   'after_minutes', r.nag_after_minutes, 'max_times', r.nag_max_times) END," \
    " 'supply', CASE WHEN r.supply_quantity IS NOT NULL THEN json_build_object(" \
    "   'quantity', r.supply_quantity::float8, 'per_dose', r.supply_per_dose::float8," \
    "   'refill_at', r.supply_refill_at::float8) END," \
    " 'is_active', r.is_active, 'next_fire_at', " TS("r.next_fire_at") "," \
    " 'last_fired_at', " TS("r.last_fired_at") "," \
    " 'created_at', " TS("r.created_at") ", 'updated_at', " TS("r.updated_at") ")"

/* r visible to caller %s (position given by the statement). */
#define VISIBLE(me) \
    "(r.user_id = " me "::uuid OR EXISTS (SELECT 1 FROM care_circle_members c" \
    " WHERE c.patient_id = r.user_id AND c.caregiver_id = " me "::uuid" \
    " AND c.status = 'accepted'))"

#define LOG_JSON \
    "json_build_object('id', l.id, 'reminder_id', l.reminder_id," \
    " 'occurrence', " TS("l.scheduled_for") ", 'status', l.status," \
    " 'fired_at', " TS("l.fired_at") ", 'taken_at', " TS("l.taken_at") "," \
    " 'notes', l.notes, 'nag_count', l.nag_count)"

const bl_statement reminder_statements[] = {
    /* ---------------------------------------------------------------- CRUD */
    {"reminder_insert",
     "WITH b AS (SELECT %s::jsonb AS j) "
     "INSERT INTO reminders AS r (user_id, type, title, notes, medication_name, dosage,"
     " location, rrule, timezone, starts_at, ends_at, next_fire_at, channels,"
     " schedule_times, schedule_days, nag_after_minutes, nag_max_times,"
     " supply_quantity, supply_per_dose, supply_refill_at)"
     " SELECT %s::uuid, (j->>'type')::reminder_type, j->>'title', j->>'notes',"
     " j->>'medication_name', j->>'dosage', j->>'location', j->>'rrule', j->>'timezone',"
     " (j->>'starts_at')::timestamptz, (j->>'ends_at')::timestamptz,"
     " (j->>'next_fire_at')::timestamptz,"
     " CASE WHEN j ? 'channels' THEN"
     "   ARRAY(SELECT jsonb_array_elements_text(j->'channels'))::notification_channel[]"
     "   ELSE '{push,in_app}' END,"
     " CASE WHEN j ? 'times' THEN ARRAY(SELECT jsonb_array_elements_text(j->'times')) END,"
     " CASE WHEN jsonb_typeof(j->'days') = 'array' THEN"
     "   ARRAY(SELECT jsonb_array_elements_text(j->'days')) END,"
     " (j->>'nag_after_minutes')::int, (j->>'nag_max_times')::int,"
     " (j->>'supply_quantity')::numeric, (j->>'supply_per_dose')::numeric,"
     " (j->>'supply_refill_at')::numeric FROM b"
     " RETURNING " REMINDER_JSON},

    {"reminder_get",
     "SELECT " REMINDER_JSON " FROM reminders r WHERE r.id = %s::uuid AND " VISIBLE("%s")},

    /* 1 owner, 0 caregiver; no row: not visible */
    {"reminder_access",
     "SELECT (r.user_id = %s::uuid)::int FROM reminders r"
     " WHERE r.id = %s::uuid AND " VISIBLE("%s")},

    {"reminder_schedule_for_update",
     "SELECT r.rrule, r.timezone, extract(epoch FROM r.starts_at)::bigint::text,"
     " extract(epoch FROM r.ends_at)::bigint::text, r.is_active::int::text, r.type::text"
     " FROM reminders r WHERE r.id = %s::uuid AND r.user_id = %s::uuid FOR UPDATE"},

    /* Params: flat jsonb, next_fire_at (NULL: keep), recompute flag, id, owner. */
    {"reminder_update",
     "WITH b AS (SELECT %s::jsonb AS j) "
     "UPDATE reminders r SET"
     " type = CASE WHEN j ? 'type' THEN (j->>'type')::reminder_type ELSE r.type END,"
     " title = CASE WHEN j ? 'title' THEN j->>'title' ELSE r.title END,"
     " notes = CASE WHEN j ? 'notes' THEN j->>'notes' ELSE r.notes END,"
     " medication_name = CASE WHEN j ? 'medication_name' THEN j->>'medication_name'"
     "   ELSE r.medication_name END,"
     " dosage = CASE WHEN j ? 'dosage' THEN j->>'dosage' ELSE r.dosage END,"
     " location = CASE WHEN j ? 'location' THEN j->>'location' ELSE r.location END,"
     " rrule = CASE WHEN j ? 'rrule' THEN j->>'rrule' ELSE r.rrule END,"
     " timezone = CASE WHEN j ? 'timezone' THEN j->>'timezone' ELSE r.timezone END,"
     " starts_at = CASE WHEN j ? 'starts_at' THEN (j->>'starts_at')::timestamptz"
     "   ELSE r.starts_at END,"
     " ends_at = CASE WHEN j ? 'rrule' THEN (j->>'ends_at')::timestamptz ELSE r.ends_at END,"
     " schedule_times = CASE WHEN j ? 'rrule' THEN CASE WHEN j ? 'times' THEN"
     "   ARRAY(SELECT jsonb_array_elements_text(j->'times')) END ELSE r.schedule_times END,"
     " schedule_days = CASE WHEN j ? 'rrule' THEN CASE WHEN jsonb_typeof(j->'days') = 'array'"
     "   THEN ARRAY(SELECT jsonb_array_elements_text(j->'days')) END"
     "   ELSE r.schedule_days END,"
     " channels = CASE WHEN j ? 'channels' THEN"
     "   ARRAY(SELECT jsonb_array_elements_text(j->'channels'))::notification_channel[]"
     "   ELSE r.channels END,"
     " nag_after_minutes = CASE WHEN j ? 'nag' THEN (j->>'nag_after_minutes')::int"
     "   ELSE r.nag_after_minutes END,"
     " nag_max_times = CASE WHEN j ? 'nag' THEN (j->>'nag_max_times')::int"
     "   ELSE r.nag_max_times END,"
     " supply_quantity = CASE WHEN j ? 'supply' THEN (j->>'supply_quantity')::numeric"
     "   ELSE r.supply_quantity END,"
     " supply_per_dose = CASE WHEN j ? 'supply' THEN (j->>'supply_per_dose')::numeric"
     "   ELSE r.supply_per_dose END,"
     " supply_refill_at = CASE WHEN j ? 'supply' THEN (j->>'supply_refill_at')::numeric"
     "   ELSE r.supply_refill_at END,"
     " refill_notified_at = CASE WHEN j ? 'supply' THEN NULL ELSE r.refill_notified_at END,"
     " is_active = CASE WHEN j ? 'is_active' THEN (j->>'is_active')::boolean"
     "   ELSE r.is_active END,"
     " next_fire_at = CASE WHEN %s::int = 1 THEN %s::timestamptz ELSE r.next_fire_at END"
     " FROM b WHERE r.id = %s::uuid AND r.user_id = %s::uuid"
     " RETURNING " REMINDER_JSON},

    /* A paused or rescheduled reminder has no nag in flight. */
    {"reminder_stop_nags",
     "UPDATE reminder_logs SET next_nag_at = NULL"
     " WHERE reminder_id = %s::uuid AND next_nag_at IS NOT NULL"},

    {"reminder_delete",
     "DELETE FROM reminders r WHERE r.id = %s::uuid AND r.user_id = %s::uuid"},

    /* Params: caller, patient filter (NULL: caller's own), type, active,
     * limit, offset. */
    {"reminder_list",
     "WITH f AS (SELECT r.* FROM reminders r"
     " WHERE r.user_id = COALESCE(%s::uuid, %s::uuid) AND " VISIBLE("%s")
     " AND (%s::reminder_type IS NULL OR r.type = %s::reminder_type)"
     " AND (%s::boolean IS NULL OR r.is_active = %s::boolean)) "
     "SELECT COALESCE((SELECT json_agg(x.j ORDER BY x.created_at, x.id) FROM"
     "  (SELECT " REMINDER_JSON " AS j, r.created_at, r.id FROM f r"
     "   ORDER BY r.created_at, r.id LIMIT %s::int OFFSET %s::int) x), '[]')::text,"
     " (SELECT count(*) FROM f)::text"},

    /* ---------------------------------------------------------------- occurrences */
    /* Params: reminder, occurrence (NULL: latest due), now, notes, owner. */
    {"reminder_complete",
     "WITH target AS ("
     "  SELECT l.id FROM reminder_logs l JOIN reminders r ON r.id = l.reminder_id"
     "  WHERE r.id = %s::uuid AND r.user_id = %s::uuid"
     "  AND l.status IN ('fired', 'snoozed', 'missed')"
     "  AND CASE WHEN %s::timestamptz IS NULL THEN l.scheduled_for <= %s::timestamptz"
     "   ELSE l.scheduled_for = %s::timestamptz END"
     "  ORDER BY l.scheduled_for DESC LIMIT 1 FOR UPDATE OF l) "
     "UPDATE reminder_logs l SET status = 'taken', taken_at = %s::timestamptz,"
     " notes = %s, next_nag_at = NULL FROM target t WHERE l.id = t.id"
     " RETURNING " LOG_JSON "::text"},

    /* An occurrence taken before it fired (or skipped ahead): its log row is
     * made now, so the scheduler will not fire it. Params: reminder, owner,
     * occurrence, status, now (taken_at when taken), notes. */
    {"reminder_log_ahead",
     "INSERT INTO reminder_logs AS l (reminder_id, scheduled_for, fired_at, status, taken_at,"
     " notes)"
     " SELECT r.id, %s::timestamptz, %s::timestamptz, %s::reminder_log_status,"
     " CASE WHEN %s = 'taken' THEN %s::timestamptz END, %s"
     " FROM reminders r WHERE r.id = %s::uuid AND r.user_id = %s::uuid"
     " ON CONFLICT (reminder_id, scheduled_for) DO NOTHING"
     " RETURNING " LOG_JSON "::text"},

    /* Supply after a taken dose; the refill notice once per crossing. */
    {"reminder_take_supply",
     "WITH old AS (SELECT id, supply_quantity, refill_notified_at FROM reminders"
     "  WHERE id = %s::uuid AND supply_quantity IS NOT NULL FOR UPDATE) "
     "UPDATE reminders r SET supply_quantity = GREATEST(r.supply_quantity - r.supply_per_dose, 0),"
     " refill_notified_at = CASE WHEN r.supply_refill_at IS NOT NULL"
     "  AND GREATEST(r.supply_quantity - r.supply_per_dose, 0) <= r.supply_refill_at"
     "  AND r.refill_notified_at IS NULL THEN %s::timestamptz ELSE r.refill_notified_at END"
     " FROM old WHERE r.id = old.id"
     " RETURNING (old.refill_notified_at IS NULL AND r.refill_notified_at IS NOT NULL)::int::text,"
     " r.user_id::text, array_to_string(r.channels, ','), r.title,"
     " COALESCE(r.medication_name, r.title), r.supply_quantity::float8::text"},

    /* Params: reminder, owner, snooze end, now. The latest unanswered one. */
    {"reminder_snooze",
     "WITH target AS ("
     "  SELECT l.id FROM reminder_logs l JOIN reminders r ON r.id = l.reminder_id"
     "  WHERE r.id = %s::uuid AND r.user_id = %s::uuid AND r.is_active"
     "  AND l.status IN ('fired', 'snoozed')"
     "  ORDER BY l.scheduled_for DESC LIMIT 1 FOR UPDATE OF l) "
     "UPDATE reminder_logs l SET status = 'snoozed', next_nag_at = %s::timestamptz"
     " FROM target t WHERE l.id = t.id AND l.scheduled_for <= %s::timestamptz"
     " RETURNING " LOG_JSON "::text"},

    /* Params: reminder, owner, occurrence (NULL: latest due), now, reason. */
    {"reminder_skip",
     "WITH target AS ("
     "  SELECT l.id FROM reminder_logs l JOIN reminders r ON r.id = l.reminder_id"
     "  WHERE r.id = %s::uuid AND r.user_id = %s::uuid"
     "  AND l.status IN ('fired', 'snoozed', 'missed')"
     "  AND CASE WHEN %s::timestamptz IS NULL THEN l.scheduled_for <= %s::timestamptz"
     "   ELSE l.scheduled_for = %s::timestamptz END"
     "  ORDER BY l.scheduled_for DESC LIMIT 1 FOR UPDATE OF l) "
     "UPDATE reminder_logs l SET status = 'skipped', notes = %s, next_nag_at = NULL"
     " FROM target t WHERE l.id = t.id"
     " RETURNING " LOG_JSON "::text"},

    /* Params: reminder, limit, offset. Access checked before. */
    {"reminder_logs",
     "SELECT COALESCE((SELECT json_agg(x.j ORDER BY x.scheduled_for DESC) FROM"
     "  (SELECT " LOG_JSON " AS j, l.scheduled_for FROM reminder_logs l"
     "   WHERE l.reminder_id = %s::uuid ORDER BY l.scheduled_for DESC"
     "   LIMIT %s::int OFFSET %s::int) x), '[]')::text,"
     " (SELECT count(*) FROM reminder_logs WHERE reminder_id = %s::uuid)::text"},

    /* Params: caller, patient (NULL: caller), from, to, on-time minutes. */
    {"reminder_adherence",
     "WITH mine AS (SELECT r.id, r.title FROM reminders r"
     "  WHERE r.user_id = COALESCE(%s::uuid, %s::uuid) AND " VISIBLE("%s")
     "  AND r.type = 'medication'),"
     " per AS (SELECT m.id, m.title,"
     "  count(l.id) FILTER (WHERE l.status <> 'skipped') AS due,"
     "  count(l.id) FILTER (WHERE l.status = 'taken'"
     "   AND l.taken_at <= l.scheduled_for + make_interval(mins => %s::int)) AS on_time,"
     "  count(l.id) FILTER (WHERE l.status = 'taken') AS taken,"
     "  count(l.id) FILTER (WHERE l.status = 'missed') AS missed,"
     "  count(l.id) FILTER (WHERE l.status = 'skipped') AS skipped"
     "  FROM mine m LEFT JOIN reminder_logs l ON l.reminder_id = m.id"
     "   AND l.scheduled_for >= %s::timestamptz AND l.scheduled_for < %s::timestamptz"
     "  GROUP BY m.id, m.title) "
     "SELECT json_build_object("
     " 'from', " TS("%s::timestamptz") ", 'to', " TS("%s::timestamptz") ","
     " 'reminders', COALESCE((SELECT json_agg(json_build_object('reminder_id', id,"
     "   'title', title, 'due', due, 'taken_on_time', on_time, 'taken_late', taken - on_time,"
     "   'missed', missed, 'skipped', skipped,"
     "   'percentage', CASE WHEN due > 0 THEN round(100.0 * taken / due, 1)::float8 END)"
     "   ORDER BY title, id) FROM per), '[]'),"
     " 'overall', (SELECT json_build_object('due', COALESCE(sum(due), 0),"
     "   'taken_on_time', COALESCE(sum(on_time), 0),"
     "   'taken_late', COALESCE(sum(taken - on_time), 0), 'missed', COALESCE(sum(missed), 0),"
     "   'skipped', COALESCE(sum(skipped), 0),"
     "   'percentage', CASE WHEN sum(due) > 0 THEN"
     "    round(100.0 * sum(taken) / sum(due), 1)::float8 END) FROM per))::text"},

    /* Active reminders of a user for /upcoming and the feed. */
    {"reminder_active_of",
     "SELECT r.id::text, r.title, r.type::text, r.rrule, r.timezone,"
     " extract(epoch FROM r.starts_at)::bigint::text,"
     " extract(epoch FROM r.ends_at)::bigint::text, COALESCE(r.notes, ''),"
     " COALESCE(r.location, ''),"
     " COALESCE(extract(epoch FROM r.created_at)::bigint, 0)::text"
     " FROM reminders r WHERE r.user_id = %s::uuid AND r.is_active ORDER BY r.created_at, r.id"},

    /* ---------------------------------------------------------------- calendar */
    {"reminder_calendar_token_set",
     "INSERT INTO reminder_calendar_tokens (user_id, token_hash) VALUES (%s::uuid, %s)"
     " ON CONFLICT (user_id) DO UPDATE SET token_hash = EXCLUDED.token_hash,"
     " created_at = now()"},
    {"reminder_calendar_token_user",
     "SELECT t.user_id::text FROM reminder_calendar_tokens t JOIN users u ON u.id = t.user_id"
     " WHERE t.token_hash = %s AND u.deleted_at IS NULL AND u.is_active"},

    /* ---------------------------------------------------------------- care circle */
    /* Params: patient, email. Returns the member and the invitee's user id
     * (NULL when no account has that email). */
    {"care_circle_insert",
     "WITH m AS (INSERT INTO care_circle_members (patient_id, caregiver_email)"
     "  SELECT %s::uuid, %s WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = %s::uuid"
     "   AND lower(u.email) = %s)"
     "  ON CONFLICT (patient_id, caregiver_email) DO NOTHING"
     "  RETURNING id, patient_id, caregiver_email, status, created_at) "
     "SELECT json_build_object('id', m.id, 'patient_id', m.patient_id,"
     " 'caregiver_email', m.caregiver_email, 'status', m.status,"
     " 'created_at', " TS("m.created_at") ")::text,"
     " (SELECT u.id::text FROM users u WHERE lower(u.email) = m.caregiver_email"
     "  AND u.deleted_at IS NULL)"
     " FROM m"},

    /* Params: member, caller, now. */
    {"care_circle_accept",
     "UPDATE care_circle_members c SET status = 'accepted', caregiver_id = u.id,"
     " accepted_at = %s::timestamptz"
     " FROM users u WHERE c.id = %s::uuid AND u.id = %s::uuid"
     " AND c.caregiver_email = lower(u.email) AND c.status = 'pending'"
     " RETURNING json_build_object('id', c.id, 'patient_id', c.patient_id,"
     " 'caregiver_id', c.caregiver_id, 'caregiver_email', c.caregiver_email,"
     " 'status', c.status, 'accepted_at', " TS("c.accepted_at") ")::text"},

    /* Either side: the patient, or the invitee (by account or email). */
    {"care_circle_delete",
     "DELETE FROM care_circle_members c USING users u"
     " WHERE c.id = %s::uuid AND u.id = %s::uuid"
     " AND (c.patient_id = u.id OR c.caregiver_id = u.id OR c.caregiver_email = lower(u.email))"},

    {"care_circle_list",
     "SELECT json_build_object("
     " 'caregivers', COALESCE((SELECT json_agg(json_build_object('id', c.id,"
     "   'caregiver_email', c.caregiver_email, 'caregiver_id', c.caregiver_id,"
     "   'status', c.status, 'created_at', " TS("c.created_at") ") ORDER BY c.created_at)"
     "   FROM care_circle_members c WHERE c.patient_id = %s::uuid), '[]'),"
     " 'patients', COALESCE((SELECT json_agg(json_build_object('id', c.id,"
     "   'patient_id', c.patient_id, 'status', c.status,"
     "   'created_at', " TS("c.created_at") ") ORDER BY c.created_at)"
     "   FROM care_circle_members c JOIN users u ON u.id = %s::uuid"
     "   WHERE c.caregiver_id = u.id OR (c.status = 'pending'"
     "    AND c.caregiver_email = lower(u.email))), '[]'))::text"},

    {NULL, NULL}
};

apr_dbd_row_t *reminder_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res)
{
    apr_dbd_row_t *row = NULL;

    if (!res || apr_dbd_get_row(db->driver, r->pool, res, &row, 1) != 0)
        return NULL;
    return row;
}

int reminder_check_access(request_rec *r, ap_dbd_t *db, const char *id, int need_owner)
{
    const bl_user *u = bl_current_user(r);
    const char *args[4];
    const char *owner = NULL;

    if (!bl_valid_uuid(id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "reminder not found", NULL),
               -1;
    args[0] = u->id;
    args[1] = id;
    args[2] = u->id;
    args[3] = u->id;
    if (bl_db_value(r, db, "reminder_access", 4, args, &owner) != APR_SUCCESS)
        return -1;
    if (!owner)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "reminder not found", NULL),
               -1;
    if (need_owner && strcmp(owner, "1") != 0)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "a caregiver can read this reminder but not change it", NULL),
               -1;
    return 0;
}

const char *reminder_epoch_text(apr_pool_t *p, time_t t)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)t);
}

bl_schedule *reminder_stored_schedule(request_rec *r, const char *rules, const char *tz,
                                      const char *starts, const char *ends)
{
    const char *field = NULL, *err = NULL;
    bl_schedule *sc;

    sc = bl_schedule_load(r->pool, rules, tz, (time_t)apr_atoi64(starts),
                           ends && *ends ? (time_t)apr_atoi64(ends) : 0, &field, &err);
    if (!sc)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "stored reminder schedule no longer parses (%s)", field);
    return sc;
}

apr_table_t *reminder_query_args(request_rec *r)
{
    apr_table_t *q = apr_table_make(r->pool, 4);
    char *pair, *last = NULL;

    if (!r->args)
        return q;
    for (pair = apr_strtok(apr_pstrdup(r->pool, r->args), "&", &last); pair;
         pair = apr_strtok(NULL, "&", &last)) {
        char *eq = strchr(pair, '=');
        if (eq) {
            *eq = '\0';
            if (ap_unescape_url(eq + 1) == OK)
                apr_table_set(q, pair, eq + 1);
        }
    }
    return q;
}
