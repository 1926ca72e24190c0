/* The background work of video sessions and chat, one pass at a time
 * (the task "beautiful-video", chat_video_common.c):
 *
 *  - reminders: every registration of a session starting within
 *    BeautifulVideoRemindMinutes gets one video.reminder (push and in-app),
 *    claimed FOR UPDATE SKIP LOCKED and marked in the same statement, so
 *    two passes on two hosts never send it twice;
 *  - Calendar retries: sessions whose insert, patch or delete failed are
 *    leased (calendar_next_attempt moved ahead) and tried again with
 *    backoff, at most MAX_ATTEMPTS times;
 *  - old chat events (the live streams' resume log) are dropped. */
#include "chat_video.h"

#include <http_log.h>
#include <apr_strings.h>

#include <string.h>

#define TS_S(c) "to_char((" c ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define CLAIM_BATCH "10"
#define LEASE "2 minutes"
#define MAX_ATTEMPTS 8
#define EVENTS_KEPT "7 days"

APLOG_USE_MODULE(beautiful_community);

#define SQL_REMIND "video_task_remind"
#define SQL_CLAIM "video_task_calendar_claim"
#define SQL_INSERTED "video_task_calendar_inserted"
#define SQL_SYNCED "video_task_calendar_synced"
#define SQL_RETRY "video_task_calendar_retry"
#define SQL_EVENTS_CLEANUP "chat_task_events_cleanup"

static const bl_statement task_statements[] = {
    /* now, minutes: the reminders queued */
    {SQL_REMIND,
     "WITH a AS (SELECT %s::timestamptz AS now, %s::int AS minutes), "
     "due AS (SELECT p.session_id, p.user_id FROM a, video_session_participants p "
     "  JOIN video_sessions s ON s.id = p.session_id "
     "  WHERE p.reminded_at IS NULL AND s.status = 'scheduled' AND s.scheduled_at > a.now "
     "  AND s.scheduled_at <= a.now + a.minutes * interval '1 minute' "
     "  LIMIT 500 FOR UPDATE OF p SKIP LOCKED), "
     "marked AS (UPDATE video_session_participants p SET reminded_at = a.now FROM a, due "
     "  WHERE p.session_id = due.session_id AND p.user_id = due.user_id "
     "  RETURNING p.session_id, p.user_id), "
     "sent AS (INSERT INTO notifications (user_id, channel, type, title, body, data) "
     "  SELECT m.user_id, ch.channel, 'video.reminder', 'Starting soon: ' || s.title, "
     "  'Your video session starts at ' || " TS_S("s.scheduled_at") " || '.', "
     "  jsonb_build_object('session_id', s.id) "
     "  FROM marked m JOIN video_sessions s ON s.id = m.session_id "
     "  CROSS JOIN (VALUES ('push'::notification_channel), ('in_app'::notification_channel)) "
     "  ch(channel) RETURNING 1) "
     "SELECT (SELECT count(*) FROM marked)::text, (SELECT count(*) FROM sent)::text"},
    /* The sessions whose Calendar call is due, leased. */
    {SQL_CLAIM,
     "UPDATE video_sessions s SET calendar_next_attempt = now() + interval '" LEASE "', "
     " calendar_attempts = s.calendar_attempts + 1 "
     "WHERE s.id IN (SELECT id FROM video_sessions WHERE calendar_state IN "
     " ('insert', 'patch', 'delete') AND calendar_next_attempt <= now() "
     " ORDER BY calendar_next_attempt LIMIT " CLAIM_BATCH " FOR UPDATE SKIP LOCKED) "
     "RETURNING s.id::text, s.calendar_state::text, s.title, s.description, "
     " " TS_S("s.scheduled_at") ", "
     " " TS_S("s.scheduled_at + s.duration_minutes * interval '1 minute'") ", "
     " s.calendar_event_id, s.calendar_attempts::text, s.updated_at::text"},
    /* event id, meet link (NULL: keep), meet link, claimed updated_at,
     * session: the insert succeeded; a session edited meanwhile needs a
     * patch, a cancelled one the event's delete. */
    {SQL_INSERTED,
     "UPDATE video_sessions SET calendar_event_id = %s, "
     " meet_link = CASE WHEN status = 'cancelled' THEN meet_link ELSE coalesce(%s, meet_link) END, "
     " link_source = CASE WHEN status <> 'cancelled' AND %s::text IS NOT NULL THEN 'google' "
     "  ELSE link_source END, "
     " calendar_state = CASE WHEN status = 'cancelled' THEN 'delete' "
     "  WHEN updated_at = %s::timestamptz THEN 'synced' ELSE 'patch' END::video_calendar_state, "
     " calendar_attempts = 0, calendar_next_attempt = now() "
     "WHERE id = %s::uuid"},
    /* state after success (synced | none), claimed state, claimed
     * updated_at, session: done unless it changed meanwhile */
    {SQL_SYNCED,
     "UPDATE video_sessions SET calendar_state = %s::video_calendar_state, calendar_attempts = 0 "
     "WHERE calendar_state = %s::video_calendar_state AND updated_at = %s::timestamptz "
     " AND id = %s::uuid"},
    /* delay in seconds (NULL: give up), session */
    {SQL_RETRY,
     "UPDATE video_sessions SET calendar_next_attempt = now() + %s::int * interval '1 second' "
     "WHERE id = %s::uuid"},
    {SQL_EVENTS_CLEANUP,
     "DELETE FROM chat_events WHERE created_at < now() - interval '" EVENTS_KEPT "'"},
    {NULL, NULL}
};

