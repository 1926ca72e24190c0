/* The delivery worker: claims due notifications from the outbox, hands each
 * to its channel and records the outcome.
 *
 * Exactly once across hosts: a batch is claimed in one UPDATE over
 * SELECT ... FOR UPDATE SKIP LOCKED, so two workers never take the same row.
 * Nothing lost on a crash: the claim sets status 'sending' and a lease
 * (next_attempt_at = now() + BeautifulNotifyLease); a row whose lease ran
 * out while still 'sending' is put back to 'pending' by the reclaim step. */
#include "notify_private.h"

#include <http_log.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_notify);

/* How often expired leases are looked for (at most): they only exist after
 * a crash, so there is no point in looking every second. */
#define BL_RECLAIM_EVERY apr_time_from_sec(30)
/* How often the queue depth is counted for /metrics. */
#define BL_QUEUE_EVERY apr_time_from_sec(10)
/* Longest pause after the database could not be reached. */
#define BL_DB_PAUSE_MAX apr_time_from_sec(30)

/* Due rows that the recipient's preferences do not turn away or hold
 * back (those are handled by SQL_SKIP and SQL_DEFER first), oldest first. */
#define SQL_DUE(channel_arg, limit_arg) \
    "SELECT n.id FROM notifications n" \
    " LEFT JOIN notification_preferences p ON p.user_id = n.user_id" \
    " WHERE n.status = 'pending' AND n.channel = " channel_arg "::notification_channel" \
    " AND n.next_attempt_at <= now()" \
    " AND notification_opt_out(p, n.channel, n.type) IS NULL" \
    " AND notification_deferred_until(p, n.channel, n.type, now()) IS NULL" \
    " ORDER BY n.next_attempt_at, n.seq LIMIT " limit_arg "::int FOR UPDATE OF n SKIP LOCKED"

#define SQL_CLAIM \
    "WITH claimed AS (" \
    " UPDATE notifications SET status = 'sending', attempts = attempts + 1," \
    "  next_attempt_at = now() + %s::int * interval '1 second'" \
    " WHERE id IN (" SQL_DUE("%s", "%s") ")" \
    " RETURNING id, user_id, type, title, body, attempts)" \
    " SELECT c.id::text, c.user_id::text," \
    "  CASE WHEN u.deleted_at IS NULL THEN u.email::text END," \
    "  CASE WHEN u.deleted_at IS NULL THEN p.phone END," \
    "  c.type, c.title, c.body, c.attempts::text" \
    " FROM claimed c LEFT JOIN users u ON u.id = c.user_id" \
    " LEFT JOIN notification_preferences p ON p.user_id = c.user_id"

/* In-app rows are delivered by being stored: claimed and marked sent in
 * one statement, then published to the user's live streams. */
#define SQL_DELIVER_IN_APP \
    "UPDATE notifications n SET status = 'sent', sent_at = now(), attempts = attempts + 1," \
    " last_error = NULL WHERE n.id IN (" SQL_DUE("'in_app'", "%s") ")" \
    " RETURNING n.user_id::text, n.seq::text, " BL_NOTIFY_ITEM_JSON "::text"

/* Preferences at delivery time: opted out -> skipped ... */
#define SQL_SKIP \
    "UPDATE notifications n SET status = 'skipped'," \
    " skip_reason = notification_opt_out(p, n.channel, n.type)" \
    " FROM notification_preferences p WHERE p.user_id = n.user_id" \
    " AND n.status = 'pending' AND n.next_attempt_at <= now()" \
    " AND notification_opt_out(p, n.channel, n.type) IS NOT NULL RETURNING n.channel::text"

/* ... and inside quiet hours -> due again when they end. */
#define SQL_DEFER \
    "UPDATE notifications n" \
    " SET next_attempt_at = notification_deferred_until(p, n.channel, n.type, now())" \
    " FROM notification_preferences p WHERE p.user_id = n.user_id" \
    " AND n.status = 'pending' AND n.next_attempt_at <= now()" \
    " AND notification_deferred_until(p, n.channel, n.type, now()) IS NOT NULL"

#define SQL_MARK_SENT \
    "UPDATE notifications SET status = 'sent', sent_at = now(), last_error = NULL," \
    " provider_id = %s WHERE id = %s::uuid AND status = 'sending'"

