/* The caller's in-app notifications: GET /notifications, PUT
 * /notifications/:id/read, PUT /notifications/read-all, DELETE
 * /notifications/:id, and the live stream GET /notifications/stream.
 * Object-level authorization is in each statement (user_id = the caller):
 * someone else's id is simply not found. */
#include "notify_private.h"
#include "validate.h"

#include <http_protocol.h>
#include <apr_strings.h>
#include <util_script.h>

#include <string.h>

/* Only delivered in-app rows are the user's "notifications"; an in-app row
 * the preferences skipped is not shown. */
#define MINE "n.user_id = a.uid AND n.channel = 'in_app' AND n.status = 'sent'"

#define SQL_LIST \
    "WITH a AS (SELECT %s::uuid AS uid, %s::boolean AS unread, %s::text AS type," \
    " %s::int AS lim, %s::int AS off)," \
    " f AS (SELECT n.* FROM notifications n, a WHERE " MINE \
    "  AND (a.unread IS NOT TRUE OR n.read_at IS NULL) AND (a.type IS NULL OR n.type = a.type))" \
    " SELECT (SELECT count(*) FROM f)::text," \
    "  (SELECT count(*) FROM notifications n, a WHERE " MINE " AND n.read_at IS NULL)::text," \
    "  COALESCE((SELECT json_agg(" BL_NOTIFY_ITEM_JSON " ORDER BY n.created_at DESC, n.seq DESC)" \
    "   FROM (SELECT * FROM f ORDER BY created_at DESC, seq DESC" \
    "    LIMIT (SELECT lim FROM a) OFFSET (SELECT off FROM a)) n), '[]')::text"

#define SQL_READ \
    "WITH a AS (SELECT %s::uuid AS id, %s::uuid AS uid)" \
    " UPDATE notifications n SET read_at = COALESCE(n.read_at, now()) FROM a" \
    " WHERE n.id = a.id AND " MINE " RETURNING " BL_NOTIFY_ITEM_JSON "::text"

#define SQL_READ_ALL \
    "WITH a AS (SELECT %s::uuid AS uid)" \
    " UPDATE notifications n SET read_at = now() FROM a WHERE " MINE " AND n.read_at IS NULL"

#define SQL_DELETE \
    "DELETE FROM notifications WHERE id = %s::uuid AND user_id = %s::uuid AND channel = 'in_app'"

/* What a reconnecting stream missed: delivered rows after its event id. */
#define SQL_RESUME \
    "WITH a AS (SELECT %s::uuid AS uid, %s::bigint AS after)" \
    " SELECT n.seq::text, " BL_NOTIFY_ITEM_JSON "::text FROM notifications n, a" \
    " WHERE " MINE " AND n.seq > a.after ORDER BY n.seq LIMIT 500"

const bl_statement notify_inbox_statements[] = {
    {"notify_list", SQL_LIST},
    {"notify_read", SQL_READ},
    {"notify_read_all", SQL_READ_ALL},
    {"notify_delete", SQL_DELETE},
    {"notify_resume", SQL_RESUME},
    {NULL, NULL}
};

int notify_list(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"page", "per_page", "unread", "type", NULL};
    const bl_user *user = bl_current_user(r);
    apr_table_t *q = NULL;
    const char *args[5], *unread, *type, *meta;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;

    if (notify_check_query(r, allowed) != 0 || bl_pagination_args(r, &page, &per_page) != 0)
        return OK;
    ap_args_to_table(r, &q);
    unread = apr_table_get(q, "unread");
    if (unread && strcmp(unread, "true") != 0 && strcmp(unread, "false") != 0)
        return bl_send_validation_error(r, "unread", "unread must be true or false");
    type = apr_table_get(q, "type");
    if (type && !notify_known_type(type))
        return bl_send_validation_error(r, "type", "type is not a known notification type");
    if (!(db = bl_db(r)))
        return OK;
    args[0] = user->id;
    args[1] = unread;
    args[2] = type;
    args[3] = apr_itoa(r->pool, per_page);
    args[4] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(res = bl_db_select(r, db, "notify_list", 5, args)))
        return OK;
    if (!(row = notify_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    meta = bl_pagination_meta(r, page, per_page, apr_atoi64(bl_db_get(r, db, row, 0)));
    /* {"page":...} plus the badge count */
    meta = apr_psprintf(r->pool, "%.*s,\"unread_count\":%s}", (int)strlen(meta) - 1, meta,
                        bl_db_get(r, db, row, 1));
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 2), meta);
}

int notify_read(request_rec *r, apr_table_t *params)
{
    const char *id = notify_param_id(r, params), *args[2], *json = NULL;
    ap_dbd_t *db;

    if (!id || !(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = bl_current_user(r)->id;
    if (bl_db_value(r, db, "notify_read", 2, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such notification", NULL);
    return bl_send_data(r, HTTP_OK, "notification marked read", json, NULL);
}

int notify_read_all(request_rec *r, apr_table_t *params)
{
    const char *args[1];
    ap_dbd_t *db;
    int n;

    if (!(db = bl_db(r)))
        return OK;
    args[0] = bl_current_user(r)->id;
    if ((n = bl_db_exec(r, db, "notify_read_all", 1, args)) < 0)
        return OK;
    return bl_send_data(r, HTTP_OK, "notifications marked read",
                        apr_psprintf(r->pool, "{\"updated\":%d}", n), NULL);
}

int notify_delete(request_rec *r, apr_table_t *params)
{
    const char *id = notify_param_id(r, params), *args[2];
    ap_dbd_t *db;
    int n;

    if (!id || !(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = bl_current_user(r)->id;
    if ((n = bl_db_exec(r, db, "notify_delete", 2, args)) < 0)
        return OK;
    if (n == 0)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such notification", NULL);
    return bl_send_no_content(r);
}

/* ---------------------------------------------------------------- stream */

const char *notify_stream_channel(apr_pool_t *p, const char *user_id)
{
    return apr_pstrcat(p, "notify:", user_id, NULL);
}

static int digits_only(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 18)
        return 0;
    return strspn(s, "0123456789") == n;
}

static int notify_resume(request_rec *r, void *ctx, const char *last_event_id,
                         bl_stream_emit_fn *emit, void *emit_ctx)
{
    const char *args[2];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    ap_dbd_t *db;

    if (!digits_only(last_event_id))
        return bl_send_validation_error(r, "Last-Event-ID",
                                        "Last-Event-ID is not an event id of this stream"), -1;
    if (!(db = bl_db(r)))
        return -1;
    args[0] = ctx;
    args[1] = last_event_id;
    if (!(res = bl_db_select(r, db, "notify_resume", 2, args)))
        return -1;
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0)
        emit(emit_ctx, bl_db_get(r, db, row, 0), "notification", bl_db_get(r, db, row, 1));
    return 0;
}

int notify_stream(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"last_event_id", NULL};
    const bl_user *user = bl_current_user(r);

    if (notify_check_query(r, allowed) != 0)
        return OK;
    return bl_stream_serve(r, notify_stream_channel(r->pool, user->id), notify_resume,
                           (void *)user->id);
}
