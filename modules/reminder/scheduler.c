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
#include <apr_thread_proc.h>
#include <string.h>

APLOG_USE_MODULE(beautiful_reminder);

/* Occurrences one reminder may produce in one batch (a minutely rule after
 * a long outage goes on in the next batch). */
#define MAX_OCCURRENCES 50
/* Batches per pass and step: 200 x 500 reminders. */
#define MAX_BATCHES 200

#define TS(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The owner may have been deactivated: such reminders are claimed too (or
 * they would stay due and be scanned again by every pass), and moved on to
 * their next occurrence without a log row or a notification. */
#define SQL_CLAIM \
    "SELECT r.id::text, r.rrule, r.timezone, extract(epoch FROM r.starts_at)::bigint::text," \
    " extract(epoch FROM r.ends_at)::bigint::text," \
    " extract(epoch FROM r.next_fire_at)::bigint::text," \
    " (SELECT (u.is_active AND u.deleted_at IS NULL)::int::text FROM users u" \
    "  WHERE u.id = r.user_id)" \
    " FROM reminders r WHERE r.is_active AND r.next_fire_at <= %s::timestamptz" \
    " ORDER BY r.next_fire_at LIMIT %s::int FOR UPDATE SKIP LOCKED"

/* An accepted caregiver whose own account is usable. */
#define CAREGIVERS_OF(patient) \
    " JOIN care_circle_members c ON c.patient_id = " patient " AND c.status = 'accepted'" \
    " JOIN users cg ON cg.id = c.caregiver_id AND cg.is_active AND cg.deleted_at IS NULL"

/* One statement per batch, set-based: the claimed reminders are read once
 * by primary key (src), every join is on the batch's own rows, so a batch
 * costs the same with 1,000 or 1,000,000 reminders in the table. Doses the
 * scheduler was down for (missed) alert each caregiver once per medication
 * reminder and batch, however many doses that covers.
 * Params: claimed ids; occurrence reminder ids, epochs, statuses; now;
 * minutes to the first check of a medication dose without nags; for each
 * claimed id in order, its next epoch (0: none) and last processed epoch
 * (0: unchanged). The claimed ids also bound the update by primary key. */
#define SQL_FIRE \
    "WITH claimed AS (SELECT %s::uuid[] AS ids)," \
    " occ AS (SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[])" \
    "  AS o(reminder_id, at, status))," \
    " src AS MATERIALIZED (SELECT r.id, r.user_id, r.type, r.title, r.medication_name," \
    "  r.dosage, r.location, r.channels, r.nag_after_minutes" \
    "  FROM reminders r WHERE r.id = ANY ((SELECT ids FROM claimed)::uuid[]))," \
    " ins AS (INSERT INTO reminder_logs (reminder_id, scheduled_for, fired_at, status," \
    "  next_nag_at)" \
    "  SELECT o.reminder_id, to_timestamp(o.at), %s::timestamptz," \
    "   o.status::reminder_log_status," \
    "   CASE WHEN o.status = 'fired' AND s.type = 'medication' THEN to_timestamp(o.at)" \
    "    + make_interval(mins => COALESCE(s.nag_after_minutes, %s::int)) END" \
    "  FROM occ o JOIN src s ON s.id = o.reminder_id" \
    "  ON CONFLICT (reminder_id, scheduled_for) DO NOTHING" \
    "  RETURNING id, reminder_id, scheduled_for, status)," \
    " outbox AS (INSERT INTO notifications (user_id, channel, type, title, body, data)" \
    "  SELECT s.user_id, ch, 'reminder.due', s.title," \
    "   CASE WHEN s.type = 'medication' THEN" \
    "     concat_ws(' ', 'Time to take', COALESCE(s.medication_name, s.title), s.dosage)" \
    "    WHEN s.type = 'appointment' THEN concat_ws(' at ', s.title, s.location)" \
    "    ELSE s.title END," \
    "   jsonb_build_object('reminder_id', s.id, 'log_id', i.id, 'reminder_type', s.type," \
    "    'occurrence', " TS("i.scheduled_for") ")" \
    "  FROM ins i JOIN src s ON s.id = i.reminder_id" \
    "  CROSS JOIN LATERAL unnest(s.channels) ch WHERE i.status = 'fired'" \
    "  RETURNING 1)," \
    " missed AS (SELECT i.reminder_id, count(*) AS n, min(i.scheduled_for) AS first," \
    "   max(i.scheduled_for) AS last" \
    "  FROM ins i WHERE i.status = 'missed' GROUP BY i.reminder_id)," \
    " circle AS (INSERT INTO notifications (user_id, channel, type, title, body, data)" \
    "  SELECT c.caregiver_id, ch, 'reminder.missed', 'Missed dose: ' || s.title," \
    "   concat_ws(' ', COALESCE(p.first_name, 'Someone you care for'), 'was not reminded of'," \
    "    s.title, CASE WHEN m.n = 1 THEN 'due at ' || " TS("m.last") \
    "     ELSE m.n || ' times from ' || " TS("m.first") " || ' to ' || " TS("m.last") " END)," \
    "   jsonb_build_object('reminder_id', s.id, 'patient_id', s.user_id," \
    "    'occurrence', " TS("m.last") ", 'first_occurrence', " TS("m.first") "," \
    "    'missed_count', m.n, 'cause', 'catch_up')" \
    "  FROM missed m JOIN src s ON s.id = m.reminder_id AND s.type = 'medication'" \
    "  JOIN users p ON p.id = s.user_id" \
    CAREGIVERS_OF("s.user_id") \
    "  CROSS JOIN LATERAL unnest(s.channels) ch" \
    "  RETURNING 1)," \
    " upd AS (UPDATE reminders r SET" \
    "  next_fire_at = CASE WHEN n.next > 0 THEN to_timestamp(n.next) END," \
    "  last_fired_at = CASE WHEN n.last > 0 THEN to_timestamp(n.last) ELSE r.last_fired_at END" \
    "  FROM unnest((SELECT ids FROM claimed), %s::bigint[], %s::bigint[]) AS n(id, next, last)" \
    "  WHERE r.id = n.id AND r.id = ANY ((SELECT ids FROM claimed)::uuid[]) RETURNING 1)" \
    " SELECT (SELECT count(*) FROM ins)::text, (SELECT count(*) FROM outbox)::text," \
    "  (SELECT count(*) FROM upd)::text, (SELECT count(*) FROM circle)::text"

