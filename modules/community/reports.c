/* Reports and moderation: POST /posts/:id/report and /comments/:id/report,
 * the moderators' queue (GET /communities/:id/reports) and the admins'
 * (GET /admin/reports), and decisions on them (POST .../reports/:id/resolve).
 *
 * One report per user and item. Reporting locks the item's row, so the
 * count of distinct open reports is exact when reports race: the report
 * that reaches BeautifulCommunityHideAfterReports hides the item from
 * members until a moderator decides. A self_harm report tells the
 * community's moderators at once. A decision resolves every open report
 * of the item, is audited, and a removal or a warning tells the author. */
#include "community_private.h"
#include "json.h"
#include "uuid.h"
#include "validate.h"

#include <apr_strings.h>

#include <string.h>

#define SQL_LOCK_POST     "community_report_lock_post"
#define SQL_LOCK_COMMENT  "community_report_lock_comment"
#define SQL_REPORT_POST   "community_report_post"
#define SQL_REPORT_COMMENT "community_report_comment"
#define SQL_HIDE_POST     "community_report_hide_post"
#define SQL_HIDE_COMMENT  "community_report_hide_comment"
#define SQL_QUEUE         "community_report_queue"
#define SQL_REPORT_LOAD   "community_report_load"
#define SQL_RESOLVE       "community_report_resolve"

#define DETAILS_MAX 2000
#define NOTE_MAX 1000

static const char *const reasons[] = {"spam", "harassment", "misinformation", "self_harm",
                                      "other", NULL};
static const char *const actions[] = {"dismiss", "remove", "warn_author", NULL};

/* Who may moderate community cid (a in scope: viewer, vrole). */
#define MODERATES(cid) \
    "(a.vrole = 'admin' OR EXISTS (SELECT 1 FROM community_members s " \
    " WHERE s.community_id = " cid " AND s.user_id = a.viewer " \
    " AND s.role IN ('moderator', 'owner')))"


/* An item of the queue (g: grouped open reports) with its reports. */
#define ITEM_JSON \
    "json_build_object('item_type', g.item_type, 'item_id', g.item_id, " \
    "'community', json_build_object('id', c.id, 'name', c.name, 'slug', c.slug), " \
    "'post_id', coalesce(p.id, k.post_id), " \
    "'content', coalesce(p.content, k.content), 'title', p.title, " \
    "'author', (SELECT " CM_PERSON("u") " FROM users u " \
    " WHERE u.id = coalesce(p.author_id, k.author_id)), " \
    "'is_hidden', coalesce(p.hidden_at, k.hidden_at) IS NOT NULL, " \
    "'is_deleted', coalesce(p.deleted_at, k.deleted_at) IS NOT NULL, " \
    "'report_count', g.n, " \
    "'reports', (SELECT json_agg(json_build_object('id', r.id, 'reason', r.reason, " \
    " 'details', r.details, 'created_at', " CM_TS("r.created_at") ") " \
    " ORDER BY r.created_at, r.id) FROM content_reports r WHERE r.resolved_at IS NULL " \
    " AND (r.post_id = g.item_id OR r.comment_id = g.item_id)))"

