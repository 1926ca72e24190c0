/* audit_seal.c — makes audit_logs tamper-evident without touching its
 * insert path: a background task seals each new batch of rows with a hash
 * over their hashes and the previous seal's (sql/migrations/0005,
 * audit_seal_batch), and scripts/audit-verify checks the chain.
 *
 * The SQL function takes a transaction-level advisory lock (try-lock), so
 * two hosts' tasks never seal at once and the chain stays linear; a pass
 * that finds the lock taken seals nothing and the next one goes on. */
#include "core_hooks.h"

#include <http_log.h>
#include <apr_strings.h>
#include <stdlib.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_SEAL_TASK "beautiful-audit-seal"
#define BL_SEAL_LABEL "core_audit_seal"
#define BL_SEAL_INTERVAL apr_time_from_sec(5)
/* Rows per seal; a backlog is worked off a batch per statement. */
#define BL_SEAL_BATCH "5000"
#define BL_SEAL_MAX_BATCHES 20

static const bl_statement seal_statements[] = {
    {BL_SEAL_LABEL, "SELECT audit_seal_batch(%s::int)"},
    {NULL, NULL}
};

typedef struct {
    int failing;                 /* the last pass failed (and said so once) */
} bl_seal_task;

/* One batch; returns the rows sealed, or -1 with *why set. */
static int seal_batch(apr_pool_t *p, ap_dbd_t *db, const char **why)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, BL_SEAL_LABEL, APR_HASH_KEY_STRING);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[1] = {BL_SEAL_BATCH}, *v;
    int rv, n = 0;

    if (!st) {
        *why = "statement " BL_SEAL_LABEL " is not prepared";
        return -1;
    }
    rv = apr_dbd_pselect(db->driver, p, db->handle, &res, st, 1, 1, args);
    if (rv != 0) {
        const char *msg = apr_dbd_error(db->driver, db->handle, rv);
        *why = msg ? apr_pstrdup(p, msg) : "query failed";
        return -1;
    }
    if (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0
        && (v = apr_dbd_get_entry(db->driver, row, 0)) != NULL)
        n = atoi(v);
    return n;
}

static void seal_task(server_rec *s, void *data, apr_pool_t *pool)
{
    bl_seal_task *t = data;
    ap_dbd_t *db = bl_db_open(pool, s);
    const char *why = "no database connection";
    int i, n = 0;

    if (db) {
        why = NULL;
        /* A full batch means more are waiting. */
        for (i = 0; i < BL_SEAL_MAX_BATCHES; i++)
            if ((n = seal_batch(pool, db, &why)) < atoi(BL_SEAL_BATCH))
                break;
        bl_db_close(s, db);
    }
    if (why || n < 0) {
        if (!t->failing)
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         "audit rows not sealed: %s (retrying; logged again only after "
                         "it recovers)", why ? why : "unknown");
        t->failing = 1;
        return;
    }
    if (t->failing)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "audit rows sealed again");
    t->failing = 0;
}

int bl_audit_seal_post_config(apr_pool_t *pconf, server_rec *s)
{
    bl_seal_task *t = apr_pcalloc(pconf, sizeof(*t));

    bl_db_prepare_all(s, seal_statements);
    return bl_task_register(pconf, s, BL_SEAL_TASK, BL_SEAL_INTERVAL, seal_task, t);
}
