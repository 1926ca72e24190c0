/* Posts: the community feed (GET /communities/:id/posts), writing a post,
 * GET, PUT and DELETE /posts/:id, and likes (POST /posts/:id/like).
 *
 * The feed is one prepared statement calling community_feed_page (0013):
 * the viewer's access, the page and the next cursor, JSON built by
 * PostgreSQL, on a generic plan cached per connection. It is ordered
 * pinned first, then newest, and walked by the keyset (is_pinned,
 * created_at, id) that the feed index holds, so a page deep in the feed
 * costs what page 1 does.
 *
 * An anonymous post names no author to members; moderators and admins see
 * who wrote it, and each such view is audited. */
#include "community_private.h"
#include "feed_cursor.h"
#include "json.h"
#include "uuid.h"
#include "validate.h"

#include <apr_strings.h>

#include <string.h>

#define SQL_FEED       "community_feed"
#define SQL_POST_NEW   "community_post_insert"
#define SQL_POST_GET   "community_post_get"
#define SQL_POST_EDIT  "community_post_update"
#define SQL_POST_DEL   "community_post_delete"
#define SQL_LIKE       "community_post_like"
#define SQL_LIKES      "community_post_like_count"

#define TITLE_MAX 200
#define CONTENT_MAX 20000
#define WARNING_MAX 200
#define REASON_MAX 1000

static const char *const post_types[] = {"discussion", "question", "story", "resource", NULL};

/* A post as viewer v sees it; mod is true when v moderates. The author of
 * an anonymous post is shown to its moderators and to the author only. */
#define POST_JSON(p, mod, v) \
    "json_build_object('id', " p ".id, 'community_id', " p ".community_id, " \
    "'title', " p ".title, 'content', " p ".content, 'post_type', " p ".post_type, " \
    "'content_warning', " p ".content_warning, 'is_anonymous', " p ".is_anonymous, " \
    "'is_pinned', " p ".is_pinned, 'is_hidden', " p ".hidden_at IS NOT NULL, " \
    "'like_count', " p ".like_count, 'comment_count', " p ".comment_count, " \
    "'liked', EXISTS (SELECT 1 FROM post_likes l WHERE l.post_id = " p ".id " \
    " AND l.user_id = " v "), " \
    "'is_mine', coalesce(" p ".author_id = " v ", false), " \
    "'author', CASE WHEN " p ".is_anonymous AND NOT " mod " AND " p ".author_id " \
    " IS DISTINCT FROM " v " THEN NULL WHEN u.id IS NULL THEN NULL ELSE " CM_PERSON("u") " END, " \
    "'author_deleted', " p ".author_id IS NULL, " \
    "'created_at', " CM_TS(p ".created_at") ", 'updated_at', " CM_TS(p ".updated_at") ")"

#define SET_FROM_J(col, expr) \
    col " = CASE WHEN a.j ? '" col "' THEN " expr " ELSE p." col " END"

