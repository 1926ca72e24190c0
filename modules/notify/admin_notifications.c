/* GET /admin/notifications and POST /admin/notifications/:id/retry: the
 * dead letters. Admins see where a delivery stands, never its title or
 * body (they may be health information). The conf reaches these only
 * through "Require bl-role admin"; the handlers check the role again. A
 * retry is audited in the same transaction. */
#include "notify_private.h"
#include "validate.h"

#include <http_protocol.h>
#include <apr_strings.h>
#include <util_script.h>

#include <string.h>

#define ADMIN_ITEM_JSON \
    "json_build_object('id', n.id, 'user_id', n.user_id, 'channel', n.channel, " \
    "'type', n.type, 'status', n.status, 'attempts', n.attempts, " \
    "'last_error', n.last_error, 'skip_reason', n.skip_reason, " \
    "'provider_id', n.provider_id, " \
    "'next_attempt_at', " BL_NOTIFY_TS("n.next_attempt_at") ", " \
    "'sent_at', " BL_NOTIFY_TS("n.sent_at") ", " \
    "'created_at', " BL_NOTIFY_TS("n.created_at") ")"

#define SQL_LIST \
    "WITH a AS (SELECT %s::notification_status AS status, %s::notification_channel AS channel," \
    " %s::int AS lim, %s::int AS off)," \
    " f AS (SELECT n.* FROM notifications n, a WHERE n.status = a.status" \
    "  AND (a.channel IS NULL OR n.channel = a.channel))" \
    " SELECT (SELECT count(*) FROM f)::text," \
    "  COALESCE((SELECT json_agg(" ADMIN_ITEM_JSON " ORDER BY n.created_at DESC, n.id)" \
    "   FROM (SELECT * FROM f ORDER BY created_at DESC, id" \
    "    LIMIT (SELECT lim FROM a) OFFSET (SELECT off FROM a)) n), '[]')::text"

/* Locks the row: the status decides between a retry, 404 and 409. */
#define SQL_LOCK \
    "SELECT status::text, channel::text FROM notifications WHERE id = %s::uuid FOR UPDATE"

#define SQL_RETRY \
    "UPDATE notifications n SET status = 'pending', attempts = 0, next_attempt_at = now()," \
    " last_error = NULL WHERE n.id = %s::uuid AND n.status = 'failed'" \
    " RETURNING " ADMIN_ITEM_JSON "::text"

const bl_statement notify_admin_statements[] = {
    {"notify_admin_list", SQL_LIST},
    {"notify_admin_lock", SQL_LOCK},
    {"notify_admin_retry", SQL_RETRY},
    {NULL, NULL}
};

static const bl_user *require_admin(request_rec *r)
{
    const bl_user *user = bl_current_user(r);

    if (user && strcmp(user->role, "admin") != 0)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN, "administrators only",
                             NULL), NULL;
    return user;
}

int notify_admin_list(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"status", "channel", "page", "per_page", NULL};
    static const char *const statuses[] = {"pending", "sending", "sent", "failed", "skipped",
                                           NULL};
    static const char *const channels[] = {"email", "sms", "push", "in_app", NULL};
    apr_table_t *q = NULL;
    const char *args[4];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;

    if (!require_admin(r) || notify_check_query(r, allowed) != 0
        || bl_pagination_args(r, &page, &per_page) != 0)
        return OK;
    ap_args_to_table(r, &q);
    args[0] = apr_table_get(q, "status");
    if (!args[0])
        args[0] = "failed";
    if (!bl_valid_enum(args[0], statuses))
        return bl_send_validation_error(r, "status",
                                        "status must be one of pending, sending, sent, "
                                        "failed, skipped");
    args[1] = apr_table_get(q, "channel");
    if (args[1] && !bl_valid_enum(args[1], channels))
        return bl_send_validation_error(r, "channel",
                                        "channel must be one of email, sms, push, in_app");
    args[2] = apr_itoa(r->pool, per_page);
    args[3] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(db = bl_db(r)) || !(res = bl_db_select(r, db, "notify_admin_list", 4, args)))
        return OK;
    if (!(row = notify_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 1),
                        bl_pagination_meta(r, page, per_page,
                                           apr_atoi64(bl_db_get(r, db, row, 0))));
}

int notify_admin_retry(request_rec *r, apr_table_t *params)
{
    const char *id = notify_param_id(r, params), *args[1], *status, *channel, *json = NULL;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    if (!require_admin(r) || !id || !(db = bl_db(r)) || bl_db_begin(r, db) != 0)
        return OK;
    args[0] = id;
    if (!(res = bl_db_select(r, db, "notify_admin_lock", 1, args)))
        return OK;
    if (!(row = notify_first_row(r, db, res))) {
        bl_db_rollback(r, db);
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such notification", NULL);
    }
    status = bl_db_get(r, db, row, 0);
    channel = bl_db_get(r, db, row, 1);
    if (strcmp(status, "failed") != 0) {
        bl_db_rollback(r, db);
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                             "only a failed notification can be retried",
                             apr_pstrcat(r->pool, "status: ", status, NULL));
    }
    if (bl_db_value(r, db, "notify_admin_retry", 1, args, &json) != APR_SUCCESS)
        return OK;
    if (bl_audit(r, db, NULL, "admin.notification_retry", "notification", id, "success",
                 apr_psprintf(r->pool, "{\"channel\":\"%s\"}", channel)) != 0) {
        bl_db_rollback(r, db);
        return bl_send_unavailable(r, "database");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_OK, "notification queued again", json, NULL);
}
