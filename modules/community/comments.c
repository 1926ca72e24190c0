/* Threaded comments: GET and POST /posts/:id/comments, PUT and DELETE
 * /comments/:id, POST /comments/:id/like.
 *
 * A top-level comment has depth 0. Replies nest to depth 3; a reply
 * deeper than that is stored at depth 4 under its depth-3 ancestor
 * (display_parent_id), with parent_comment_id still naming the comment it
 * answers. GET pages the top-level comments (oldest first) and nests the
 * replies in one statement. A deleted comment stays as a tombstone (no
 * content, no author) so the thread keeps its shape; one hidden by
 * reports shows as a tombstone to everyone but moderators. */
#include "community_private.h"
#include "json.h"
#include "uuid.h"
#include "validate.h"

#include <apr_strings.h>

#include <string.h>

#define SQL_THREAD        "community_comment_thread"
#define SQL_COMMENT_NEW   "community_comment_insert"
#define SQL_COMMENT_GET   "community_comment_get"
#define SQL_REPLY_TO      "community_comment_reply_to"
#define SQL_COMMENT_ACC   "community_comment_access"
#define SQL_COMMENT_EDIT  "community_comment_update"
#define SQL_COMMENT_DEL   "community_comment_delete"
#define SQL_COMMENT_LIKE  "community_comment_like"
#define SQL_COMMENT_LIKES "community_comment_like_count"

#define CONTENT_MAX 5000
#define REASON_MAX 1000

/* Shown as a tombstone: deleted, or hidden by reports (to non-moderators;
 * mod in scope). */
#define TOMB(c, mod) \
    "(" c ".deleted_at IS NOT NULL OR (" c ".hidden_at IS NOT NULL AND NOT " mod "))"

/* One comment as viewer v sees it, with its replies (JSON expression). */
#define COMMENT_JSON(c, mod, v, replies) \
    "json_build_object('id', " c ".id, 'post_id', " c ".post_id, " \
    "'parent_comment_id', " c ".parent_comment_id, 'depth', " c ".depth, " \
    "'is_deleted', " c ".deleted_at IS NOT NULL, 'is_hidden', " c ".hidden_at IS NOT NULL, " \
    "'content', CASE WHEN " TOMB(c, mod) " THEN NULL ELSE " c ".content END, " \
    "'author', CASE WHEN " TOMB(c, mod) " THEN NULL ELSE (SELECT " CM_PERSON("u") \
    " FROM users u WHERE u.id = " c ".author_id) END, " \
    "'author_deleted', " c ".author_id IS NULL, " \
    "'like_count', " c ".like_count, " \
    "'liked', EXISTS (SELECT 1 FROM comment_likes l WHERE l.comment_id = " c ".id " \
    " AND l.user_id = " v "), " \
    "'created_at', " CM_TS(c ".created_at") ", 'updated_at', " CM_TS(c ".updated_at") ", " \
    "'replies', " replies ")"

/* The replies shown under comment parent, oldest first. */
#define REPLIES(parent, c, inner) \
    "coalesce((SELECT json_agg(" COMMENT_JSON(c, "x.can_mod", "a.viewer", inner) \
    " ORDER BY " c ".created_at, " c ".id) FROM post_comments " c \
    " WHERE " c ".display_parent_id = " parent ".id), '[]'::json)"

#define THREAD_JSON(top) \
    COMMENT_JSON(top, "x.can_mod", "a.viewer", \
        REPLIES(top, "c1", REPLIES("c1", "c2", REPLIES("c2", "c3", \
            REPLIES("c3", "c4", "'[]'::json")))))

/* The post the viewer reads (a in scope): x(id, community_id, can_mod). */
#define READABLE_POST \
    "x AS (SELECT p.id, p.community_id, " \
    "(m.role IN ('moderator', 'owner') OR a.vrole = 'admin') AS can_mod " \
    "FROM a JOIN community_posts p ON p.id = a.pid AND p.deleted_at IS NULL " \
    "JOIN communities c ON c.id = p.community_id " \
    "LEFT JOIN community_members m ON m.community_id = c.id AND m.user_id = a.viewer " \
    "WHERE " CM_READS("c", "m") " " \
    "AND (p.hidden_at IS NULL OR m.role IN ('moderator', 'owner') OR a.vrole = 'admin'))"