const community_part video_tasks_part = {"video tasks", NULL, task_statements};

/* ---------------------------------------------------------------- quiet SQL */

static apr_dbd_prepared_t *statement(server_rec *s, ap_dbd_t *db, const char *label)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, label, APR_HASH_KEY_STRING);

    if (!st)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "statement %s is not prepared", label);
    return st;
}

int cv_exec_quiet(apr_pool_t *p, server_rec *s, ap_dbd_t *db, const char *label, int nargs,
                  const char *const *args)
{
    apr_dbd_prepared_t *st = statement(s, db, label);
    int rows = 0, rv;

    if (!st)
        return -1;
    rv = apr_dbd_pquery(db->driver, p, db->handle, &rows, st, nargs, (const char **)args);
    if (rv != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s failed: %s", label,
                     apr_dbd_error(db->driver, db->handle, rv));
        return -1;
    }
    return rows;
}

apr_dbd_results_t *cv_select_quiet(apr_pool_t *p, server_rec *s, ap_dbd_t *db,
                                   const char *label, int nargs, const char *const *args)
{
    apr_dbd_prepared_t *st = statement(s, db, label);
    apr_dbd_results_t *res = NULL;
    int rv;

    if (!st)
        return NULL;
    rv = apr_dbd_pselect(db->driver, p, db->handle, &res, st, 1, nargs, (const char **)args);
    if (rv != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s failed: %s", label,
                     apr_dbd_error(db->driver, db->handle, rv));
        return NULL;
    }
    return res;
}

static const char *column(apr_pool_t *p, ap_dbd_t *db, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(db->driver, row, col);

    if (!v)
        return NULL;
    /* SQL NULL comes back as "": only text columns that are never "" are
     * read here, so "" means NULL. */
    return *v ? apr_pstrdup(p, v) : NULL;
}

/* ---------------------------------------------------------------- reminders */

int video_remind_pass(apr_pool_t *p, server_rec *s, ap_dbd_t *db)
{
    const char *args[2], *reminded = NULL;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;

    args[0] = bl_time_param(p, bl_server_now(s));
    args[1] = apr_itoa(p, chat_video_config()->remind_minutes);
    if (!(res = cv_select_quiet(p, s, db, SQL_REMIND, 2, args)))
        return 0;
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0)
        reminded = column(p, db, row, 0);
    return reminded ? atoi(reminded) : 0;
}

