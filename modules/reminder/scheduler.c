/* scheduler.c — the background task that fires reminders and nags.
 *
 * Exactly once across hosts: each batch of due reminders is claimed with
 * SELECT ... FOR UPDATE SKIP LOCKED, and in the same transaction gets its
 * reminder_logs rows (unique per reminder and occurrence; a row that
 * exists already — another host, or a skip ahead — inserts nothing and so
 * notifies nothing), its outbox rows and its next next_fire_at computed
 * with libical. A crash before COMMIT leaves everything as it was, to be
 * fired by the next pass: nothing twice, nothing lost.
 *
 * Catch-up: an occurrence found more than BeautifulReminderCatchUp after
 * its time (the scheduler was down) is logged missed, not fired.
 *
 * Nags: a fired medication occurrence carries next_nag_at; when it passes
 * unanswered the occurrence is notified again (reminder.nag) up to the
 * reminder's max_times, then marked missed and the care circle told
 * (reminder.missed). A snoozed occurrence comes back as reminder.due. All
 * times are bl_server_now()'s, passed to SQL. */
#include "reminder_private.h"

#include <http_log.h>
#include <apr_strings.h>
#include <string.h>

APLOG_USE_MODULE(beautiful_reminder);

/* Occurrences one reminder may produce in one batch (a minutely rule after
 * a long outage goes on in the next batch). */
#define MAX_OCCURRENCES 50
/* Batches per pass and step: 200 x 500 reminders. */
#define MAX_BATCHES 200

#define TS(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#define SQL_CLAIM \
    "SELECT r.id::text, r.rrule, r.timezone, extract(epoch FROM r.starts_at)::bigint::text," \
    " extract(epoch FROM r.ends_at)::bigint::text," \
    " extract(epoch FROM r.next_fire_at)::bigint::text" \
    " FROM reminders r WHERE r.is_active AND r.next_fire_at <= %s::timestamptz" \
    " ORDER BY r.next_fire_at LIMIT %s::int FOR UPDATE SKIP LOCKED"

/* Params: occurrence reminder ids, epochs, statuses; now; minutes to the
 * first check of a medication dose without nags; next ids, epochs (0:
 * none), last processed epochs. */
#define SQL_FIRE \
    "WITH occ AS (SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[])" \
    "  AS o(reminder_id, at, status))," \
    " ins AS (INSERT INTO reminder_logs (reminder_id, scheduled_for, fired_at, status," \
    "  next_nag_at)" \
    "  SELECT o.reminder_id, to_timestamp(o.at), %s::timestamptz," \
    "   o.status::reminder_log_status," \
    "   CASE WHEN o.status = 'fired' AND r.type = 'medication' THEN to_timestamp(o.at)" \
    "    + make_interval(mins => COALESCE(r.nag_after_minutes, %s::int)) END" \
    "  FROM occ o JOIN reminders r ON r.id = o.reminder_id" \
    "  ON CONFLICT (reminder_id, scheduled_for) DO NOTHING" \
    "  RETURNING id, reminder_id, scheduled_for, status)," \
    " outbox AS (INSERT INTO notifications (user_id, channel, type, title, body, data)" \
    "  SELECT r.user_id, ch, 'reminder.due', r.title," \
    "   CASE WHEN r.type = 'medication' THEN" \
    "     concat_ws(' ', 'Time to take', COALESCE(r.medication_name, r.title), r.dosage)" \
    "    WHEN r.type = 'appointment' THEN concat_ws(' at ', r.title, r.location)" \
    "    ELSE r.title END," \
    "   jsonb_build_object('reminder_id', r.id, 'log_id', i.id, 'reminder_type', r.type," \
    "    'occurrence', " TS("i.scheduled_for") ")" \
    "  FROM ins i JOIN reminders r ON r.id = i.reminder_id" \
    "  CROSS JOIN LATERAL unnest(r.channels) ch WHERE i.status = 'fired'" \
    "  RETURNING 1)," \
    " upd AS (UPDATE reminders r SET" \
    "  next_fire_at = CASE WHEN n.next > 0 THEN to_timestamp(n.next) END," \
    "  last_fired_at = to_timestamp(n.last)" \
    "  FROM unnest(%s::uuid[], %s::bigint[], %s::bigint[]) AS n(id, next, last)" \
    "  WHERE r.id = n.id RETURNING 1)" \
    " SELECT (SELECT count(*) FROM ins)::text, (SELECT count(*) FROM outbox)::text," \
    "  (SELECT count(*) FROM upd)::text"