static const bl_statement statements[] = {
    /* The feed page: community_feed_page (migrations 0012, 0013), whose query
     * runs on a cached generic plan; planned again on every execution as
     * a prepared statement, the feed spent more time planning than
     * running. Arguments: id, slug, viewer, viewer role; exact count?,
     * post_type, hide_cw; the cursor (pinned, microseconds, id; NULL: the
     * top of the feed); limit, offset. Returns can_see, can_read, total,
     * posts, next cursor, the ids of anonymous posts whose author this
     * view reveals, community id, privacy. */
    {SQL_FEED,
     "SELECT can_see, can_read, total, posts, next_cursor, revealed, community_id, privacy "
     "FROM community_feed_page(%s::uuid, %s::text, %s::uuid, %s::text, %s::boolean, "
     "%s::community_post_type, %s::boolean, %s::boolean, %s::bigint, %s::uuid, %s::int, "
     "%s::int)"},
    /* id, community, author, title, content, post_type, content_warning,
     * is_anonymous: members only. */
    {SQL_POST_NEW,
     "INSERT INTO community_posts (id, community_id, author_id, title, content, post_type, "
     "content_warning, is_anonymous) "
     "SELECT a.id, m.community_id, m.user_id, a.title, a.content, "
     "coalesce(a.ptype, 'discussion'), a.cw, coalesce(a.anon, false) "
     "FROM (SELECT %s::uuid AS id, %s::uuid AS cid, %s::uuid AS viewer, %s::text AS title, "
     "%s::text AS content, %s::community_post_type AS ptype, %s::text AS cw, "
     "%s::boolean AS anon) a "
     "JOIN community_members m ON m.community_id = a.cid AND m.user_id = a.viewer"},
    /* post, viewer, viewer role: the post JSON and whether it reveals an
     * anonymous author. */
    {SQL_POST_GET,
     "WITH a AS (SELECT %s::uuid AS pid, %s::uuid AS viewer, %s::text AS vrole), "
     "x AS (SELECT p.*, (m.role IN ('moderator', 'owner') OR a.vrole = 'admin') AS can_mod "
     "FROM a JOIN community_posts p ON p.id = a.pid AND p.deleted_at IS NULL "
     "JOIN communities c ON c.id = p.community_id "
     "LEFT JOIN community_members m ON m.community_id = c.id AND m.user_id = a.viewer "
     "WHERE " CM_READS("c", "m") ") "
     "SELECT " POST_JSON("x", "x.can_mod", "a.viewer") ", "
     "x.is_anonymous AND x.can_mod AND x.author_id IS DISTINCT FROM a.viewer "
     "FROM a CROSS JOIN x LEFT JOIN users u ON u.id = x.author_id "
     "WHERE x.can_mod OR x.hidden_at IS NULL"},
    /* changes, post, viewer, viewer role: the author (still a member)
     * edits the text, moderators pin. */
    {SQL_POST_EDIT,
     "UPDATE community_posts p SET "
     SET_FROM_J("title", "a.j->>'title'") ", "
     SET_FROM_J("content", "a.j->>'content'") ", "
     SET_FROM_J("post_type", "(a.j->>'post_type')::community_post_type") ", "
     SET_FROM_J("content_warning", "a.j->>'content_warning'") ", "
     SET_FROM_J("is_anonymous", "(a.j->>'is_anonymous')::boolean") ", "
     SET_FROM_J("is_pinned", "(a.j->>'is_pinned')::boolean") " "
     "FROM (SELECT %s::jsonb AS j, %s::uuid AS pid, %s::uuid AS viewer, %s::text AS vrole) a "
     "WHERE p.id = a.pid AND p.deleted_at IS NULL "
     "AND (NOT (a.j ?| array['title', 'content', 'post_type', 'content_warning', "
     "'is_anonymous']) OR (p.author_id = a.viewer AND EXISTS (SELECT 1 FROM community_members m "
     " WHERE m.community_id = p.community_id AND m.user_id = a.viewer))) "
     "AND (NOT a.j ? 'is_pinned' OR a.vrole = 'admin' OR EXISTS (SELECT 1 FROM "
     " community_members m WHERE m.community_id = p.community_id AND m.user_id = a.viewer "
     " AND m.role IN ('moderator', 'owner')))"},
    /* post, viewer, viewer role, reason: the author, a moderator or an admin. */
    {SQL_POST_DEL,
     "UPDATE community_posts p SET deleted_at = now(), deleted_by = a.viewer, "
     "delete_reason = a.reason, is_pinned = false "
     "FROM (SELECT %s::uuid AS pid, %s::uuid AS viewer, %s::text AS vrole, %s::text AS reason) a "
     "WHERE p.id = a.pid AND p.deleted_at IS NULL "
     "AND (p.author_id = a.viewer OR a.vrole = 'admin' OR EXISTS (SELECT 1 FROM "
     " community_members m WHERE m.community_id = p.community_id AND m.user_id = a.viewer "
     " AND m.role IN ('moderator', 'owner')))"},
    /* post, viewer, wanted state (NULL toggles): members only. Returns
     * whether the viewer may like it, rows inserted, rows deleted. */
    {SQL_LIKE,
     "WITH a AS (SELECT %s::uuid AS pid, %s::uuid AS viewer, %s::boolean AS want), "
     "ok AS (SELECT p.id FROM a JOIN community_posts p ON p.id = a.pid AND p.deleted_at IS NULL "
     " JOIN community_members m ON m.community_id = p.community_id AND m.user_id = a.viewer), "
     "del AS (DELETE FROM post_likes l USING a, ok WHERE l.post_id = ok.id "
     " AND l.user_id = a.viewer AND NOT coalesce(a.want, false) RETURNING 1), "
     "ins AS (INSERT INTO post_likes (post_id, user_id) SELECT ok.id, a.viewer FROM ok, a "
     " WHERE coalesce(a.want, NOT EXISTS (SELECT 1 FROM del)) ON CONFLICT DO NOTHING RETURNING 1) "
     "SELECT (SELECT count(*) FROM ok), (SELECT count(*) FROM ins), (SELECT count(*) FROM del)"},
    {SQL_LIKES, "SELECT like_count FROM community_posts WHERE id = %s::uuid"},
    {NULL, NULL}
};