static const bl_statement statements[] = {
    {SQL_LOCK_POST, "SELECT 1 FROM community_posts WHERE id = %s::uuid FOR UPDATE"},
    {SQL_LOCK_COMMENT, "SELECT 1 FROM post_comments WHERE id = %s::uuid FOR UPDATE"},
    /* id, post, viewer, viewer role, reason, details: readers of the post. */
    {SQL_REPORT_POST,
     "INSERT INTO content_reports (id, community_id, post_id, reporter_id, reason, details) "
     "SELECT a.id, c.id, p.id, a.viewer, a.reason, a.details "
     "FROM (SELECT %s::uuid AS id, %s::uuid AS pid, %s::uuid AS viewer, %s::text AS vrole, "
     "%s::report_reason AS reason, %s::text AS details) a "
     "JOIN community_posts p ON p.id = a.pid AND p.deleted_at IS NULL "
     "JOIN communities c ON c.id = p.community_id "
     "LEFT JOIN community_members m ON m.community_id = c.id AND m.user_id = a.viewer "
     "WHERE " CM_READS("c", "m")},
    {SQL_REPORT_COMMENT,
     "INSERT INTO content_reports (id, community_id, comment_id, reporter_id, reason, details) "
     "SELECT a.id, c.id, k.id, a.viewer, a.reason, a.details "
     "FROM (SELECT %s::uuid AS id, %s::uuid AS cid, %s::uuid AS viewer, %s::text AS vrole, "
     "%s::report_reason AS reason, %s::text AS details) a "
     "JOIN post_comments k ON k.id = a.cid AND k.deleted_at IS NULL "
     "JOIN community_posts p ON p.id = k.post_id AND p.deleted_at IS NULL "
     "JOIN communities c ON c.id = p.community_id "
     "LEFT JOIN community_members m ON m.community_id = c.id AND m.user_id = a.viewer "
     "WHERE " CM_READS("c", "m")},
    /* item, threshold: hides the item once its open reports reach it. */
    {SQL_HIDE_POST,
     "UPDATE community_posts p SET hidden_at = now() "
     "FROM (SELECT %s::uuid AS id, %s::int AS n) a WHERE p.id = a.id AND p.hidden_at IS NULL "
     "AND (SELECT count(*) FROM content_reports r WHERE r.post_id = a.id "
     " AND r.resolved_at IS NULL) >= a.n"},
    {SQL_HIDE_COMMENT,
     "UPDATE post_comments k SET hidden_at = now() "
     "FROM (SELECT %s::uuid AS id, %s::int AS n) a WHERE k.id = a.id AND k.hidden_at IS NULL "
     "AND (SELECT count(*) FROM content_reports r WHERE r.comment_id = a.id "
     " AND r.resolved_at IS NULL) >= a.n"},
    /* community (NULL: every community, admins only), viewer, viewer role,
     * limit, offset: items with open reports, oldest report first. */
    {SQL_QUEUE,
     "WITH a AS (SELECT %s::uuid AS cid, %s::uuid AS viewer, %s::text AS vrole), "
     "g AS (SELECT coalesce(r.post_id, r.comment_id) AS item_id, "
     "CASE WHEN r.post_id IS NULL THEN 'comment' ELSE 'post' END AS item_type, "
     "r.community_id, count(*) AS n, min(r.created_at) AS first_at "
     "FROM content_reports r, a WHERE r.resolved_at IS NULL "
     "AND ((a.cid IS NULL AND a.vrole = 'admin') "
     " OR (r.community_id = a.cid AND " MODERATES("a.cid") ")) "
     "GROUP BY 1, 2, 3) "
     "SELECT (SELECT count(*) FROM g), coalesce((SELECT json_agg(" ITEM_JSON
     " ORDER BY g.first_at, g.item_id) FROM (SELECT * FROM g ORDER BY first_at, item_id "
     "LIMIT %s::int OFFSET %s::int) g JOIN communities c ON c.id = g.community_id "
     "LEFT JOIN community_posts p ON p.id = g.item_id AND g.item_type = 'post' "
     "LEFT JOIN post_comments k ON k.id = g.item_id AND g.item_type = 'comment'), '[]'::json)"},
    /* report, community (NULL: any, admins only), viewer, viewer role:
     * the report under lock, its item and the item's author. */
    {SQL_REPORT_LOAD,
     "SELECT r.id, r.community_id, r.post_id, r.comment_id, r.resolved_at IS NOT NULL, "
     "coalesce(p.author_id, k.author_id), c.name, coalesce(p.id, k.post_id) "
     "FROM (SELECT %s::uuid AS rid, %s::uuid AS cid, %s::uuid AS viewer, %s::text AS vrole) a "
     "JOIN content_reports r ON r.id = a.rid "
     "JOIN communities c ON c.id = r.community_id "
     "LEFT JOIN community_posts p ON p.id = r.post_id "
     "LEFT JOIN post_comments k ON k.id = r.comment_id "
     "WHERE ((a.cid IS NULL AND a.vrole = 'admin') "
     " OR (r.community_id = a.cid AND " MODERATES("r.community_id") ")) "
     "FOR UPDATE OF r"},
    /* report, viewer, viewer role, action, note: resolves every open
     * report of the item and applies the action to it. */
    {SQL_RESOLVE,
     "WITH a AS (SELECT %s::uuid AS rid, %s::uuid AS viewer, %s::text AS vrole, "
     "%s::report_action AS act, %s::text AS note), "
     "t AS (SELECT r.post_id, r.comment_id FROM content_reports r, a WHERE r.id = a.rid "
     " AND " MODERATES("r.community_id") "), "
     "res AS (UPDATE content_reports r SET resolved_at = now(), resolved_by = a.viewer, "
     " resolution = a.act, resolution_note = a.note FROM t, a "
     " WHERE (r.post_id = t.post_id OR r.comment_id = t.comment_id) AND r.resolved_at IS NULL "
     " RETURNING r.id), "
     "p AS (UPDATE community_posts p SET hidden_at = NULL, "
     " deleted_at = CASE WHEN a.act = 'remove' THEN coalesce(p.deleted_at, now()) "
     "  ELSE p.deleted_at END, "
     " deleted_by = CASE WHEN a.act = 'remove' AND p.deleted_at IS NULL THEN a.viewer "
     "  ELSE p.deleted_by END, "
     " delete_reason = CASE WHEN a.act = 'remove' AND p.deleted_at IS NULL "
     "  THEN coalesce(a.note, 'removed after reports') ELSE p.delete_reason END, "
     " is_pinned = CASE WHEN a.act = 'remove' THEN false ELSE p.is_pinned END "
     " FROM t, a WHERE p.id = t.post_id RETURNING p.id), "
     "k AS (UPDATE post_comments k SET hidden_at = NULL, "
     " deleted_at = CASE WHEN a.act = 'remove' THEN coalesce(k.deleted_at, now()) "
     "  ELSE k.deleted_at END, "
     " deleted_by = CASE WHEN a.act = 'remove' AND k.deleted_at IS NULL THEN a.viewer "
     "  ELSE k.deleted_by END "
     " FROM t, a WHERE k.id = t.comment_id RETURNING k.id) "
     "SELECT (SELECT count(*) FROM res), (SELECT count(*) FROM p) + (SELECT count(*) FROM k)"},
    {NULL, NULL}
};

