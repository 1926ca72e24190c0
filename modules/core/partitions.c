/* partitions.c — keeps the monthly partitions of audit_logs and
 * chat_messages created ahead of time (sql/README.md, "Partitions").
 *
 * A background task (bl_task_register) runs create_monthly_partitions() in
 * one child per host, outside any request: soon after start-up, then every
 * BeautifulPartitionInterval. The SQL function is idempotent and takes an
 * advisory lock per table, so several hosts calling it is harmless. */
#include "core_hooks.h"

#include <http_core.h>
#include <http_log.h>
#include <apr_strings.h>
#include <stdlib.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_PARTITION_TASK "beautiful-partitions"
#define BL_PARTITION_LABEL "core_create_partitions"
/* How often the task looks at the clock; the work itself runs per
 * interval. Short, so "at start-up" means within a second. */
#define BL_PARTITION_TICK apr_time_from_sec(1)
/* After a failure, the next try comes this soon (or at the interval). */
#define BL_PARTITION_RETRY apr_time_from_sec(60)

static const bl_statement partition_statements[] = {
    {BL_PARTITION_LABEL,
     "SELECT create_monthly_partitions('audit_logs', %s::int), "
     "create_monthly_partitions('chat_messages', %s::int)"},
    {NULL, NULL}
};

typedef struct {
    server_rec *s;
    apr_interval_time_t interval;
    int months_ahead;
    apr_time_t next_run;         /* 0 (in each new child): at the first tick */
    int failing;                 /* the last run failed (and said so once) */
} bl_partition_task;

/* Runs the statement on db. Returns NULL and sets *created, or why not. */
static const char *create_partitions(bl_partition_task *t, apr_pool_t *p, ap_dbd_t *db,
                                     int *created)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, BL_PARTITION_LABEL,
                                          APR_HASH_KEY_STRING);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[2];
    int rv, col;

    *created = 0;
    if (!st)
        return "statement " BL_PARTITION_LABEL " is not prepared";
    args[0] = args[1] = apr_itoa(p, t->months_ahead);
    rv = apr_dbd_pselect(db->driver, p, db->handle, &res, st, 1, 2, args);
    if (rv != 0) {
        const char *msg = apr_dbd_error(db->driver, db->handle, rv);
        return msg ? apr_pstrdup(p, msg) : "query failed";
    }
    /* random access: the result is fetched whole, one row */
    if (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        for (col = 0; col < 2; col++) {
            const char *v = apr_dbd_get_entry(db->driver, row, col);
            *created += v ? atoi(v) : 0;
        }
    }
    return NULL;
}

/* Logs a failure once per outage, and the recovery. */
static void report(bl_partition_task *t, const char *why, int created)
{
    if (why) {
        if (!t->failing)
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, t->s,
                         "monthly partitions not maintained: %s (retrying; logged "
                         "again only after it recovers)", why);
        t->failing = 1;
        return;
    }
    if (t->failing)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, t->s,
                     "monthly partitions maintained again");
    t->failing = 0;
    if (created > 0)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, t->s,
                     "created %d monthly partition(s)", created);
}

static void partition_run(bl_partition_task *t, apr_pool_t *p)
{
    ap_dbd_t *db = bl_db_open(p, t->s);
    const char *why = "no database connection";
    int created = 0;

    if (db) {
        why = create_partitions(t, p, db, &created);
        bl_db_close(t->s, db);
    }
    report(t, why, created);
    t->next_run = apr_time_now()
        + (why && BL_PARTITION_RETRY < t->interval ? BL_PARTITION_RETRY : t->interval);
}

/* Every tick; the work runs when it is due. */
static void partition_task(server_rec *s, void *data, apr_pool_t *pool)
{
    bl_partition_task *t = data;

    if (apr_time_now() >= t->next_run)
        partition_run(t, pool);
}

/* Runs before mod_watchdog's post_config (see bl_task_register) and
 * mod_dbd's, which copies the statements into its connection groups. */
int bl_partitions_post_config(apr_pool_t *pconf, server_rec *s)
{
    const bl_server_conf *sc = bl_core_server_conf(s);
    bl_partition_task *t;

    bl_db_prepare_all(s, partition_statements);
    t = apr_pcalloc(pconf, sizeof(*t));
    t->s = s;
    t->interval = sc->partition_interval;
    t->months_ahead = sc->partition_months_ahead;
    return bl_task_register(pconf, s, BL_PARTITION_TASK,
                            t->interval < BL_PARTITION_TICK ? t->interval : BL_PARTITION_TICK,
                            partition_task, t);
}