/* ---------------------------------------------------------------- helpers */

static apr_status_t release_json(void *obj)
{
    json_object_put(obj);
    return APR_SUCCESS;
}

static json_object *pool_object(request_rec *r)
{
    json_object *o = json_object_new_object();

    apr_pool_cleanup_register(r->pool, o, release_json, apr_pool_cleanup_null);
    return o;
}

static const char *flat_text(json_object *o, const char *field)
{
    json_object *v = NULL;

    return json_object_object_get_ex(o, field, &v) && v ? json_object_get_string(v) : NULL;
}

/* Audits that the caller saw who wrote anonymous posts (ids_json: the
 * post ids). Returns 0, or -1 after answering 503: nothing is revealed
 * without its audit row. */
static int audit_reveal(request_rec *r, ap_dbd_t *db, const char *type, const char *id,
                        const char *details)
{
    return community_audit(r, db, "community.anonymous_author_viewed", type, id, details);
}

/* ---------------------------------------------------------------- feed */

/* The statement's 12 arguments from the parsed request: in[0..3] the
 * community and viewer, in[4] post_type, in[5] hide_cw, in[6..8] the
 * cursor (NULL: the top). */
static const char *const *feed_args(request_rec *r, const char *const *in, int per_page,
                                    int page)
{
    const char **out = apr_pcalloc(r->pool, 12 * sizeof *out);
    int exact = in[4] || (in[5] && strcmp(in[5], "true") == 0);

    memcpy(out, in, 4 * sizeof *out);
    out[4] = exact ? "true" : "false";
    memcpy(out + 5, in + 4, 5 * sizeof *out);
    out[10] = apr_itoa(r->pool, per_page);
    out[11] = apr_itoa(r->pool, (page - 1) * per_page);
    return out;
}