/* ---------------------------------------------------------------- report */

typedef struct {
    const char *reason;
    const char *details;
} report_input;

static int read_report(request_rec *r, report_input *in)
{
    static const char *const allowed[] = {"reason", "details", NULL};
    json_object *body;
    const char *err = NULL;

    memset(in, 0, sizeof *in);
    if (!(body = bl_read_json(r)) || community_refuse_unknown(r, body, allowed) != 0)
        return -1;
    if (bl_json_get_enum(r->pool, body, "reason", BL_REQUIRED, reasons, &in->reason, &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "reason", err), -1;
    return community_string_field(r, body, "details", 0, 1, DETAILS_MAX, &in->details, NULL);
}

/* Files the report in one transaction: lock the item, insert, hide at the
 * threshold, tell the moderators of a self_harm report. */
static int file_report(request_rec *r, ap_dbd_t *db, int is_post, const char *item_id,
                       const char *community_id, const char *community_name)
{
    const bl_user *user = bl_current_user(r);
    const char *args[6], *hide[2];
    report_input in;
    int n;

    if (read_report(r, &in) != 0)
        return OK;
    if (!(args[0] = bl_uuid_v4(r->pool)))
        return bl_send_unavailable(r, "random number generator");
    args[1] = item_id;
    args[2] = user->id;
    args[3] = user->role;
    args[4] = in.reason;
    args[5] = in.details;
    hide[0] = item_id;
    hide[1] = apr_itoa(r->pool, community_config(r)->hide_after_reports);
    if (bl_db_begin(r, db) != 0)
        return OK;
    if (!bl_db_select(r, db, is_post ? SQL_LOCK_POST : SQL_LOCK_COMMENT, 1, args + 1)
        || (n = bl_db_exec(r, db, is_post ? SQL_REPORT_POST : SQL_REPORT_COMMENT, 6, args)) < 0)
        return bl_db_rollback(r, db), OK;    /* a second report by the same user: 409 */
    if (n == 0) {
        bl_db_rollback(r, db);
        return community_not_found(r, is_post ? "post" : "comment");
    }
    if (bl_db_exec(r, db, is_post ? SQL_HIDE_POST : SQL_HIDE_COMMENT, 2, hide) < 0)
        return bl_db_rollback(r, db), OK;
    if (strcmp(in.reason, "self_harm") == 0
        && community_notify_staff(r, db, community_id, 1, "community.report_self_harm",
                                  apr_pstrcat(r->pool, "Urgent: a member of ", community_name,
                                              " may be at risk", NULL),
                                  "A post or comment was reported as self-harm. "
                                  "Please look at it now.",
                                  apr_psprintf(r->pool, "{\"community_id\":\"%s\",\"%s\":\"%s\","
                                               "\"report_id\":\"%s\"}", community_id,
                                               is_post ? "post_id" : "comment_id", item_id,
                                               args[0])) != 0)
        return bl_db_rollback(r, db), OK;
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_CREATED, "report received",
                        apr_psprintf(r->pool, "{\"id\":\"%s\",\"status\":\"open\"}", args[0]),
                        NULL);
}