#define SQL_MARK_RETRY \
    "UPDATE notifications SET status = 'pending', last_error = %s," \
    " next_attempt_at = now() + %s::int * interval '1 second'" \
    " WHERE id = %s::uuid AND status = 'sending'"

#define SQL_MARK_FAILED \
    "UPDATE notifications SET status = 'failed', last_error = %s" \
    " WHERE id = %s::uuid AND status = 'sending'"

#define SQL_MARK_SKIPPED \
    "UPDATE notifications SET status = 'skipped', skip_reason = %s" \
    " WHERE id = %s::uuid AND status = 'sending'"

#define SQL_RECLAIM \
    "UPDATE notifications SET last_error = 'delivery interrupted'," \
    " status = CASE WHEN attempts >= %s::int THEN 'failed'::notification_status" \
    "  ELSE 'pending'::notification_status END," \
    " next_attempt_at = now()" \
    " WHERE status = 'sending' AND next_attempt_at <= now()"

#define SQL_DEVICES \
    "SELECT id::text, token FROM push_devices WHERE user_id = %s::uuid" \
    " ORDER BY last_seen_at DESC LIMIT 20"

#define SQL_DEVICE_GONE "DELETE FROM push_devices WHERE id = %s::uuid"

/* The queue depth for the metrics (partial indexes serve each status). */
#define SQL_QUEUE \
    "SELECT channel::text, status::text, count(*)::text," \
    " COALESCE(max(EXTRACT(EPOCH FROM now() - next_attempt_at))" \
    "          FILTER (WHERE status = 'pending' AND next_attempt_at <= now()), 0)::bigint::text" \
    " FROM notifications" \
    " WHERE status IN ('pending', 'sending', 'failed') GROUP BY 1, 2"

const bl_statement bl_notify_statements[] = {
    {"notify_claim", SQL_CLAIM},
    {"notify_deliver_in_app", SQL_DELIVER_IN_APP},
    {"notify_skip", SQL_SKIP},
    {"notify_defer", SQL_DEFER},
    {"notify_mark_sent", SQL_MARK_SENT},
    {"notify_mark_retry", SQL_MARK_RETRY},
    {"notify_mark_failed", SQL_MARK_FAILED},
    {"notify_mark_skipped", SQL_MARK_SKIPPED},
    {"notify_reclaim", SQL_RECLAIM},
    {"notify_devices", SQL_DEVICES},
    {"notify_device_gone", SQL_DEVICE_GONE},
    {"notify_queue", SQL_QUEUE},
    {NULL, NULL}
};

struct bl_notify_worker {
    server_rec *s;
    const bl_notify_conf *conf;
    apr_time_t next_reclaim;
    apr_time_t next_queue_count;
    apr_time_t db_retry_at;      /* after a failed connect: pause until then */
    apr_interval_time_t db_pause;
};

bl_notify_worker *bl_notify_worker_create(apr_pool_t *p, server_rec *s)
{
    bl_notify_worker *w = apr_pcalloc(p, sizeof(*w));

    w->s = s;
    w->conf = bl_notify_server_conf(s);
    return w;
}

/* ---------------------------------------------------------------- SQL */

static apr_dbd_prepared_t *statement(bl_notify_worker *w, ap_dbd_t *db,
                                     const char *label)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, label, APR_HASH_KEY_STRING);

    if (!st)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s,
                     "statement %s is not prepared (migrations applied?)", label);
    return st;
}

/* Runs an UPDATE; returns the number of rows or -1 (logged, no arguments). */
static int run_update(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db,
                      const char *label, int nargs, const char **args)
{
    apr_dbd_prepared_t *st = statement(w, db, label);
    int nrows = 0, rc;

    if (!st)
        return -1;
    rc = apr_dbd_pquery(db->driver, p, db->handle, &nrows, st, nargs, args);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s, "%s failed: %s", label,
                     apr_dbd_error(db->driver, db->handle, rc));
        return -1;
    }
    return nrows;
}

/* Column col as text, or NULL for SQL NULL. (APR_DBD_TYPE_NULL would not
 * do: the pgsql driver writes through the data pointer for it.) */
static const char *column(ap_dbd_t *db, apr_pool_t *p, apr_dbd_row_t *row, int col)
{
    char *value = NULL;

    if (apr_dbd_datum_get(db->driver, row, col, APR_DBD_TYPE_STRING, &value) != APR_SUCCESS
        || !value)
        return NULL;
    return apr_pstrdup(p, value);
}