/* ---------------------------------------------------------------- calendar */

/* Seconds before retry number n: 30 s doubled each time, at most 1 h. */
static int backoff_seconds(int attempts)
{
    int delay = 30;

    while (--attempts > 0 && delay < 3600)
        delay *= 2;
    return delay > 3600 ? 3600 : delay;
}

typedef struct {
    const char *id, *state, *title, *description, *starts, *ends, *event_id, *updated_at;
    int attempts;
} claimed_session;

static void sync_one(apr_pool_t *p, server_rec *s, ap_dbd_t *db, const claimed_session *c)
{
    video_cal_event ev;
    video_cal_result rv;
    const char *why = NULL, *meet = NULL, *args[5];

    ev.session_id = c->id;
    ev.title = c->title;
    ev.description = c->description;
    ev.starts_at = c->starts;
    ev.ends_at = c->ends;
    ev.event_id = c->event_id ? c->event_id : video_event_id(p, c->id);

    if (!strcmp(c->state, "insert"))
        rv = video_calendar_insert(p, s, &ev, &meet, &why);
    else if (!strcmp(c->state, "patch"))
        rv = video_calendar_patch(p, s, &ev, &why);
    else
        rv = video_calendar_delete(p, s, ev.event_id, &why);

    if (rv == VIDEO_CAL_OK && !strcmp(c->state, "insert")) {
        args[0] = ev.event_id;
        args[1] = meet;
        args[2] = meet;
        args[3] = c->updated_at;
        args[4] = c->id;
        cv_exec_quiet(p, s, db, SQL_INSERTED, 5, args);
        return;
    }
    if (rv == VIDEO_CAL_OK) {
        args[0] = !strcmp(c->state, "delete") ? "none" : "synced";
        args[1] = c->state;
        args[2] = c->updated_at;
        args[3] = c->id;
        /* Changed meanwhile: still due (the lease ends), done next time. */
        if (cv_exec_quiet(p, s, db, SQL_SYNCED, 4, args) == 0) {
            args[0] = "0";
            args[1] = c->id;
            cv_exec_quiet(p, s, db, SQL_RETRY, 2, args);
        }
        return;
    }
    if (rv == VIDEO_CAL_FAILED || c->attempts >= MAX_ATTEMPTS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "video session %s: Google Calendar %s given up after %d attempts (%s)",
                     c->id, c->state, c->attempts, why ? why : "refused");
        args[0] = NULL;
    } else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "video session %s: Google Calendar %s failed (%s), retried later",
                     c->id, c->state, why ? why : "");
        args[0] = apr_itoa(p, backoff_seconds(c->attempts));
    }
    args[1] = c->id;
    cv_exec_quiet(p, s, db, SQL_RETRY, 2, args);
}

int video_calendar_pass(apr_pool_t *p, server_rec *s, ap_dbd_t *db)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    apr_array_header_t *claimed;
    int i;

    cv_exec_quiet(p, s, db, SQL_EVENTS_CLEANUP, 0, NULL);
    if (!video_calendar_configured())
        return 0;
    if (!(res = cv_select_quiet(p, s, db, SQL_CLAIM, 0, NULL)))
        return 0;
    claimed = apr_array_make(p, 10, sizeof(claimed_session));
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        claimed_session *c = apr_array_push(claimed);
        const char *attempts;

        c->id = column(p, db, row, 0);
        c->state = column(p, db, row, 1);
        c->title = column(p, db, row, 2);
        c->description = column(p, db, row, 3);
        c->starts = column(p, db, row, 4);
        c->ends = column(p, db, row, 5);
        c->event_id = column(p, db, row, 6);
        attempts = column(p, db, row, 7);
        c->attempts = attempts ? atoi(attempts) : 1;
        c->updated_at = column(p, db, row, 8);
    }
    for (i = 0; i < claimed->nelts; i++)
        sync_one(p, s, db, &APR_ARRAY_IDX(claimed, i, claimed_session));
    return claimed->nelts;
}