static int posts_report(request_rec *r, apr_table_t *params)
{
    post_access pa;
    ap_dbd_t *db;

    if (!community_user(r) || !(db = bl_db(r))
        || community_post_lookup(r, db, apr_table_get(params, "id"), &pa) != 0)
        return OK;
    return file_report(r, db, 1, pa.id, pa.community_id, pa.community_name);
}

/* A comment the viewer reads: its id, community and community name. */
#define SQL_COMMENT_FOR_REPORT "community_comment_access"

static int comments_report(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    const char *id = apr_table_get(params, "id"), *args[3];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    if (!(user = community_user(r)) || community_valid_id(r, id, "comment") != 0
        || !(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = user->id;
    args[2] = user->role;
    /* comments.c's access statement (labels are server-wide). */
    if (!(res = bl_db_select(r, db, SQL_COMMENT_FOR_REPORT, 3, args)))
        return OK;
    row = community_first_row(r, db, res);
    if (!row || community_is_true(bl_db_get(r, db, row, 6)))
        return community_not_found(r, "comment");
    return file_report(r, db, 0, bl_db_get(r, db, row, 0), bl_db_get(r, db, row, 2),
                       bl_db_get(r, db, row, 7));
}

/* ---------------------------------------------------------------- queues */

static int send_queue(request_rec *r, const char *cid)
{
    static const char *const allowed[] = {"page", "per_page", NULL};
    const bl_user *user = bl_current_user(r);
    apr_table_t *q;
    const char *args[5];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;

    if (community_query(r, allowed, &q) != 0 || bl_pagination_args(r, &page, &per_page) != 0
        || !(db = bl_db(r)))
        return OK;
    args[0] = cid;
    args[1] = user->id;
    args[2] = user->role;
    args[3] = apr_itoa(r->pool, per_page);
    args[4] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(res = bl_db_select(r, db, SQL_QUEUE, 5, args)))
        return OK;
    if (!(row = community_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 1),
                        bl_pagination_meta(r, page, per_page,
                                           apr_atoi64(bl_db_get(r, db, row, 0))));
}

static int communities_reports(request_rec *r, apr_table_t *params)
{
    community_access acc;
    ap_dbd_t *db;

    if (!community_user(r) || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0
        || community_require_moderator(r, &acc) != 0)
        return OK;
    return send_queue(r, acc.id);
}

/* The admin calling, or NULL after answering 401/403. */
static const bl_user *require_admin(request_rec *r)
{
    const bl_user *user = community_user(r);

    if (user && strcmp(user->role, "admin") != 0)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "administrators only", NULL), NULL;
    return user;
}

static int admin_reports(request_rec *r, apr_table_t *params)
{
    if (!require_admin(r))
        return OK;
    return send_queue(r, NULL);
}

/* ---------------------------------------------------------------- resolve */

/* Tells the author of a decided item what was decided, in the decision's
 * transaction: community.post_removed for a removal (of a post or a
 * comment), community.author_warned for a warning; a dismissal tells no
 * one. The moderator's note is the message. Returns 0, or -1. */
static int notify_author(request_rec *r, ap_dbd_t *db, const char *action, const char *author,
                         const char *community_name, const char *cid, const char *post_id,
                         const char *comment_id, const char *note)
{
    const char *what = comment_id ? "comment" : "post", *type, *title, *body, *data;
    int removed = strcmp(action, "remove") == 0;

    if (!removed && strcmp(action, "warn_author") != 0)
        return 0;
    type = removed ? "community.post_removed" : "community.author_warned";
    title = removed ? apr_pstrcat(r->pool, "Your ", what, " was removed from ", community_name,
                                  NULL)
                    : apr_pstrcat(r->pool, "A moderator of ", community_name,
                                  " warned you about your ", what, NULL);
    if (note)
        body = apr_pstrcat(r->pool, removed ? "A moderator removed it: " : "The moderator says: ",
                           note, NULL);
    else
        body = removed ? "A moderator removed it after reports."
                       : "Please keep to the community's rules.";
    data = apr_psprintf(r->pool, "{\"community_id\":\"%s\",\"post_id\":\"%s\"%s%s%s}", cid,
                        post_id, comment_id ? ",\"comment_id\":\"" : "",
                        comment_id ? comment_id : "", comment_id ? "\"" : "");
    return community_notify(r, db, author, type, title, body, data);
}