/* Params: now, batch, now, minutes to the missed check without nags. */
#define SQL_NAG \
    "WITH due AS (" \
    "  SELECT l.id, r.user_id, r.title, r.channels, r.type," \
    "   COALESCE(r.nag_after_minutes, %s::int) AS wait_min," \
    "   CASE WHEN l.status = 'snoozed' THEN 'due'" \
    "    WHEN r.nag_max_times IS NOT NULL AND l.nag_count < r.nag_max_times THEN 'nag'" \
    "    ELSE 'missed' END AS kind" \
    "  FROM reminder_logs l JOIN reminders r ON r.id = l.reminder_id" \
    "  WHERE l.next_nag_at <= %s::timestamptz AND r.is_active" \
    "  AND l.status IN ('fired', 'snoozed')" \
    "  ORDER BY l.next_nag_at LIMIT %s::int FOR UPDATE OF l SKIP LOCKED)," \
    " upd AS (UPDATE reminder_logs l SET" \
    "  status = CASE WHEN d.kind = 'missed' THEN 'missed' ELSE 'fired' END::reminder_log_status," \
    "  nag_count = l.nag_count + CASE WHEN d.kind = 'nag' THEN 1 ELSE 0 END," \
    "  next_nag_at = CASE WHEN d.kind = 'missed' OR d.type <> 'medication' THEN NULL" \
    "   ELSE %s::timestamptz + make_interval(mins => d.wait_min) END" \
    "  FROM due d WHERE l.id = d.id" \
    "  RETURNING l.id, l.reminder_id, l.scheduled_for, l.nag_count, d.kind, d.user_id," \
    "   d.title, d.channels)," \
    " mine AS (INSERT INTO notifications (user_id, channel, type, title, body, data)" \
    "  SELECT u.user_id, ch, 'reminder.' || u.kind, u.title," \
    "   CASE WHEN u.kind = 'nag' THEN 'Still due: ' || u.title ELSE u.title END," \
    "   jsonb_build_object('reminder_id', u.reminder_id, 'log_id', u.id," \
    "    'occurrence', " TS("u.scheduled_for") ", 'nag_count', u.nag_count)" \
    "  FROM upd u CROSS JOIN LATERAL unnest(u.channels) ch WHERE u.kind IN ('due', 'nag')" \
    "  RETURNING 1)," \
    " circle AS (INSERT INTO notifications (user_id, channel, type, title, body, data)" \
    "  SELECT c.caregiver_id, ch, 'reminder.missed', 'Missed dose: ' || u.title," \
    "   concat_ws(' ', COALESCE(p.first_name, 'Someone you care for'), 'has not confirmed'," \
    "    u.title, 'due at', " TS("u.scheduled_for") ")," \
    "   jsonb_build_object('reminder_id', u.reminder_id, 'log_id', u.id," \
    "    'patient_id', u.user_id, 'occurrence', " TS("u.scheduled_for") ")" \
    "  FROM upd u JOIN care_circle_members c ON c.patient_id = u.user_id" \
    "   AND c.status = 'accepted'" \
    "  JOIN users p ON p.id = u.user_id" \
    "  CROSS JOIN LATERAL unnest(u.channels) ch WHERE u.kind = 'missed'" \
    "  RETURNING 1)" \
    " SELECT (SELECT count(*) FROM upd)::text, (SELECT count(*) FROM mine)::text," \
    "  (SELECT count(*) FROM circle)::text"

/* How long the oldest due reminder has waited (0: none due). */
#define SQL_LAG \
    "SELECT COALESCE(extract(epoch FROM %s::timestamptz - min(next_fire_at)), 0)::bigint::text" \
    " FROM reminders WHERE is_active AND next_fire_at <= %s::timestamptz"

#define SERIES_FIRED "beautiful_reminders_fired_total{outcome=\"fired\"}"
#define SERIES_MISSED "beautiful_reminders_fired_total{outcome=\"missed\"}"
#define SERIES_LAG "beautiful_reminder_lag_seconds"

const bl_statement reminder_scheduler_statements[] = {
    {"reminder_lag", SQL_LAG},
    {"reminder_claim", SQL_CLAIM},
    {"reminder_fire", SQL_FIRE},
    {"reminder_nag", SQL_NAG},
    {NULL, NULL}
};