/* Params: minutes to the missed check without nags, now, batch, now. An
 * occurrence of a deactivated owner is stopped: no nag, no alert. */
#define SQL_NAG \
    "WITH due AS (" \
    "  SELECT l.id, r.user_id, r.title, r.channels, r.type," \
    "   COALESCE(r.nag_after_minutes, %s::int) AS wait_min," \
    "   CASE WHEN NOT (p.is_active AND p.deleted_at IS NULL) THEN 'stopped'" \
    "    WHEN l.status = 'snoozed' THEN 'due'" \
    "    WHEN r.nag_max_times IS NOT NULL AND l.nag_count < r.nag_max_times THEN 'nag'" \
    "    ELSE 'missed' END AS kind, p.first_name" \
    "  FROM reminder_logs l JOIN reminders r ON r.id = l.reminder_id" \
    "  JOIN users p ON p.id = r.user_id" \
    "  WHERE l.next_nag_at <= %s::timestamptz AND r.is_active" \
    "  AND l.status IN ('fired', 'snoozed')" \
    "  ORDER BY l.next_nag_at LIMIT %s::int FOR UPDATE OF l SKIP LOCKED)," \
    " upd AS (UPDATE reminder_logs l SET" \
    "  status = CASE WHEN d.kind = 'missed' THEN 'missed'" \
    "   WHEN d.kind = 'stopped' THEN l.status::text ELSE 'fired' END::reminder_log_status," \
    "  nag_count = l.nag_count + CASE WHEN d.kind = 'nag' THEN 1 ELSE 0 END," \
    "  next_nag_at = CASE WHEN d.kind IN ('missed', 'stopped') OR d.type <> 'medication'" \
    "   THEN NULL ELSE %s::timestamptz + make_interval(mins => d.wait_min) END" \
    "  FROM due d WHERE l.id = d.id" \
    "  RETURNING l.id, l.reminder_id, l.scheduled_for, l.nag_count, d.kind, d.user_id," \
    "   d.title, d.channels, d.first_name)," \
    " mine AS (INSERT INTO notifications (user_id, channel, type, title, body, data)" \
    "  SELECT u.user_id, ch, 'reminder.' || u.kind, u.title," \
    "   CASE WHEN u.kind = 'nag' THEN 'Still due: ' || u.title ELSE u.title END," \
    "   jsonb_build_object('reminder_id', u.reminder_id, 'log_id', u.id," \
    "    'occurrence', " TS("u.scheduled_for") ", 'nag_count', u.nag_count)" \
    "  FROM upd u CROSS JOIN LATERAL unnest(u.channels) ch WHERE u.kind IN ('due', 'nag')" \
    "  RETURNING 1)," \
    " circle AS (INSERT INTO notifications (user_id, channel, type, title, body, data)" \
    "  SELECT c.caregiver_id, ch, 'reminder.missed', 'Missed dose: ' || u.title," \
    "   concat_ws(' ', COALESCE(u.first_name, 'Someone you care for'), 'has not confirmed'," \
    "    u.title, 'due at', " TS("u.scheduled_for") ")," \
    "   jsonb_build_object('reminder_id', u.reminder_id, 'log_id', u.id," \
    "    'patient_id', u.user_id, 'occurrence', " TS("u.scheduled_for") "," \
    "    'cause', 'unanswered')" \
    "  FROM upd u" CAREGIVERS_OF("u.user_id") \
    "  CROSS JOIN LATERAL unnest(u.channels) ch WHERE u.kind = 'missed'" \
    "  RETURNING 1)" \
    " SELECT (SELECT count(*) FROM upd)::text, (SELECT count(*) FROM mine)::text," \
    "  (SELECT count(*) FROM circle)::text"