static const bl_statement statements[] = {
    /* post, viewer, viewer role, limit, offset: total top-level, thread. */
    {SQL_THREAD,
     "WITH a AS (SELECT %s::uuid AS pid, %s::uuid AS viewer, %s::text AS vrole), "
     READABLE_POST ", "
     "top AS (SELECT t.* FROM x JOIN post_comments t ON t.post_id = x.id "
     "AND t.parent_comment_id IS NULL ORDER BY t.created_at, t.id "
     "LIMIT %s::int OFFSET %s::int) "
     "SELECT (SELECT count(*) FROM post_comments t WHERE t.post_id = x.id "
     "AND t.parent_comment_id IS NULL), "
     "coalesce((SELECT json_agg(" THREAD_JSON("t0") " ORDER BY t0.created_at, t0.id) "
     "FROM top t0), '[]'::json) FROM x, a"},
    /* id, post, viewer, content, parent: members of the post's community;
     * the parent must be a live comment of the same post. */
    {SQL_COMMENT_NEW,
     "INSERT INTO post_comments (id, post_id, author_id, parent_comment_id, display_parent_id, "
     "depth, content) "
     "SELECT a.id, p.id, a.viewer, par.id, "
     "CASE WHEN par.id IS NULL THEN NULL WHEN par.depth >= 4 THEN par.display_parent_id "
     "ELSE par.id END, "
     "CASE WHEN par.id IS NULL THEN 0 ELSE least(par.depth + 1, 4) END, a.content "
     "FROM (SELECT %s::uuid AS id, %s::uuid AS pid, %s::uuid AS viewer, %s::text AS content, "
     "%s::uuid AS parent) a "
     "JOIN community_posts p ON p.id = a.pid AND p.deleted_at IS NULL "
     "JOIN community_members m ON m.community_id = p.community_id AND m.user_id = a.viewer "
     "LEFT JOIN post_comments par ON par.id = a.parent AND par.post_id = p.id "
     "AND par.deleted_at IS NULL "
     "WHERE a.parent IS NULL OR par.id IS NOT NULL"},
    /* comment, viewer, viewer role: one comment (no replies). */
    {SQL_COMMENT_GET,
     "WITH a AS (SELECT %s::uuid AS cid, %s::uuid AS viewer, %s::text AS vrole), "
     "x AS (SELECT (m.role IN ('moderator', 'owner') OR a.vrole = 'admin') AS can_mod "
     "FROM a JOIN post_comments k ON k.id = a.cid JOIN community_posts p ON p.id = k.post_id "
     "LEFT JOIN community_members m ON m.community_id = p.community_id AND m.user_id = a.viewer) "
     "SELECT " COMMENT_JSON("t", "x.can_mod", "a.viewer", "'[]'::json")
     " FROM a, x, post_comments t WHERE t.id = a.cid"},
    /* comment: who is told of it (the parent's author, else the post's),
     * when still a member and not its writer; the community's name. */
    {SQL_REPLY_TO,
     "SELECT w.uid, c.name, k.post_id FROM post_comments k "
     "JOIN community_posts p ON p.id = k.post_id JOIN communities c ON c.id = p.community_id "
     "LEFT JOIN post_comments par ON par.id = k.parent_comment_id "
     "CROSS JOIN LATERAL (SELECT CASE WHEN k.parent_comment_id IS NULL THEN p.author_id "
     " ELSE par.author_id END AS uid) w "
     "WHERE k.id = %s::uuid AND w.uid IS NOT NULL AND w.uid <> k.author_id "
     "AND EXISTS (SELECT 1 FROM community_members m WHERE m.community_id = p.community_id "
     " AND m.user_id = w.uid)"},
    /* comment, viewer, viewer role: the viewer's standing (readable only). */
    {SQL_COMMENT_ACC,
     "SELECT k.id, k.post_id, p.community_id, k.author_id, m.role, "
     "(m.role IN ('moderator', 'owner') OR a.vrole = 'admin'), k.deleted_at IS NOT NULL, "
     "c.name "
     "FROM (SELECT %s::uuid AS cid, %s::uuid AS viewer, %s::text AS vrole) a "
     "JOIN post_comments k ON k.id = a.cid "
     "JOIN community_posts p ON p.id = k.post_id AND p.deleted_at IS NULL "
     "JOIN communities c ON c.id = p.community_id "
     "LEFT JOIN community_members m ON m.community_id = c.id AND m.user_id = a.viewer "
     "WHERE " CM_READS("c", "m") " "
     "AND ((p.hidden_at IS NULL AND k.hidden_at IS NULL) "
     " OR m.role IN ('moderator', 'owner') OR a.vrole = 'admin')"},
    /* content, comment, viewer: the author, still a member. */
    {SQL_COMMENT_EDIT,
     "UPDATE post_comments k SET content = a.content "
     "FROM (SELECT %s::text AS content, %s::uuid AS cid, %s::uuid AS viewer) a, community_posts p "
     "WHERE k.id = a.cid AND k.deleted_at IS NULL AND k.author_id = a.viewer "
     "AND p.id = k.post_id AND EXISTS (SELECT 1 FROM community_members m "
     " WHERE m.community_id = p.community_id AND m.user_id = a.viewer)"},
    /* comment, viewer, viewer role: the author, a moderator or an admin. */
    {SQL_COMMENT_DEL,
     "UPDATE post_comments k SET deleted_at = now(), deleted_by = a.viewer "
     "FROM (SELECT %s::uuid AS cid, %s::uuid AS viewer, %s::text AS vrole) a, community_posts p "
     "WHERE k.id = a.cid AND k.deleted_at IS NULL AND p.id = k.post_id "
     "AND (k.author_id = a.viewer OR a.vrole = 'admin' OR EXISTS (SELECT 1 FROM "
     " community_members m WHERE m.community_id = p.community_id AND m.user_id = a.viewer "
     " AND m.role IN ('moderator', 'owner')))"},
    /* comment, viewer, wanted state (NULL toggles): as posts_like. */
    {SQL_COMMENT_LIKE,
     "WITH a AS (SELECT %s::uuid AS cid, %s::uuid AS viewer, %s::boolean AS want), "
     "ok AS (SELECT k.id FROM a JOIN post_comments k ON k.id = a.cid AND k.deleted_at IS NULL "
     " JOIN community_posts p ON p.id = k.post_id AND p.deleted_at IS NULL "
     " JOIN community_members m ON m.community_id = p.community_id AND m.user_id = a.viewer), "
     "del AS (DELETE FROM comment_likes l USING a, ok WHERE l.comment_id = ok.id "
     " AND l.user_id = a.viewer AND NOT coalesce(a.want, false) RETURNING 1), "
     "ins AS (INSERT INTO comment_likes (comment_id, user_id) SELECT ok.id, a.viewer FROM ok, a "
     " WHERE coalesce(a.want, NOT EXISTS (SELECT 1 FROM del)) ON CONFLICT DO NOTHING RETURNING 1) "
     "SELECT (SELECT count(*) FROM ok), (SELECT count(*) FROM ins), (SELECT count(*) FROM del)"},
    {SQL_COMMENT_LIKES, "SELECT like_count FROM post_comments WHERE id = %s::uuid"},
    {NULL, NULL}
};