static int posts_feed(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"page", "per_page", "before", "post_type",
                                          "hide_content_warnings", NULL};
    const bl_user *user;
    apr_table_t *q;
    const char *args[9], *before, *revealed, *meta;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;
    long total;

    if (!(user = community_user(r)) || community_query(r, allowed, &q) != 0
        || bl_pagination_args(r, &page, &per_page) != 0
        || community_query_bool(r, q, "hide_content_warnings", &args[5]) != 0)
        return OK;
    if (community_ref_args(r, apr_table_get(params, "id"), &args[0], &args[1]) != 0)
        return community_not_found(r, "community");
    args[2] = user->id;
    args[3] = user->role;
    args[4] = apr_table_get(q, "post_type");
    if (args[4] && !bl_valid_enum(args[4], post_types))
        return bl_send_validation_error(r, "post_type", "post_type must be one of discussion, "
                                        "question, story, resource");
    args[6] = args[7] = args[8] = NULL;
    if ((before = apr_table_get(q, "before"))) {
        community_feed_cursor cursor;

        if (community_feed_cursor_parse(r->pool, before, &cursor) != 0)
            return bl_send_validation_error(r, "before",
                                            "before must be a cursor from meta.next_cursor");
        args[6] = cursor.pinned;
        args[7] = cursor.microseconds;
        args[8] = cursor.id;
        if (page != 1)
            return bl_send_validation_error(r, "page", "give page or before, not both");
    }
    if (!(db = bl_db(r)) || !(res = bl_db_select(r, db, SQL_FEED, 12,
                                                   feed_args(r, args, per_page, page))))
        return OK;
    row = community_first_row(r, db, res);
    if (!row || !community_is_true(bl_db_get(r, db, row, 0)))
        return community_not_found(r, "community");
    if (!community_is_true(bl_db_get(r, db, row, 1)))    /* public and unread: banned */
        return community_refuse_read(r, strcmp(bl_db_get(r, db, row, 7), "public") == 0);
    revealed = bl_db_get(r, db, row, 5);
    if (revealed && audit_reveal(r, db, "community", bl_db_get(r, db, row, 6),
                                 apr_pstrcat(r->pool, "{\"post_ids\":", revealed, "}",
                                             NULL)) != 0)
        return OK;
    total = (long)apr_atoi64(bl_db_get(r, db, row, 2));
    if (total < 0)
        total = 0;
    before = bl_db_get(r, db, row, 4);
    meta = apr_psprintf(r->pool, "{\"page\":%d,\"per_page\":%d,\"total\":%ld,"
                        "\"total_pages\":%ld,\"next_cursor\":%s}", page, per_page, total,
                        (total + per_page - 1) / per_page,
                        before ? bl_json_quote(r->pool, before) : "null");
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 3), meta);
}

/* ---------------------------------------------------------------- fields */

/* Validates the post fields into the flat object out. Creating: content
 * required; updating: any subset, null clears title and content_warning. */
static int read_post(request_rec *r, json_object *body, int for_update, json_object *out)
{
    static const char *const allowed_new[] = {"title", "content", "post_type",
                                              "content_warning", "is_anonymous", NULL};
    static const char *const allowed_edit[] = {"title", "content", "post_type",
                                               "content_warning", "is_anonymous",
                                               "is_pinned", NULL};
    static const struct {
        const char *field;
        size_t max;
        int required, nullable;
    } texts[] = {
        {"title", TITLE_MAX, 0, 1},
        {"content", CONTENT_MAX, 1, 0},
        {"content_warning", WARNING_MAX, 0, 1},
    };
    static const char *const flags[] = {"is_anonymous", "is_pinned"};
    const char *value, *err = NULL;
    json_object *v;
    size_t i;
    int present, b;

    if (community_refuse_unknown(r, body, for_update ? allowed_edit : allowed_new) != 0)
        return -1;
    for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (json_object_object_get_ex(body, texts[i].field, &v) && !v && !texts[i].nullable)
            return bl_send_validation_error(r, texts[i].field,
                                            apr_pstrcat(r->pool, texts[i].field,
                                                        " must be a string", NULL)), -1;
        if (community_string_field(r, body, texts[i].field, texts[i].required && !for_update, 1,
                                   texts[i].max, &value, &present) != 0)
            return -1;
        if (present)
            json_object_object_add(out, texts[i].field,
                                   value ? json_object_new_string(value) : NULL);
    }
    switch (bl_json_get_enum(r->pool, body, "post_type", BL_OPTIONAL, post_types, &value, &err)) {
    case BL_FIELD_OK:
        json_object_object_add(out, "post_type", json_object_new_string(value));
        break;
    case BL_FIELD_ABSENT:
        if (!json_object_object_get_ex(body, "post_type", &v))
            break;
        err = "post_type must not be null";
        /* fall through */
    default:
        return bl_send_validation_error(r, "post_type", err), -1;
    }
    for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        switch (bl_json_get_bool(r->pool, body, flags[i], BL_OPTIONAL, &b, &err)) {
        case BL_FIELD_OK:
            json_object_object_add(out, flags[i], json_object_new_boolean(b));
            break;
        case BL_FIELD_ABSENT:
            if (!json_object_object_get_ex(body, flags[i], &v))
                break;
            err = apr_pstrcat(r->pool, flags[i], " must be true or false", NULL);
            /* fall through */
        default:
            return bl_send_validation_error(r, flags[i], err), -1;
        }
    }
    return 0;
}