typedef struct {
    server_rec *s;
    apr_pool_t *p;
    ap_dbd_t *db;
    const reminder_conf *conf;
    time_t now;
    const char *now_text;
    apr_uint64_t fired, missed;    /* occurrences of the batch being applied */
} pass_ctx;

static int plain(pass_ctx *c, const char *sql)
{
    int rows = 0;

    return apr_dbd_query(c->db->driver, c->db->handle, &rows, sql);
}

static apr_dbd_prepared_t *statement(pass_ctx *c, const char *label)
{
    apr_dbd_prepared_t *st = apr_hash_get(c->db->prepared, label, APR_HASH_KEY_STRING);

    if (!st)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s, "statement %s is not prepared", label);
    return st;
}

static const char *column(pass_ctx *c, apr_dbd_row_t *row, int col)
{
    char *v = NULL;

    if (apr_dbd_datum_get(c->db->driver, row, col, APR_DBD_TYPE_STRING, &v) != APR_SUCCESS
        || !v)
        return NULL;
    /* a copy: the driver's buffer does not outlive the next row */
    return apr_pstrdup(c->p, v);
}

/* Runs a prepared SELECT (fetched whole); NULL after logging. */
static apr_dbd_results_t *select_all(pass_ctx *c, const char *label, int nargs,
                                     const char **args)
{
    apr_dbd_prepared_t *st = statement(c, label);
    apr_dbd_results_t *res = NULL;
    int rv;

    if (!st)
        return NULL;
    rv = apr_dbd_pselect(c->db->driver, c->p, c->db->handle, &res, st, 1, nargs, args);
    if (rv != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s, "%s failed: %s", label,
                     apr_dbd_error(c->db->driver, c->db->handle, rv));
        return NULL;
    }
    return res;
}

/* "{a,b,c}" from an array of strings. */
static const char *array_literal(apr_pool_t *p, apr_array_header_t *items)
{
    return apr_pstrcat(p, "{", apr_array_pstrcat(p, items, ','), "}", NULL);
}

#define PUSH(arr, v) (*(const char **)apr_array_push(arr) = (v))

/* One batch: claim, expand, apply. Returns the reminders claimed, or -1. */
static int fire_batch_in(pass_ctx *c);

/* Each batch in a pool of its own: a pass may claim 100,000 reminders. */
static int fire_batch(pass_ctx *c)
{
    apr_pool_t *pass_pool = c->p, *batch_pool;
    int n;

    if (apr_pool_create(&batch_pool, pass_pool) != APR_SUCCESS)
        return -1;
    c->p = batch_pool;
    n = fire_batch_in(c);
    c->p = pass_pool;
    apr_pool_destroy(batch_pool);
    return n;
}