static const char *seconds_text(apr_pool_t *p, apr_interval_time_t t)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_sec(t));
}

/* Claims up to batch_size due rows of channel; returns them (maybe none),
 * or NULL on a database error. */
static apr_array_header_t *claim(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db,
                                 const char *channel)
{
    apr_dbd_prepared_t *st = statement(w, db, "notify_claim");
    const char *args[3];
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_array_header_t *batch;
    int rc;

    if (!st)
        return NULL;
    args[0] = seconds_text(p, w->conf->lease);
    args[1] = channel;
    args[2] = apr_itoa(p, w->conf->batch_size);
    rc = apr_dbd_pselect(db->driver, p, db->handle, &res, st, 1, 3, args);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s, "notify_claim failed: %s",
                     apr_dbd_error(db->driver, db->handle, rc));
        return NULL;
    }
    batch = apr_array_make(p, w->conf->batch_size, sizeof(bl_notification));
    /* Read every row: the result must be drained whatever happens next. */
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        bl_notification *n = apr_array_push(batch);
        const char *attempts;

        n->channel = channel;
        n->id = column(db, p, row, 0);
        n->user_id = column(db, p, row, 1);
        n->email = column(db, p, row, 2);
        n->phone = column(db, p, row, 3);
        n->type = column(db, p, row, 4);
        n->title = column(db, p, row, 5);
        n->body = column(db, p, row, 6);
        attempts = column(db, p, row, 7);
        n->attempts = attempts ? atoi(attempts) : 1;
    }
    return batch;
}

/* ---------------------------------------------------------------- outcome */

/* Exponential: base * 2^(attempts-1), capped at backoff_max. */
static apr_interval_time_t backoff(const bl_notify_conf *conf, int attempts)
{
    apr_interval_time_t d = conf->backoff_base;
    int i;

    for (i = 1; i < attempts && d < conf->backoff_max; i++)
        d *= 2;
    return d < conf->backoff_max ? d : conf->backoff_max;
}

static void record(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db,
                   const bl_notification *n, bl_send_status status,
                   const char *provider_id, const char *error)
{
    const char *args[3];

    static const char *const outcome[] = {"sent", "retry", "failed", "skipped"};

    if (status == BL_SEND_RETRY && n->attempts >= w->conf->max_attempts)
        status = BL_SEND_PERMANENT;
    bl_metrics_count_notification(n->channel, outcome[status]);
    switch (status) {
    case BL_SEND_OK:
        args[0] = provider_id;
        args[1] = n->id;
        run_update(w, p, db, "notify_mark_sent", 2, args);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, w->s,
                     "notification %s sent (attempt %d)", n->id, n->attempts);
        return;
    case BL_SEND_RETRY:
        args[0] = error;
        args[1] = seconds_text(p, backoff(w->conf, n->attempts));
        args[2] = n->id;
        run_update(w, p, db, "notify_mark_retry", 3, args);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s,
                     "notification %s: attempt %d failed, retry in %ss: %s",
                     n->id, n->attempts, args[1], error);
        return;
    case BL_SEND_PERMANENT:
        args[0] = error;
        args[1] = n->id;
        run_update(w, p, db, "notify_mark_failed", 2, args);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s,
                     "notification %s failed after %d attempt(s): %s",
                     n->id, n->attempts, error);
        return;
    case BL_SEND_SKIPPED:
        args[0] = error;
        args[1] = n->id;
        run_update(w, p, db, "notify_mark_skipped", 2, args);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, w->s, "notification %s skipped: %s",
                     n->id, error);
        return;
    }
}

/* ---------------------------------------------------------------- passes */

static void reclaim(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db)
{
    const char *args[1];
    apr_time_t now = apr_time_now();
    int n;

    if (now < w->next_reclaim)
        return;
    /* A short lease (tests) is also looked for sooner. */
    w->next_reclaim = now + (w->conf->lease < BL_RECLAIM_EVERY ? w->conf->lease
                                                                : BL_RECLAIM_EVERY);
    args[0] = apr_itoa(p, w->conf->max_attempts);
    n = run_update(w, p, db, "notify_reclaim", 1, args);
    if (n > 0)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s,
                     "%d notification(s) whose delivery was interrupted will be retried", n);
}