/* Answers with the post as the caller sees it (auditing a revealed
 * anonymous author). */
static int send_post(request_rec *r, ap_dbd_t *db, const char *id, int status,
                     const char *message)
{
    const bl_user *user = bl_current_user(r);
    const char *args[3] = {id, user->id, user->role};
    apr_dbd_results_t *res = bl_db_select(r, db, SQL_POST_GET, 3, args);
    apr_dbd_row_t *row;

    if (!res)
        return OK;
    if (!(row = community_first_row(r, db, res)))
        return community_not_found(r, "post");
    if (community_is_true(bl_db_get(r, db, row, 1))
        && audit_reveal(r, db, "post", id, NULL) != 0)
        return OK;
    return bl_send_data(r, status, message, bl_db_get(r, db, row, 0), NULL);
}

/* ---------------------------------------------------------------- create */

static int posts_create(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    community_access acc;
    json_object *body, *f, *v;
    const char *args[8];
    ap_dbd_t *db;
    int n;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0
        || community_require_member(r, &acc) != 0 || !(body = bl_read_json(r)))
        return OK;
    f = pool_object(r);
    if (read_post(r, body, 0, f) != 0)
        return OK;
    if (!(args[0] = bl_uuid_v4(r->pool)))
        return bl_send_unavailable(r, "random number generator");
    args[1] = acc.id;
    args[2] = user->id;
    args[3] = flat_text(f, "title");
    args[4] = flat_text(f, "content");
    args[5] = flat_text(f, "post_type");
    args[6] = flat_text(f, "content_warning");
    args[7] = json_object_object_get_ex(f, "is_anonymous", &v) && json_object_get_boolean(v)
                  ? "true" : "false";
    if ((n = bl_db_exec(r, db, SQL_POST_NEW, 8, args)) < 0)
        return OK;
    if (n == 0)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN, "join the community first",
                             NULL);
    return send_post(r, db, args[0], HTTP_CREATED, "post created");
}

/* ---------------------------------------------------------------- read, edit, delete */

static int posts_get(request_rec *r, apr_table_t *params)
{
    const char *id = apr_table_get(params, "id");
    ap_dbd_t *db;

    if (!community_user(r) || community_valid_id(r, id, "post") != 0 || !(db = bl_db(r)))
        return OK;
    return send_post(r, db, id, HTTP_OK, NULL);
}

static int posts_update(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    post_access pa;
    json_object *body, *f;
    const char *args[4];
    int edits_text, pins, n;
    ap_dbd_t *db;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || community_post_lookup(r, db, apr_table_get(params, "id"), &pa) != 0
        || !(body = bl_read_json(r)))
        return OK;
    f = pool_object(r);
    if (read_post(r, body, 1, f) != 0)
        return OK;
    pins = json_object_object_get_ex(f, "is_pinned", NULL);
    edits_text = json_object_object_length(f) > pins;
    if (!pins && !edits_text)
        return bl_send_validation_error(r, "content", "give at least one field to change");
    if (pins && !pa.can_moderate)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only moderators pin and unpin", NULL);
    if (edits_text && (!pa.author_id || strcasecmp(pa.author_id, user->id) != 0 || !pa.role))
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only the author edits a post", NULL);
    args[0] = bl_json_to_string(r->pool, f);
    args[1] = pa.id;
    args[2] = user->id;
    args[3] = user->role;
    if ((n = bl_db_exec(r, db, SQL_POST_EDIT, 4, args)) < 0)
        return OK;
    if (n == 0)
        return community_not_found(r, "post");
    return send_post(r, db, pa.id, HTTP_OK, "post updated");
}