/* The viewer's standing towards one comment. */
typedef struct {
    const char *id, *post_id, *community_id, *author_id, *role, *community_name;
    int can_moderate, deleted;
} comment_access;

/* Unknown, malformed, or not readable: 404. Returns 0, or -1 after answering. */
static int comment_lookup(request_rec *r, ap_dbd_t *db, const char *id, comment_access *ca)
{
    const bl_user *user = bl_current_user(r);
    const char *args[3] = {id, user->id, user->role};
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;

    memset(ca, 0, sizeof *ca);
    if (community_valid_id(r, id, "comment") != 0
        || !(res = bl_db_select(r, db, SQL_COMMENT_ACC, 3, args)))
        return -1;
    if (!(row = community_first_row(r, db, res)))
        return community_not_found(r, "comment"), -1;
    ca->id = bl_db_get(r, db, row, 0);
    ca->post_id = bl_db_get(r, db, row, 1);
    ca->community_id = bl_db_get(r, db, row, 2);
    ca->author_id = bl_db_get(r, db, row, 3);
    ca->role = bl_db_get(r, db, row, 4);
    ca->can_moderate = community_is_true(bl_db_get(r, db, row, 5));
    ca->deleted = community_is_true(bl_db_get(r, db, row, 6));
    ca->community_name = bl_db_get(r, db, row, 7);
    return 0;
}