/* Runs a prepared SELECT of one or more text columns and hands each row
 * to fn; returns the number of rows or -1 (logged). */
static int each_row(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db, const char *label,
                    int nargs, const char **args,
                    void (*fn)(ap_dbd_t *db, apr_pool_t *p, apr_dbd_row_t *row, void *ctx),
                    void *ctx)
{
    apr_dbd_prepared_t *st = statement(w, db, label);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rc, n = 0;

    if (!st)
        return -1;
    rc = apr_dbd_pselect(db->driver, p, db->handle, &res, st, 1, nargs, args);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s, "%s failed: %s", label,
                     apr_dbd_error(db->driver, db->handle, rc));
        return -1;
    }
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        fn(db, p, row, ctx);
        n++;
    }
    return n;
}

static void count_skipped(ap_dbd_t *db, apr_pool_t *p, apr_dbd_row_t *row, void *ctx)
{
    bl_metrics_count_notification(column(db, p, row, 0), "skipped");
}

/* How long the most overdue waiting row of a channel has been due. */
static void set_oldest_pending(const char *channel, long seconds)
{
    char series[96];

    apr_snprintf(series, sizeof series,
                 "beautiful_notifications_oldest_pending_seconds{channel=\"%s\"}", channel);
    bl_metrics_gauge(series, seconds);
}

static void set_queue(ap_dbd_t *db, apr_pool_t *p, apr_dbd_row_t *row, void *ctx)
{
    const char *channel = column(db, p, row, 0), *status = column(db, p, row, 1);
    const char *count = column(db, p, row, 2), *oldest = column(db, p, row, 3);

    bl_metrics_set_notification_queue(channel, status, count ? atol(count) : 0);
    if (channel && status && !strcmp(status, "pending"))
        set_oldest_pending(channel, oldest ? atol(oldest) : 0);
}

/* Every few seconds: the queue depth, zero where no row is. */
static void count_queue(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db)
{
    static const char *const channels[] = {"email", "sms", "push", "in_app"};
    static const char *const statuses[] = {"pending", "sending", "failed"};
    apr_time_t now = apr_time_now();
    int c, i;

    if (now < w->next_queue_count)
        return;
    w->next_queue_count = now + BL_QUEUE_EVERY;
    for (c = 0; c < 4; c++) {
        for (i = 0; i < 3; i++)
            bl_metrics_set_notification_queue(channels[c], statuses[i], 0);
        set_oldest_pending(channels[c], 0);
    }
    each_row(w, p, db, "notify_queue", 0, NULL, set_queue, NULL);
}

/* Applies the preferences to what is due before anything is claimed. */
static void gate(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db)
{
    each_row(w, p, db, "notify_skip", 0, NULL, count_skipped, NULL);
    run_update(w, p, db, "notify_defer", 0, NULL);
}

static void deliver_in_app(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db)
{
    apr_dbd_prepared_t *st = statement(w, db, "notify_deliver_in_app");
    const char *args[1];
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_array_header_t *events;
    int rc, i;

    if (!st)
        return;
    args[0] = apr_itoa(p, w->conf->batch_size * 5);
    rc = apr_dbd_pselect(db->driver, p, db->handle, &res, st, 1, 1, args);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s, "notify_deliver_in_app failed: %s",
                     apr_dbd_error(db->driver, db->handle, rc));
        return;
    }
    events = apr_array_make(p, 16, sizeof(const char *) * 3);
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        const char **ev = apr_array_push(events);

        ev[0] = column(db, p, row, 0);
        ev[1] = column(db, p, row, 1);
        ev[2] = column(db, p, row, 2);
        bl_metrics_count_notification("in_app", "sent");
    }
    /* committed (autocommit): a client that gets the event can read the row */
    for (i = 0; i < events->nelts; i++) {
        const char **ev = (const char **)(events->elts + (size_t)i * events->elt_size);

        if (bl_stream_publish(w->s, p, notify_stream_channel(p, ev[0]), ev[1], "notification",
                              ev[2]) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s,
                         "in-app notifications stored but not published (Redis): "
                         "open streams get them on reconnect");
            break;
        }
    }
}