const bl_statement reminder_scheduler_statements[] = {
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
    long max_lag;              /* seconds the most overdue claimed reminder waited */
} pass_ctx;

/* The scheduler's figures on /metrics. */
#define SERIES_FIRED  "beautiful_reminders_fired_total{outcome=\"fired\"}"
#define SERIES_MISSED "beautiful_reminders_fired_total{outcome=\"missed\"}"
#define SERIES_NAG    "beautiful_reminders_fired_total{outcome=\"nag\"}"
#define SERIES_LAG    "beautiful_reminder_lag_seconds"

void reminder_metrics_init(void)
{
    bl_metrics_count(SERIES_FIRED, 0);
    bl_metrics_count(SERIES_MISSED, 0);
    bl_metrics_count(SERIES_NAG, 0);
    bl_metrics_gauge(SERIES_LAG, 0);
}

/* After a batch committed: its occurrences by outcome. */
static void count_fired(const apr_array_header_t *statuses)
{
    apr_uint64_t fired = 0, missed = 0;
    int i;

    for (i = 0; i < statuses->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(statuses, i, const char *), "missed"))
            missed++;
        else
            fired++;
    }
    bl_metrics_count(SERIES_FIRED, fired);
    bl_metrics_count(SERIES_MISSED, missed);
}

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

/* Within a batch, reminders with the same schedule text share one parse,
 * and those that also share its bounds and due time share each next
 * occurrence: 100,000 reminders of one rule cost libical one parse and one
 * expansion per occurrence, not 100,000. */
typedef struct {
    apr_hash_t *parsed;   /* "zone\nrules" -> bl_schedule (NULL: does not parse) */
    apr_hash_t *next;     /* "zone\nrules\nstarts\nends\nafter" -> time_t */
} schedule_cache;

static bl_schedule *cached_schedule(pass_ctx *c, schedule_cache *cache, const char *rules,
                                    const char *tz, time_t starts, time_t ends,
                                    const char **field)
{
    const char *key = apr_pstrcat(c->p, tz ? tz : "", "\n", rules ? rules : "", NULL);
    bl_schedule **parsed = apr_hash_get(cache->parsed, key, APR_HASH_KEY_STRING);
    const char *err = NULL;

    if (!parsed) {
        parsed = apr_palloc(c->p, sizeof(*parsed));
        /* without bounds: they are each reminder's own */
        *parsed = bl_schedule_load(c->p, rules, tz, 0, 0, field, &err);
        apr_hash_set(cache->parsed, key, APR_HASH_KEY_STRING, parsed);
    }
    if (!*parsed) {
        *field = "schedule";
        return NULL;
    }
    return bl_schedule_with_bounds(c->p, *parsed, starts, ends);
}

static time_t cached_next(pass_ctx *c, schedule_cache *cache, const bl_schedule *sc,
                          time_t after)
{
    const char *key = apr_psprintf(c->p, "%s\n%s\n%" APR_INT64_T_FMT "\n%" APR_INT64_T_FMT
                                   "\n%" APR_INT64_T_FMT, bl_schedule_tzid(sc),
                                   bl_schedule_rules(sc), (apr_int64_t)bl_schedule_starts(sc),
                                   (apr_int64_t)bl_schedule_ends(sc), (apr_int64_t)after);
    time_t *next = apr_hash_get(cache->next, key, APR_HASH_KEY_STRING);

    if (!next) {
        next = apr_palloc(c->p, sizeof(*next));
        *next = bl_schedule_next(sc, after);
        apr_hash_set(cache->next, key, APR_HASH_KEY_STRING, next);
    }
    return *next;
}