static int posts_delete(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"reason", NULL};
    const bl_user *user;
    post_access pa;
    apr_table_t *q;
    const char *args[4], *reason;
    int own, n;
    ap_dbd_t *db;

    if (!(user = community_user(r)) || community_query(r, allowed, &q) != 0 || !(db = bl_db(r))
        || community_post_lookup(r, db, apr_table_get(params, "id"), &pa) != 0)
        return OK;
    own = pa.author_id && strcasecmp(pa.author_id, user->id) == 0;
    if (!own && !pa.can_moderate)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only the author or a moderator deletes a post", NULL);
    reason = apr_table_get(q, "reason");
    if (reason && !bl_valid_length(reason, 1, REASON_MAX))
        return bl_send_validation_error(r, "reason", "reason must be 1 to 1000 characters");
    if (!own && !reason)
        return bl_send_validation_error(r, "reason", "a moderator gives a reason");
    args[0] = pa.id;
    args[1] = user->id;
    args[2] = user->role;
    args[3] = reason;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if (!own && community_audit(r, db, "community.post_deleted", "post", pa.id,
                                apr_pstrcat(r->pool, "{\"community_id\":\"", pa.community_id,
                                            "\",\"reason\":", bl_json_quote(r->pool, reason),
                                            "}", NULL)) != 0)
        return bl_db_rollback(r, db), OK;
    if ((n = bl_db_exec(r, db, SQL_POST_DEL, 4, args)) < 0)
        return bl_db_rollback(r, db), OK;
    if (n == 0) {
        bl_db_rollback(r, db);
        return community_not_found(r, "post");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_no_content(r);
}

/* ---------------------------------------------------------------- likes */

/* The wanted state from an optional {"liked": bool} body: "true",
 * "false", or NULL (no body: toggle). Returns 0, or -1 after answering. */
/* The wanted like state from an optional {"liked": bool} body: "true",
 * "false", or NULL (no body: toggle). Returns 0, or -1 after answering. */
static int read_liked(request_rec *r, const char **want)
{
    static const char *const allowed[] = {"liked", NULL};
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    json_object *body;
    const char *err = NULL;
    int liked;

    *want = NULL;
    if (!apr_table_get(r->headers_in, "Content-Type")
        && !apr_table_get(r->headers_in, "Transfer-Encoding") && (!cl || strcmp(cl, "0") == 0))
        return 0;
    if (!(body = bl_read_json(r)) || community_refuse_unknown(r, body, allowed) != 0)
        return -1;
    if (bl_json_get_bool(r->pool, body, "liked", BL_REQUIRED, &liked, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "liked", err), -1;
    *want = liked ? "true" : "false";
    return 0;
}

int community_set_like(request_rec *r, ap_dbd_t *db, const char *item_id,
                       const char *user_id, const char *what, const char *like_sql,
                       const char *count_sql)
{
    const char *args[3], *want, *count = NULL;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    int liked;

    if (read_liked(r, &want) != 0)
        return OK;
    args[0] = item_id;
    args[1] = user_id;
    args[2] = want;
    if (!(res = bl_db_select(r, db, like_sql, 3, args)))
        return OK;
    if (!(row = community_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    if (strcmp(bl_db_get(r, db, row, 0), "0") == 0)
        return community_not_found(r, what);
    if (want)
        liked = strcmp(want, "true") == 0;
    else    /* toggled: on unless this call took a like away */
        liked = strcmp(bl_db_get(r, db, row, 2), "0") == 0;
    if (bl_db_value(r, db, count_sql, 1, args, &count) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_OK, NULL,
                        apr_psprintf(r->pool, "{\"liked\":%s,\"like_count\":%s}",
                                     liked ? "true" : "false", count ? count : "0"), NULL);
}

static int posts_like(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    post_access pa;
    ap_dbd_t *db;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || community_post_lookup(r, db, apr_table_get(params, "id"), &pa) != 0)
        return OK;
    if (!pa.role)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN, "join the community first",
                             NULL);
    return community_set_like(r, db, pa.id, user->id, "post", SQL_LIKE, SQL_LIKES);
}

static const community_route routes[] = {
    {"GET", "/communities/:id/posts", posts_feed},
    {"POST", "/communities/:id/posts", posts_create},
    {"GET", "/posts/:id", posts_get},
    {"PUT", "/posts/:id", posts_update},
    {"DELETE", "/posts/:id", posts_delete},
    {"POST", "/posts/:id/like", posts_like},
    {NULL, NULL, NULL}
};

const community_part posts_part = {"posts", routes, statements};