/* The recipient's push devices, or NULL on a database error. */
static apr_array_header_t *devices_of(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db,
                                      const char *user_id)
{
    apr_dbd_prepared_t *st = statement(w, db, "notify_devices");
    const char *args[1] = {user_id};
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_array_header_t *devices;
    int rc;

    if (!st)
        return NULL;
    rc = apr_dbd_pselect(db->driver, p, db->handle, &res, st, 1, 1, args);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s, "notify_devices failed: %s",
                     apr_dbd_error(db->driver, db->handle, rc));
        return NULL;
    }
    devices = apr_array_make(p, 4, sizeof(bl_push_device));
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        bl_push_device *d = apr_array_push(devices);

        d->id = column(db, p, row, 0);
        d->token = column(db, p, row, 1);
        d->unregistered = 0;
    }
    return devices;
}

static bl_send_status deliver_push(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db,
                                   const bl_notification *n, const char **provider_id,
                                   const char **error)
{
    apr_array_header_t *devices = devices_of(w, p, db, n->user_id);
    bl_send_status st;
    int i;

    if (!devices) {
        *error = "database error reading devices";
        return BL_SEND_RETRY;
    }
    st = bl_push_deliver(p, w->s, &w->conf->push, n, devices, provider_id, error);
    for (i = 0; i < devices->nelts; i++) {
        const bl_push_device *d = &APR_ARRAY_IDX(devices, i, bl_push_device);
        const char *args[1] = {d->id};

        if (d->unregistered && run_update(w, p, db, "notify_device_gone", 1, args) > 0)
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, w->s,
                         "push device %s removed: FCM no longer knows it", d->id);
    }
    return st;
}

static bl_send_status deliver_one(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db,
                                  const char *channel, const bl_notification *n,
                                  const char **provider_id, const char **error)
{
    *provider_id = NULL;
    if (strcmp(channel, "email") == 0)
        return bl_email_deliver(p, &w->conf->mail, n, error);
    if (strcmp(channel, "sms") == 0)
        return bl_sms_deliver(p, &w->conf->sms, n, provider_id, error);
    return deliver_push(w, p, db, n, provider_id, error);
}

static void deliver_batch(bl_notify_worker *w, apr_pool_t *p, ap_dbd_t *db,
                          const char *channel)
{
    apr_array_header_t *batch = claim(w, p, db, channel);
    apr_pool_t *each;
    int i;

    if (!batch || batch->nelts == 0)
        return;
    apr_pool_create(&each, p);
    for (i = 0; i < batch->nelts; i++) {
        const bl_notification *n = &APR_ARRAY_IDX(batch, i, bl_notification);
        const char *error = NULL, *provider_id = NULL;
        bl_send_status st = deliver_one(w, each, db, channel, n, &provider_id, &error);

        record(w, each, db, n, st, provider_id, error ? error : "unknown error");
        apr_pool_clear(each);
    }
    apr_pool_destroy(each);
}

/* After a failed connect the pause doubles up to BL_DB_PAUSE_MAX, so a
 * database outage costs a log line now and then, not every second. */
static ap_dbd_t *open_db(bl_notify_worker *w, apr_pool_t *p)
{
    apr_time_t now = apr_time_now();
    ap_dbd_t *db;

    if (now < w->db_retry_at)
        return NULL;
    db = bl_db_open(p, w->s);
    if (db) {
        w->db_pause = 0;
        return db;
    }
    w->db_pause = w->db_pause ? w->db_pause * 2 : apr_time_from_sec(1);
    if (w->db_pause > BL_DB_PAUSE_MAX)
        w->db_pause = BL_DB_PAUSE_MAX;
    w->db_retry_at = now + w->db_pause;
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s,
                 "notification delivery: no database connection, next try in %ds",
                 (int)apr_time_sec(w->db_pause));
    return NULL;
}

void bl_notify_worker_run(bl_notify_worker *w, apr_pool_t *ptemp)
{
    ap_dbd_t *db = open_db(w, ptemp);

    if (!db)
        return;
    reclaim(w, ptemp, db);
    count_queue(w, ptemp, db);
    gate(w, ptemp, db);
    deliver_in_app(w, ptemp, db);
    deliver_batch(w, ptemp, db, "email");
    deliver_batch(w, ptemp, db, "sms");
    deliver_batch(w, ptemp, db, "push");
    bl_db_close(w->s, db);
}