static int send_comment(request_rec *r, ap_dbd_t *db, const char *id, int status,
                        const char *message)
{
    const bl_user *user = bl_current_user(r);
    const char *args[3] = {id, user->id, user->role}, *json = NULL;

    if (bl_db_value(r, db, SQL_COMMENT_GET, 3, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return community_not_found(r, "comment");
    return bl_send_data(r, status, message, json, NULL);
}

/* ---------------------------------------------------------------- thread */

static int comments_thread(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"page", "per_page", NULL};
    const bl_user *user;
    apr_table_t *q;
    const char *args[5], *id = apr_table_get(params, "id");
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;

    if (!(user = community_user(r)) || community_query(r, allowed, &q) != 0
        || bl_pagination_args(r, &page, &per_page) != 0
        || community_valid_id(r, id, "post") != 0 || !(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = user->id;
    args[2] = user->role;
    args[3] = apr_itoa(r->pool, per_page);
    args[4] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(res = bl_db_select(r, db, SQL_THREAD, 5, args)))
        return OK;
    if (!(row = community_first_row(r, db, res)))
        return community_not_found(r, "post");
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 1),
                        bl_pagination_meta(r, page, per_page,
                                           apr_atoi64(bl_db_get(r, db, row, 0))));
}

/* ---------------------------------------------------------------- write */

/* Tells the comment's addressee (in the caller's transaction). */
static int notify_reply(request_rec *r, ap_dbd_t *db, const char *comment_id)
{
    const char *args[1] = {comment_id};
    apr_dbd_results_t *res = bl_db_select(r, db, SQL_REPLY_TO, 1, args);
    apr_dbd_row_t *row;

    if (!res)
        return -1;
    if (!(row = community_first_row(r, db, res)))
        return 0;
    if (community_notify(r, db, bl_db_get(r, db, row, 0), "community.comment_reply",
                         apr_pstrcat(r->pool, "New reply in ", bl_db_get(r, db, row, 1), NULL),
                         "Someone replied to you.",
                         apr_psprintf(r->pool, "{\"post_id\":\"%s\",\"comment_id\":\"%s\"}",
                                      bl_db_get(r, db, row, 2), comment_id)) != 0)
        return bl_send_unavailable(r, "database"), -1;
    return 0;
}

static int comments_create(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"content", "parent_comment_id", NULL};
    const bl_user *user;
    post_access pa;
    json_object *body, *v;
    const char *args[5], *content, *parent = NULL, *err = NULL;
    ap_dbd_t *db;
    int n;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || community_post_lookup(r, db, apr_table_get(params, "id"), &pa) != 0)
        return OK;
    if (!pa.role)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN, "join the community first",
                             NULL);
    if (!(body = bl_read_json(r)) || community_refuse_unknown(r, body, allowed) != 0
        || community_string_field(r, body, "content", 1, 1, CONTENT_MAX, &content, NULL) != 0)
        return OK;
    if (json_object_object_get_ex(body, "parent_comment_id", &v) && v
        && (bl_json_get_string(r->pool, body, "parent_comment_id", BL_REQUIRED, 36, 36, &parent,
                               &err) != BL_FIELD_OK || !bl_valid_uuid(parent)))
        return bl_send_validation_error(r, "parent_comment_id",
                                        err ? err : "parent_comment_id must be a UUID");
    if (!(args[0] = bl_uuid_v4(r->pool)))
        return bl_send_unavailable(r, "random number generator");
    args[1] = pa.id;
    args[2] = user->id;
    args[3] = content;
    args[4] = parent;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if ((n = bl_db_exec(r, db, SQL_COMMENT_NEW, 5, args)) < 0)
        return bl_db_rollback(r, db), OK;
    if (n == 0) {
        bl_db_rollback(r, db);
        return bl_send_validation_error(r, "parent_comment_id",
                                        "parent_comment_id is not a comment of this post");
    }
    if (notify_reply(r, db, args[0]) != 0)
        return bl_db_rollback(r, db), OK;
    if (bl_db_commit(r, db) != 0)
        return OK;
    return send_comment(r, db, args[0], HTTP_CREATED, "comment added");
}