static int fire_batch_in(pass_ctx *c)
{
    apr_array_header_t *occ_id = apr_array_make(c->p, 64, sizeof(char *));
    apr_array_header_t *occ_at = apr_array_make(c->p, 64, sizeof(char *));
    apr_array_header_t *occ_st = apr_array_make(c->p, 64, sizeof(char *));
    apr_array_header_t *claimed_ids = apr_array_make(c->p, 64, sizeof(char *));
    apr_array_header_t *nx_at = apr_array_make(c->p, 64, sizeof(char *));
    apr_array_header_t *nx_last = apr_array_make(c->p, 64, sizeof(char *));
    schedule_cache cache = {apr_hash_make(c->p), apr_hash_make(c->p)};
    const char *args[8];
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
        const char *owner_active = column(c, row, 6), *field = NULL;
        bl_schedule *sc = cached_schedule(c, &cache, column(c, row, 1), column(c, row, 2),
                                          (time_t)apr_atoi64(column(c, row, 3)),
                                          ends ? (time_t)apr_atoi64(ends) : 0, &field);
        time_t at = (time_t)apr_atoi64(column(c, row, 5)), last = 0;
        int n;

        claimed++;
        if (!sc)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, c->s,
                         "reminder %s: stored schedule no longer parses (%s): not fired", id,
                         field);
        else if (!owner_active || strcmp(owner_active, "1") != 0)
            at = cached_next(c, &cache, sc, c->now);    /* on, silently */
        else if (at && at <= c->now && (long)(c->now - at) > c->max_lag)
            c->max_lag = (long)(c->now - at);
        for (n = 0; sc && at && at <= c->now && n < MAX_OCCURRENCES; n++) {
            PUSH(occ_id, id);
            PUSH(occ_at, reminder_epoch_text(c->p, at));
            PUSH(occ_st, c->now - at > catch_up ? "missed" : "fired");
            last = at;
            at = cached_next(c, &cache, sc, at);
        }
        PUSH(claimed_ids, id);
        PUSH(nx_at, reminder_epoch_text(c->p, sc ? at : 0));
        PUSH(nx_last, reminder_epoch_text(c->p, last));
    }
    if (claimed == 0) {
        plain(c, "COMMIT");
        return 0;
    }
    args[0] = array_literal(c->p, claimed_ids);
    args[1] = array_literal(c->p, occ_id);
    args[2] = array_literal(c->p, occ_at);
    args[3] = array_literal(c->p, occ_st);
    args[4] = c->now_text;
    args[5] = apr_itoa(c->p, c->conf->missed_after_min);
    args[6] = array_literal(c->p, nx_at);
    args[7] = array_literal(c->p, nx_last);
    if (!(st = statement(c, "reminder_fire"))) {
        plain(c, "ROLLBACK");
        return -1;
    }
    rv = apr_dbd_pselect(c->db->driver, c->p, c->db->handle, &res, st, 1, 8, args);
    if (rv != 0 || plain(c, "COMMIT") != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s, "reminder batch not fired: %s",
                     apr_dbd_error(c->db->driver, c->db->handle, rv));
        plain(c, "ROLLBACK");
        return -1;
    }
    count_fired(occ_st);
    return claimed;
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
    if (handled > 0)
        bl_metrics_count(SERIES_NAG, (apr_uint64_t)handled);
    return handled;
}

/* Fires batches until one comes back short (or failed). */
static void fire_due(pass_ctx *c)
{
    int i;

    for (i = 0; i < MAX_BATCHES; i++) {
        if (fire_batch(c) < c->conf->batch_size)
            break;
    }
}

/* An extra worker of a pass with many reminders due: batches of its own on a
 * connection of its own, so the database works on two batches at once. */
static void *APR_THREAD_FUNC fire_worker(apr_thread_t *thread, void *data)
{
    pass_ctx *c = data;

    if ((c->db = bl_db_open(c->p, c->s)) != NULL) {
        fire_due(c);
        bl_db_close(c->s, c->db);
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

/* The first batch alone; when it was full, BeautifulReminderWorkers - 1
 * more workers claim alongside (SKIP LOCKED keeps them apart). */
static void fire_pass(pass_ctx *c)
{
    apr_thread_t *threads[8];
    pass_ctx workers[8];
    int i, started = 0;

    if (fire_batch(c) < c->conf->batch_size)
        return;
    for (i = 0; i < c->conf->workers - 1 && i < 8; i++) {
        workers[started] = *c;
        workers[started].max_lag = 0;
        /* a pool with an allocator of its own: APR pools are one thread's */
        if (apr_pool_create_unmanaged_ex(&workers[started].p, NULL, NULL) != APR_SUCCESS)
            break;
        if (apr_thread_create(&threads[started], NULL, fire_worker, &workers[started],
                              workers[started].p) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, c->s,
                         "reminder scheduler: no extra worker thread, firing alone");
            apr_pool_destroy(workers[started].p);
            break;
        }
        started++;
    }
    fire_due(c);
    for (i = 0; i < started; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, threads[i]);
        if (workers[i].max_lag > c->max_lag)
            c->max_lag = workers[i].max_lag;
        apr_pool_destroy(workers[i].p);
    }
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
    c.max_lag = 0;
    fire_pass(&c);
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
    bl_metrics_gauge(SERIES_LAG, c.max_lag);
    bl_db_close(s, c.db);
}