/* Decides report rid (within community cid, or any for an admin). */
static int resolve(request_rec *r, const char *cid, const char *rid)
{
    static const char *const allowed[] = {"action", "note", NULL};
    const bl_user *user = bl_current_user(r);
    const char *args[5], *action = NULL, *note = NULL, *err = NULL, *author, *post_id, *item;
    const char *comment_id;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    json_object *body;
    ap_dbd_t *db;

    if (community_valid_id(r, rid, "report") != 0 || !(body = bl_read_json(r))
        || community_refuse_unknown(r, body, allowed) != 0)
        return OK;
    if (bl_json_get_enum(r->pool, body, "action", BL_REQUIRED, actions, &action, &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "action", err);
    if (community_string_field(r, body, "note", 0, 1, NOTE_MAX, &note, NULL) != 0
        || !(db = bl_db(r)) || bl_db_begin(r, db) != 0)
        return OK;
    args[0] = rid;
    args[1] = cid;
    args[2] = user->id;
    args[3] = user->role;
    if (!(res = bl_db_select(r, db, SQL_REPORT_LOAD, 4, args)))
        return bl_db_rollback(r, db), OK;
    if (!(row = community_first_row(r, db, res))) {
        bl_db_rollback(r, db);
        return community_not_found(r, "report");
    }
    if (community_is_true(bl_db_get(r, db, row, 4))) {
        bl_db_rollback(r, db);
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT, "the report is resolved already",
                             NULL);
    }
    cid = bl_db_get(r, db, row, 1);
    comment_id = bl_db_get(r, db, row, 3);
    item = comment_id ? comment_id : bl_db_get(r, db, row, 2);
    author = bl_db_get(r, db, row, 5);
    post_id = bl_db_get(r, db, row, 7);
    args[1] = user->id;
    args[2] = user->role;
    args[3] = action;
    args[4] = note;
    if (!bl_db_select(r, db, SQL_RESOLVE, 5, args)
        || community_audit(r, db, "community.report_resolved", "report", rid,
                           apr_psprintf(r->pool, "{\"action\":\"%s\",\"item_type\":\"%s\","
                                        "\"item_id\":\"%s\",\"community_id\":\"%s\","
                                        "\"note\":%s}", action, comment_id ? "comment" : "post",
                                        item, cid, note ? bl_json_quote(r->pool, note) : "null"))
               != 0)
        return bl_db_rollback(r, db), OK;
    if (author && notify_author(r, db, action, author, bl_db_get(r, db, row, 6), cid, post_id,
                                comment_id, note) != 0) {
        bl_db_rollback(r, db);
        return bl_send_unavailable(r, "database");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_OK, "report resolved",
                        apr_psprintf(r->pool, "{\"id\":\"%s\",\"action\":\"%s\","
                                     "\"item_type\":\"%s\",\"item_id\":\"%s\"}", rid, action,
                                     comment_id ? "comment" : "post", item), NULL);
}

static int communities_resolve(request_rec *r, apr_table_t *params)
{
    community_access acc;
    ap_dbd_t *db;

    if (!community_user(r) || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0
        || community_require_moderator(r, &acc) != 0)
        return OK;
    return resolve(r, acc.id, apr_table_get(params, "report_id"));
}

static int admin_resolve(request_rec *r, apr_table_t *params)
{
    if (!require_admin(r))
        return OK;
    return resolve(r, NULL, apr_table_get(params, "id"));
}

static const community_route routes[] = {
    {"POST", "/posts/:id/report", posts_report},
    {"POST", "/comments/:id/report", comments_report},
    {"GET", "/communities/:id/reports", communities_reports},
    {"POST", "/communities/:id/reports/:report_id/resolve", communities_resolve},
    {"GET", "/admin/reports", admin_reports},
    {"POST", "/admin/reports/:id/resolve", admin_resolve},
    {NULL, NULL, NULL}
};

const community_part reports_part = {"reports", routes, statements};