static int fire_batch_in(pass_ctx *c)
{
    apr_array_header_t *occ_id = apr_array_make(c->p, 64, sizeof(char *));
    apr_array_header_t *occ_at = apr_array_make(c->p, 64, sizeof(char *));
    apr_array_header_t *occ_st = apr_array_make(c->p, 64, sizeof(char *));
    apr_array_header_t *nx_id = apr_array_make(c->p, 64, sizeof(char *));
    apr_array_header_t *nx_at = apr_array_make(c->p, 64, sizeof(char *));
    apr_array_header_t *nx_last = apr_array_make(c->p, 64, sizeof(char *));
    const char *args[9];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    apr_dbd_prepared_t *st;
    int claimed = 0, rv;
    time_t catch_up = (time_t)apr_time_sec(c->conf->catch_up);

    if (plain(c, "BEGIN") != 0)
        return -1;
    args[0] = c->now_text;
    args[1] = apr_itoa(c->p, c->conf->batch_size);
    if (!(res = select_all(c, "reminder_claim", 2, args))) {
        plain(c, "ROLLBACK");
        return -1;
    }
    while (apr_dbd_get_row(c->db->driver, c->p, res, &row, -1) == 0) {
        const char *id = column(c, row, 0), *ends = column(c, row, 4);
        const char *field = NULL, *err = NULL;
        bl_schedule *sc = bl_schedule_load(c->p, column(c, row, 1), column(c, row, 2),
                                            (time_t)apr_atoi64(column(c, row, 3)),
                                            ends ? (time_t)apr_atoi64(ends) : 0, &field, &err);
        time_t at = (time_t)apr_atoi64(column(c, row, 5)), last = at;
        int n;

        claimed++;
        if (!sc)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, c->s,
                         "reminder %s: stored schedule no longer parses (%s): not fired", id,
                         field);
        for (n = 0; sc && at && at <= c->now && n < MAX_OCCURRENCES; n++) {
            PUSH(occ_id, id);
            PUSH(occ_at, reminder_epoch_text(c->p, at));
            PUSH(occ_st, c->now - at > catch_up ? "missed" : "fired");
            last = at;
            at = bl_schedule_next(sc, at);
        }
        PUSH(nx_id, id);
        PUSH(nx_at, reminder_epoch_text(c->p, sc ? at : 0));
        PUSH(nx_last, reminder_epoch_text(c->p, last));
    }
    if (claimed == 0) {
        plain(c, "COMMIT");
        return 0;
    }
    args[0] = array_literal(c->p, occ_id);
    args[1] = array_literal(c->p, occ_at);
    args[2] = array_literal(c->p, occ_st);
    args[3] = c->now_text;
    args[4] = apr_itoa(c->p, c->conf->missed_after_min);
    args[5] = array_literal(c->p, nx_id);
    args[6] = array_literal(c->p, nx_at);
    args[7] = array_literal(c->p, nx_last);
    if (!(st = statement(c, "reminder_fire"))) {
        plain(c, "ROLLBACK");
        return -1;
    }
    c->fired = c->missed = 0;
    for (rv = 0; rv < occ_st->nelts; rv++) {
        if (!strcmp(APR_ARRAY_IDX(occ_st, rv, const char *), "missed"))
            c->missed++;
        else
            c->fired++;
    }
    rv = apr_dbd_pselect(c->db->driver, c->p, c->db->handle, &res, st, 1, 8, args);
    if (rv == 0 && plain(c, "COMMIT") == 0) {
        bl_metrics_count(SERIES_FIRED, c->fired);
        bl_metrics_count(SERIES_MISSED, c->missed);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s, "reminder batch not fired: %s",
                     apr_dbd_error(c->db->driver, c->db->handle, rv));
        plain(c, "ROLLBACK");
        return -1;
    }
    return claimed;
}

/* The lag gauge: how long the oldest reminder still due has waited. */
static void set_lag(pass_ctx *c)
{
    const char *args[2] = {c->now_text, c->now_text};
    apr_dbd_results_t *res = select_all(c, "reminder_lag", 2, args);
    apr_dbd_row_t *row = NULL;

    if (res && apr_dbd_get_row(c->db->driver, c->p, res, &row, 1) == 0)
        bl_metrics_gauge(SERIES_LAG, apr_atoi64(column(c, row, 0)));
}

void reminder_metrics_init(void)
{
    bl_metrics_count(SERIES_FIRED, 0);
    bl_metrics_count(SERIES_MISSED, 0);
    bl_metrics_gauge(SERIES_LAG, 0);
}

/* One batch of nags and misses. Returns the occurrences handled, or -1. */
static int nag_batch(pass_ctx *c)
{
    const char *args[4];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    int handled = 0;

    args[0] = apr_itoa(c->p, c->conf->missed_after_min);
    args[1] = c->now_text;
    args[2] = apr_itoa(c->p, c->conf->batch_size);
    args[3] = c->now_text;
    /* one statement: its own transaction */
    if (!(res = select_all(c, "reminder_nag", 4, args)))
        return -1;
    if (apr_dbd_get_row(c->db->driver, c->p, res, &row, 1) == 0)
        handled = atoi(column(c, row, 0));
    return handled;
}

void reminder_scheduler_task(server_rec *s, void *data, apr_pool_t *pool)
{
    pass_ctx c;
    int i, n;

    c.s = s;
    c.p = pool;
    c.conf = reminder_config(s);
    if (!(c.db = bl_db_open(pool, s)))
        return;    /* the database is away: the next pass tries again */
    c.now = BL_SEC(bl_server_now(s));
    c.now_text = bl_time_param(pool, apr_time_from_sec(c.now));
    for (i = 0; i < MAX_BATCHES; i++) {
        if ((n = fire_batch(&c)) < c.conf->batch_size)
            break;
    }
    for (i = 0; i < MAX_BATCHES; i++) {
        apr_pool_t *batch_pool;
        if (apr_pool_create(&batch_pool, pool) != APR_SUCCESS)
            break;
        c.p = batch_pool;
        n = nag_batch(&c);
        c.p = pool;
        apr_pool_destroy(batch_pool);
        if (n < c.conf->batch_size)
            break;
    }
    set_lag(&c);
    bl_db_close(s, c.db);
}