static int comments_update(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"content", NULL};
    const bl_user *user;
    comment_access ca;
    json_object *body;
    const char *args[3], *content;
    ap_dbd_t *db;
    int n;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || comment_lookup(r, db, apr_table_get(params, "id"), &ca) != 0)
        return OK;
    if (ca.deleted)
        return community_not_found(r, "comment");
    if (!ca.author_id || strcasecmp(ca.author_id, user->id) != 0 || !ca.role)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only the author edits a comment", NULL);
    if (!(body = bl_read_json(r)) || community_refuse_unknown(r, body, allowed) != 0
        || community_string_field(r, body, "content", 1, 1, CONTENT_MAX, &content, NULL) != 0)
        return OK;
    args[0] = content;
    args[1] = ca.id;
    args[2] = user->id;
    if ((n = bl_db_exec(r, db, SQL_COMMENT_EDIT, 3, args)) < 0)
        return OK;
    if (n == 0)
        return community_not_found(r, "comment");
    return send_comment(r, db, ca.id, HTTP_OK, "comment updated");
}

static int comments_delete(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"reason", NULL};
    const bl_user *user;
    comment_access ca;
    apr_table_t *q;
    const char *args[3], *reason;
    ap_dbd_t *db;
    int own, n;

    if (!(user = community_user(r)) || community_query(r, allowed, &q) != 0 || !(db = bl_db(r))
        || comment_lookup(r, db, apr_table_get(params, "id"), &ca) != 0)
        return OK;
    if (ca.deleted)
        return community_not_found(r, "comment");
    own = ca.author_id && strcasecmp(ca.author_id, user->id) == 0;
    if (!own && !ca.can_moderate)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only the author or a moderator deletes a comment", NULL);
    reason = apr_table_get(q, "reason");
    if (reason && !bl_valid_length(reason, 1, REASON_MAX))
        return bl_send_validation_error(r, "reason", "reason must be 1 to 1000 characters");
    if (!own && !reason)
        return bl_send_validation_error(r, "reason", "a moderator gives a reason");
    args[0] = ca.id;
    args[1] = user->id;
    args[2] = user->role;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if (!own && community_audit(r, db, "community.comment_deleted", "comment", ca.id,
                                apr_pstrcat(r->pool, "{\"post_id\":\"", ca.post_id,
                                            "\",\"reason\":", bl_json_quote(r->pool, reason),
                                            "}", NULL)) != 0)
        return bl_db_rollback(r, db), OK;
    if ((n = bl_db_exec(r, db, SQL_COMMENT_DEL, 3, args)) < 0)
        return bl_db_rollback(r, db), OK;
    if (n == 0) {
        bl_db_rollback(r, db);
        return community_not_found(r, "comment");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_no_content(r);
}

static int comments_like(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    comment_access ca;
    ap_dbd_t *db;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || comment_lookup(r, db, apr_table_get(params, "id"), &ca) != 0)
        return OK;
    if (ca.deleted)
        return community_not_found(r, "comment");
    if (!ca.role)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN, "join the community first",
                             NULL);
    return community_set_like(r, db, ca.id, user->id, "comment", SQL_COMMENT_LIKE,
                              SQL_COMMENT_LIKES);
}

static const community_route routes[] = {
    {"GET", "/posts/:id/comments", comments_thread},
    {"POST", "/posts/:id/comments", comments_create},
    {"PUT", "/comments/:id", comments_update},
    {"DELETE", "/comments/:id", comments_delete},
    {"POST", "/comments/:id/like", comments_like},
    {NULL, NULL, NULL}
};

const community_part comments_part = {"comments", routes, statements};
