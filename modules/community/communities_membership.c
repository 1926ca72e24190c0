/* Membership: joining (public at once, private by request, hidden by
 * invitation), join requests and their decisions, invitations, leaving,
 * the member list, roles, removal, bans, the ban list and lifting a ban —
 * and the bl_account_deleted hook that removes a deleted account's
 * memberships.
 *
 * Role changes, leaving and removal lock the community row first, so the
 * "at least one owner" rule holds when two of them race. */
#include "community_private.h"
#include "json.h"
#include "validate.h"

#include <http_log.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_community);

#define SQL_LOCK          "community_lock"
#define SQL_TARGET        "community_target"
#define SQL_JOIN          "community_join"
#define SQL_REQUEST       "community_request"
#define SQL_REQUESTS      "community_requests"
#define SQL_APPROVE       "community_approve"
#define SQL_REJECT        "community_reject"
#define SQL_INVITE        "community_invite"
#define SQL_LEAVE         "community_leave"
#define SQL_MEMBERS       "community_members"
#define SQL_MEMBER_JSON   "community_member_json"
#define SQL_SET_ROLE      "community_set_role"
#define SQL_REMOVE        "community_remove"
#define SQL_BAN           "community_ban"
#define SQL_BANS          "community_bans"
#define SQL_UNBAN         "community_unban"
#define SQL_ACCOUNT_GONE  "community_account_gone"

#define ERR_LAST_OWNER "LAST_OWNER"

static const char *const roles[] = {"member", "moderator", "owner", NULL};

#define IS_STAFF(cid, viewer) \
    "EXISTS (SELECT 1 FROM community_members s WHERE s.community_id = " cid \
    " AND s.user_id = " viewer " AND s.role IN ('moderator', 'owner'))"
#define IS_OWNER(cid, viewer) \
    "EXISTS (SELECT 1 FROM community_members s WHERE s.community_id = " cid \
    " AND s.user_id = " viewer " AND s.role = 'owner')"
#define OTHER_OWNER(cid, uid) \
    "EXISTS (SELECT 1 FROM community_members o WHERE o.community_id = " cid \
    " AND o.role = 'owner' AND o.user_id <> " uid ")"
#define NOT_BANNED(cid, uid) \
    "NOT EXISTS (SELECT 1 FROM community_bans b WHERE b.community_id = " cid \
    " AND b.user_id = " uid ")"

#define MEMBER_JSON \
    "json_build_object('user', " CM_PERSON("u") ", 'role', m.role, " \
    "'joined_at', " CM_TS("m.joined_at") ")"

/* A ban b of user u by bu (LEFT JOINed: NULL once that account is gone). */
#define BAN_JSON \
    "json_build_object('user', " CM_PERSON("u") ", 'banned_by', " \
    "CASE WHEN bu.id IS NULL THEN NULL ELSE " CM_PERSON("bu") " END, " \
    "'created_at', " CM_TS("b.created_at") ")"

static const bl_statement statements[] = {
    {SQL_LOCK, "SELECT 1 FROM communities WHERE id = %s::uuid FOR UPDATE"},
    /* community, user: exists?, role, banned?, invited? */
    {SQL_TARGET,
     "SELECT u.id IS NOT NULL, m.role, "
     "EXISTS (SELECT 1 FROM community_bans b WHERE b.community_id = a.cid AND b.user_id = a.uid), "
     "EXISTS (SELECT 1 FROM community_invitations i WHERE i.community_id = a.cid "
     " AND i.user_id = a.uid) "
     "FROM (SELECT %s::uuid AS cid, %s::uuid AS uid) a "
     "LEFT JOIN users u ON u.id = a.uid AND u.deleted_at IS NULL AND u.is_active "
     "LEFT JOIN community_members m ON m.community_id = a.cid AND m.user_id = a.uid"},
    /* community, user: public, or an invitation (used up); never banned. */
    {SQL_JOIN,
     "WITH a AS (SELECT %s::uuid AS cid, %s::uuid AS viewer), "
     "inv AS (DELETE FROM community_invitations i USING a WHERE i.community_id = a.cid "
     " AND i.user_id = a.viewer RETURNING i.user_id), "
     "req AS (DELETE FROM community_join_requests j USING a WHERE j.community_id = a.cid "
     " AND j.user_id = a.viewer RETURNING j.user_id) "
     "INSERT INTO community_members (community_id, user_id, role) "
     "SELECT c.id, a.viewer, 'member' FROM a JOIN communities c ON c.id = a.cid "
     "WHERE (c.privacy = 'public' OR EXISTS (SELECT 1 FROM inv)) "
     "AND " NOT_BANNED("c.id", "a.viewer") " ON CONFLICT DO NOTHING"},
    /* community, user: a pending request to a private community. */
    {SQL_REQUEST,
     "INSERT INTO community_join_requests (community_id, user_id) "
     "SELECT c.id, a.viewer FROM (SELECT %s::uuid AS cid, %s::uuid AS viewer) a "
     "JOIN communities c ON c.id = a.cid WHERE c.privacy = 'private' "
     "AND " NOT_BANNED("c.id", "a.viewer") " AND NOT EXISTS (SELECT 1 FROM community_members m "
     "WHERE m.community_id = c.id AND m.user_id = a.viewer) ON CONFLICT DO NOTHING"},
    /* community, viewer, viewer role, limit, offset. */
    {SQL_REQUESTS,
     "WITH a AS (SELECT %s::uuid AS cid, %s::uuid AS viewer, %s::text AS vrole), "
     "f AS (SELECT j.* FROM a JOIN community_join_requests j ON j.community_id = a.cid "
     "WHERE a.vrole = 'admin' OR " IS_STAFF("a.cid", "a.viewer") ") "
     "SELECT (SELECT count(*) FROM f), coalesce((SELECT json_agg(json_build_object("
     "'user', " CM_PERSON("u") ", 'requested_at', " CM_TS("j.created_at") ") "
     "ORDER BY j.created_at, j.user_id) FROM (SELECT * FROM f ORDER BY created_at, user_id "
     "LIMIT %s::int OFFSET %s::int) j JOIN users u ON u.id = j.user_id), '[]'::json)"},
    /* community, user, viewer, viewer role. */
    {SQL_APPROVE,
     "WITH a AS (SELECT %s::uuid AS cid, %s::uuid AS uid, %s::uuid AS viewer, %s::text AS vrole), "
     "req AS (DELETE FROM community_join_requests j USING a WHERE j.community_id = a.cid "
     " AND j.user_id = a.uid AND (a.vrole = 'admin' OR " IS_STAFF("a.cid", "a.viewer") ") "
     " RETURNING j.user_id) "
     "INSERT INTO community_members (community_id, user_id, role) "
     "SELECT a.cid, req.user_id, 'member' FROM a, req WHERE " NOT_BANNED("a.cid", "req.user_id")
     " ON CONFLICT DO NOTHING"},
    {SQL_REJECT,
     "DELETE FROM community_join_requests j "
     "USING (SELECT %s::uuid AS cid, %s::uuid AS uid, %s::uuid AS viewer, %s::text AS vrole) a "
     "WHERE j.community_id = a.cid AND j.user_id = a.uid "
     "AND (a.vrole = 'admin' OR " IS_STAFF("a.cid", "a.viewer") ")"},
    /* community, user, viewer, viewer role. */
    {SQL_INVITE,
     "INSERT INTO community_invitations (community_id, user_id, invited_by) "
     "SELECT a.cid, u.id, a.viewer "
     "FROM (SELECT %s::uuid AS cid, %s::uuid AS uid, %s::uuid AS viewer, %s::text AS vrole) a "
     "JOIN users u ON u.id = a.uid AND u.deleted_at IS NULL AND u.is_active "
     "WHERE (a.vrole = 'admin' OR " IS_STAFF("a.cid", "a.viewer") ") "
     "AND " NOT_BANNED("a.cid", "u.id") " AND NOT EXISTS (SELECT 1 FROM community_members m "
     "WHERE m.community_id = a.cid AND m.user_id = u.id) ON CONFLICT DO NOTHING"},
    /* community, user: never the last owner. */
    {SQL_LEAVE,
     "DELETE FROM community_members m USING (SELECT %s::uuid AS cid, %s::uuid AS uid) a "
     "WHERE m.community_id = a.cid AND m.user_id = a.uid "
     "AND (m.role <> 'owner' OR " OTHER_OWNER("a.cid", "a.uid") ")"},
    /* id, slug, viewer, viewer role, limit, offset: readers only. */
    {SQL_MEMBERS,
     "WITH " CM_ARGS_COMMUNITY ", " CM_ACCESS ", "
     "f AS (SELECT m.* FROM acc JOIN community_members m ON m.community_id = acc.id "
     "WHERE acc.can_read) "
     "SELECT (SELECT count(*) FROM f), coalesce((SELECT json_agg(" MEMBER_JSON
     " ORDER BY m.role DESC, m.joined_at, m.user_id) "
     "FROM (SELECT * FROM f ORDER BY role DESC, joined_at, user_id "
     "LIMIT %s::int OFFSET %s::int) m JOIN users u ON u.id = m.user_id), '[]'::json) "
     "FROM acc WHERE acc.can_read"},
    {SQL_MEMBER_JSON,
     "SELECT " MEMBER_JSON " FROM community_members m JOIN users u ON u.id = m.user_id "
     "WHERE m.community_id = %s::uuid AND m.user_id = %s::uuid"},
    /* community, user, new role, viewer, viewer role: staff change members
     * and moderators; only owners (and admins) touch owners; never the
     * last owner. */
    {SQL_SET_ROLE,
     "UPDATE community_members m SET role = a.role "
     "FROM (SELECT %s::uuid AS cid, %s::uuid AS uid, %s::community_role AS role, "
     "%s::uuid AS viewer, %s::text AS vrole) a "
     "WHERE m.community_id = a.cid AND m.user_id = a.uid "
     "AND (a.vrole = 'admin' OR " IS_STAFF("a.cid", "a.viewer") ") "
     "AND ((m.role <> 'owner' AND a.role <> 'owner') OR a.vrole = 'admin' OR "
     IS_OWNER("a.cid", "a.viewer") ") "
     "AND (m.role <> 'owner' OR a.role = 'owner' OR " OTHER_OWNER("a.cid", "a.uid") ")"},
    /* community, user, viewer, viewer role: as above for the removal. */
    {SQL_REMOVE,
     "DELETE FROM community_members m "
     "USING (SELECT %s::uuid AS cid, %s::uuid AS uid, %s::uuid AS viewer, %s::text AS vrole) a "
     "WHERE m.community_id = a.cid AND m.user_id = a.uid "
     "AND (a.vrole = 'admin' OR " IS_STAFF("a.cid", "a.viewer") ") "
     "AND (m.role <> 'owner' OR a.vrole = 'admin' OR " IS_OWNER("a.cid", "a.viewer") ") "
     "AND (m.role <> 'owner' OR " OTHER_OWNER("a.cid", "a.uid") ")"},
    /* community, user, viewer, viewer role: pending requests,
     * invitations and registrations for the community's sessions not yet
     * over go with the ban (a registration would keep its Meet link). */
    {SQL_BAN,
     "WITH a AS (SELECT %s::uuid AS cid, %s::uuid AS uid, %s::uuid AS viewer, %s::text AS vrole), "
     "ok AS (SELECT 1 FROM a WHERE a.vrole = 'admin' OR " IS_STAFF("a.cid", "a.viewer") "), "
     "r AS (DELETE FROM community_join_requests j USING a WHERE j.community_id = a.cid "
     " AND j.user_id = a.uid AND EXISTS (SELECT 1 FROM ok)), "
     "i AS (DELETE FROM community_invitations j USING a WHERE j.community_id = a.cid "
     " AND j.user_id = a.uid AND EXISTS (SELECT 1 FROM ok)), "
     "v AS (DELETE FROM video_session_participants p USING a, video_sessions s "
     " WHERE p.session_id = s.id AND s.community_id = a.cid AND p.user_id = a.uid "
     " AND s.scheduled_at + s.duration_minutes * interval '1 minute' > now() "
     " AND EXISTS (SELECT 1 FROM ok)) "
     "INSERT INTO community_bans (community_id, user_id, banned_by) "
     "SELECT a.cid, u.id, a.viewer FROM a JOIN users u ON u.id = a.uid "
     "WHERE EXISTS (SELECT 1 FROM ok) ON CONFLICT DO NOTHING"},
    /* id, slug, viewer, viewer role, limit, offset: moderators only;
     * newest first. */
    {SQL_BANS,
     "WITH " CM_ARGS_COMMUNITY ", " CM_ACCESS ", "
     "f AS (SELECT b.* FROM acc JOIN community_bans b ON b.community_id = acc.id "
     "WHERE acc.can_moderate) "
     "SELECT (SELECT count(*) FROM f), coalesce((SELECT json_agg(" BAN_JSON
     " ORDER BY b.created_at DESC, b.user_id DESC) "
     "FROM (SELECT * FROM f ORDER BY created_at DESC, user_id DESC "
     "LIMIT %s::int OFFSET %s::int) b JOIN users u ON u.id = b.user_id "
     "LEFT JOIN users bu ON bu.id = b.banned_by), '[]'::json) "
     "FROM acc WHERE acc.can_moderate"},
    /* community, user, viewer, viewer role: any moderator lifts any ban,
     * an owner's too. The membership does not come back. */
    {SQL_UNBAN,
     "DELETE FROM community_bans b "
     "USING (SELECT %s::uuid AS cid, %s::uuid AS uid, %s::uuid AS viewer, %s::text AS vrole) a "
     "WHERE b.community_id = a.cid AND b.user_id = a.uid "
     "AND (a.vrole = 'admin' OR " IS_STAFF("a.cid", "a.viewer") ")"},
    /* user: where they are the only owner, the longest-standing moderator
     * (else member) takes over; then every membership goes. */
    {SQL_ACCOUNT_GONE,
     "WITH a AS (SELECT %s::uuid AS uid), "
     "sole AS (SELECT m.community_id FROM community_members m, a WHERE m.user_id = a.uid "
     " AND m.role = 'owner' AND NOT " OTHER_OWNER("m.community_id", "a.uid") "), "
     "heir AS (SELECT DISTINCT ON (m.community_id) m.community_id, m.user_id "
     " FROM community_members m JOIN sole s ON s.community_id = m.community_id, a "
     " WHERE m.user_id <> a.uid ORDER BY m.community_id, m.role DESC, m.joined_at, m.user_id), "
     "up AS (UPDATE community_members m SET role = 'owner' FROM heir h "
     " WHERE m.community_id = h.community_id AND m.user_id = h.user_id) "
     "DELETE FROM community_members m USING a WHERE m.user_id = a.uid"},
    {NULL, NULL}
};

/* ---------------------------------------------------------------- helpers */

typedef struct {
    int exists;
    const char *role;
    int banned;
    int invited;
} member_target;

/* The target user's standing in the community; -1 after answering 503. */
static int load_target(request_rec *r, ap_dbd_t *db, const char *cid, const char *uid,
                       member_target *t)
{
    const char *args[2] = {cid, uid};
    apr_dbd_results_t *res = bl_db_select(r, db, SQL_TARGET, 2, args);
    apr_dbd_row_t *row;

    memset(t, 0, sizeof *t);
    if (!res)
        return -1;
    if (!(row = community_first_row(r, db, res)))
        return bl_send_unavailable(r, "database"), -1;
    t->exists = community_is_true(bl_db_get(r, db, row, 0));
    t->role = bl_db_get(r, db, row, 1);
    t->banned = community_is_true(bl_db_get(r, db, row, 2));
    t->invited = community_is_true(bl_db_get(r, db, row, 3));
    return 0;
}

static int is_role(const char *role, const char *want)
{
    return role && strcmp(role, want) == 0;
}

static int lock_community(request_rec *r, ap_dbd_t *db, const char *cid)
{
    const char *args[1] = {cid};

    return bl_db_select(r, db, SQL_LOCK, 1, args) ? 0 : -1;
}

static int last_owner(request_rec *r)
{
    return bl_send_error(r, HTTP_CONFLICT, ERR_LAST_OWNER,
                         "the last owner cannot leave or step down: make someone else "
                         "owner first", NULL);
}

static const char *community_data(request_rec *r, const community_access *acc)
{
    return apr_psprintf(r->pool, "{\"community_id\":\"%s\"}", acc->id);
}

/* Answers with one membership. */
static int send_member(request_rec *r, ap_dbd_t *db, const char *cid, const char *uid,
                       int status, const char *message)
{
    const char *args[2] = {cid, uid}, *json = NULL;

    if (bl_db_value(r, db, SQL_MEMBER_JSON, 2, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return community_not_found(r, "member");
    return bl_send_data(r, status, message, json, NULL);
}

/* The path's user id, or NULL after answering 404. */
/* The path's user id, lowercased as the database writes ids, so audit
 * rows name the user the same way whatever case the caller typed; NULL
 * after answering when it is not an id. */
static const char *path_user(request_rec *r, apr_table_t *params)
{
    const char *uid = apr_table_get(params, "user_id");
    char *lower;

    if (community_valid_id(r, uid, "user") != 0)
        return NULL;
    lower = apr_pstrdup(r->pool, uid);
    ap_str_tolower(lower);
    return lower;
}

/* ---------------------------------------------------------------- join */

static int join_by_request(request_rec *r, ap_dbd_t *db, const bl_user *user,
                           const community_access *acc)
{
    const char *args[2] = {acc->id, user->id};
    int n;

    if (bl_db_begin(r, db) != 0)
        return OK;
    if ((n = bl_db_exec(r, db, SQL_REQUEST, 2, args)) < 0)
        return bl_db_rollback(r, db), OK;
    if (n == 1 && community_notify_staff(r, db, acc->id, 0, "community.join_request",
                               apr_pstrcat(r->pool, "New request to join ", acc->name, NULL),
                               apr_pstrcat(r->pool, "Someone asked to join ", acc->name,
                                           ". Review the request in the community.", NULL),
                               apr_psprintf(r->pool, "{\"community_id\":\"%s\",\"user_id\":\"%s\"}",
                                            acc->id, user->id)) != 0)
        return bl_db_rollback(r, db), OK;
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_ACCEPTED, "join request sent to the moderators",
                        apr_psprintf(r->pool, "{\"status\":\"pending\",\"community_id\":\"%s\"}",
                                     acc->id), NULL);
}

static int communities_join(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    community_access acc;
    const char *args[2];
    ap_dbd_t *db;
    int n;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0)
        return OK;
    if (acc.banned)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "you cannot join this community", NULL);
    if (acc.role)
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                             "you are a member already", NULL);
    if (!acc.invited && strcmp(acc.privacy, "private") == 0)
        return join_by_request(r, db, user, &acc);
    if (!acc.invited && strcmp(acc.privacy, "public") != 0)
        return community_not_found(r, "community");
    args[0] = acc.id;
    args[1] = user->id;
    if ((n = bl_db_exec(r, db, SQL_JOIN, 2, args)) < 0)
        return OK;
    if (n == 0)    /* banned or invitation withdrawn meanwhile */
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "you cannot join this community", NULL);
    return send_member(r, db, acc.id, user->id, HTTP_CREATED, "joined");
}

static int communities_leave(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    community_access acc;
    const char *args[2];
    ap_dbd_t *db;
    int n;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0)
        return OK;
    if (!acc.role)
        return community_not_found(r, "membership");
    if (bl_db_begin(r, db) != 0 || lock_community(r, db, acc.id) != 0)
        return bl_db_rollback(r, db), OK;
    args[0] = acc.id;
    args[1] = user->id;
    if ((n = bl_db_exec(r, db, SQL_LEAVE, 2, args)) < 0)
        return bl_db_rollback(r, db), OK;
    if (n == 0) {
        bl_db_rollback(r, db);
        return is_role(acc.role, "owner") ? last_owner(r) : community_not_found(r, "membership");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_no_content(r);
}

/* ---------------------------------------------------------------- requests */

static int communities_join_requests(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"page", "per_page", NULL};
    const bl_user *user;
    community_access acc;
    apr_table_t *q;
    const char *args[5];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;

    if (!(user = community_user(r)) || community_query(r, allowed, &q) != 0
        || bl_pagination_args(r, &page, &per_page) != 0 || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0
        || community_require_moderator(r, &acc) != 0)
        return OK;
    args[0] = acc.id;
    args[1] = user->id;
    args[2] = user->role;
    args[3] = apr_itoa(r->pool, per_page);
    args[4] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(res = bl_db_select(r, db, SQL_REQUESTS, 5, args)))
        return OK;
    if (!(row = community_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 1),
                        bl_pagination_meta(r, page, per_page,
                                           apr_atoi64(bl_db_get(r, db, row, 0))));
}

/* What a moderator's decision about the path's user shares: the checks,
 * then in a new transaction the statement label (community, user, viewer,
 * viewer role). Returns 1 when it changed a row, the transaction still
 * open; 0 after answering (404 "no such <what>" when it changed none).
 * reader: also the read rule first, so a banned moderator hears why. */
typedef struct {
    const bl_user *user;
    community_access acc;
    const char *uid;
    ap_dbd_t *db;
} user_action;

static int begin_user_action(request_rec *r, apr_table_t *params, int reader,
                             const char *label, const char *what, user_action *a)
{
    const char *args[4];
    int n;

    if (!(a->user = community_user(r)) || !(a->db = bl_db(r))
        || community_lookup(r, a->db, apr_table_get(params, "id"), &a->acc) != 0
        || (reader && community_require_read(r, &a->acc) != 0)
        || community_require_moderator(r, &a->acc) != 0 || !(a->uid = path_user(r, params)))
        return 0;
    args[0] = a->acc.id;
    args[1] = a->uid;
    args[2] = a->user->id;
    args[3] = a->user->role;
    if (bl_db_begin(r, a->db) != 0)
        return 0;
    if ((n = bl_db_exec(r, a->db, label, 4, args)) < 0)
        return bl_db_rollback(r, a->db), 0;
    if (n == 0) {
        bl_db_rollback(r, a->db);
        community_not_found(r, what);
        return 0;
    }
    return 1;
}

static int decide_request(request_rec *r, apr_table_t *params, int approve)
{
    user_action a;
    ap_dbd_t *db;

    if (!begin_user_action(r, params, 0, approve ? SQL_APPROVE : SQL_REJECT, "join request", &a))
        return OK;
    db = a.db;
    if (approve && community_notify(r, db, a.uid, "community.join_approved",
                                    apr_pstrcat(r->pool, "Welcome to ", a.acc.name, NULL),
                                    apr_pstrcat(r->pool, "Your request to join ", a.acc.name,
                                                " was approved.", NULL),
                                    community_data(r, &a.acc)) != 0) {
        bl_db_rollback(r, db);
        return bl_send_unavailable(r, "database");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    if (approve)
        return send_member(r, db, a.acc.id, a.uid, HTTP_OK, "join request approved");
    return bl_send_data(r, HTTP_OK, "join request rejected", NULL, NULL);
}

static int communities_approve(request_rec *r, apr_table_t *params)
{
    return decide_request(r, params, 1);
}

static int communities_reject(request_rec *r, apr_table_t *params)
{
    return decide_request(r, params, 0);
}

/* ---------------------------------------------------------------- invitations */

static int communities_invite(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"user_id", NULL};
    const bl_user *user;
    community_access acc;
    member_target t;
    json_object *body;
    const char *args[4], *uid = NULL, *err = NULL;
    ap_dbd_t *db;
    int n;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0
        || community_require_moderator(r, &acc) != 0 || !(body = bl_read_json(r))
        || community_refuse_unknown(r, body, allowed) != 0)
        return OK;
    if (bl_json_get_string(r->pool, body, "user_id", BL_REQUIRED, 36, 36, &uid, &err)
        != BL_FIELD_OK || !bl_valid_uuid(uid))
        return bl_send_validation_error(r, "user_id", err ? err : "user_id must be a UUID");
    if (load_target(r, db, acc.id, uid, &t) != 0)
        return OK;
    if (!t.exists)
        return community_not_found(r, "user");
    if (t.role)
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT, "the user is a member already",
                             NULL);
    if (t.banned)
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                             "the user is banned from this community", NULL);
    args[0] = acc.id;
    args[1] = uid;
    args[2] = user->id;
    args[3] = user->role;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if ((n = bl_db_exec(r, db, SQL_INVITE, 4, args)) < 0)
        return bl_db_rollback(r, db), OK;
    if (n == 1 && community_notify(r, db, uid, "community.invitation",
                                   apr_pstrcat(r->pool, "You're invited to ", acc.name, NULL),
                                   apr_pstrcat(r->pool, "A moderator invited you to join ",
                                               acc.name, ".", NULL),
                                   community_data(r, &acc)) != 0) {
        bl_db_rollback(r, db);
        return bl_send_unavailable(r, "database");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, n == 1 ? HTTP_CREATED : HTTP_OK,
                        n == 1 ? "invitation sent" : "invited already",
                        apr_psprintf(r->pool, "{\"community_id\":\"%s\",\"user_id\":\"%s\"}",
                                     acc.id, uid), NULL);
}

/* ---------------------------------------------------------------- members */

/* One page of a community's members or bans: the statement label takes
 * id, slug, viewer, viewer role, limit, offset and returns the total and
 * the page's JSON, or no row when the viewer may not read it (the
 * community gone, or the viewer demoted, meanwhile). The read rule comes
 * first, so a banned moderator hears why (CM_READS). */
static int send_community_list(request_rec *r, apr_table_t *params, const char *label,
                               int moderators_only)
{
    static const char *const allowed[] = {"page", "per_page", NULL};
    const bl_user *user;
    community_access acc;
    apr_table_t *q;
    const char *args[6];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;

    if (!(user = community_user(r)) || community_query(r, allowed, &q) != 0
        || bl_pagination_args(r, &page, &per_page) != 0 || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0
        || community_require_read(r, &acc) != 0
        || (moderators_only && community_require_moderator(r, &acc) != 0))
        return OK;
    args[0] = acc.id;
    args[1] = NULL;
    args[2] = user->id;
    args[3] = user->role;
    args[4] = apr_itoa(r->pool, per_page);
    args[5] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(res = bl_db_select(r, db, label, 6, args)))
        return OK;
    if (!(row = community_first_row(r, db, res)))
        return community_not_found(r, "community");
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 1),
                        bl_pagination_meta(r, page, per_page,
                                           apr_atoi64(bl_db_get(r, db, row, 0))));
}

static int communities_members(request_rec *r, apr_table_t *params)
{
    return send_community_list(r, params, SQL_MEMBERS, 0);
}

/* 1 when the acting user may touch the target (owners only by owners). */
static int may_touch(const community_access *acc, const char *target_role, const char *new_role)
{
    int actor_owner = acc->is_admin || is_role(acc->role, "owner");

    if (is_role(target_role, "owner") || is_role(new_role, "owner"))
        return actor_owner;
    return acc->can_moderate;
}

static int communities_set_role(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"role", NULL};
    const bl_user *user;
    community_access acc;
    member_target t;
    json_object *body;
    const char *args[5], *uid, *role = NULL, *err = NULL;
    ap_dbd_t *db;
    int n;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0
        || community_require_moderator(r, &acc) != 0 || !(uid = path_user(r, params))
        || !(body = bl_read_json(r)) || community_refuse_unknown(r, body, allowed) != 0)
        return OK;
    if (bl_json_get_enum(r->pool, body, "role", BL_REQUIRED, roles, &role, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "role", err);
    if (bl_db_begin(r, db) != 0 || lock_community(r, db, acc.id) != 0
        || load_target(r, db, acc.id, uid, &t) != 0)
        return bl_db_rollback(r, db), OK;
    if (!t.role) {
        bl_db_rollback(r, db);
        return community_not_found(r, "member");
    }
    if (!may_touch(&acc, t.role, role)) {
        bl_db_rollback(r, db);
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only an owner grants or changes the owner role", NULL);
    }
    args[0] = acc.id;
    args[1] = uid;
    args[2] = role;
    args[3] = user->id;
    args[4] = user->role;
    if ((n = bl_db_exec(r, db, SQL_SET_ROLE, 5, args)) < 0)
        return bl_db_rollback(r, db), OK;
    if (n == 0) {
        bl_db_rollback(r, db);
        return last_owner(r);
    }
    if (community_audit(r, db, "community.member_role", "community", acc.id,
                        apr_psprintf(r->pool, "{\"user_id\":\"%s\",\"before\":\"%s\","
                                     "\"after\":\"%s\"}", uid, t.role, role)) != 0)
        return bl_db_rollback(r, db), OK;
    if (bl_db_commit(r, db) != 0)
        return OK;
    return send_member(r, db, acc.id, uid, HTTP_OK, "role changed");
}

static int communities_remove_member(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"ban", NULL};
    const bl_user *user;
    community_access acc;
    member_target t;
    apr_table_t *q;
    const char *args[4], *uid, *ban = NULL;
    ap_dbd_t *db;
    int n = 0, banning;

    if (!(user = community_user(r)) || community_query(r, allowed, &q) != 0
        || community_query_bool(r, q, "ban", &ban) != 0 || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0
        || community_require_moderator(r, &acc) != 0 || !(uid = path_user(r, params)))
        return OK;
    banning = ban && strcmp(ban, "true") == 0;
    if (strcasecmp(uid, user->id) == 0)
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                             "to leave, use DELETE /communities/:id/leave", NULL);
    if (bl_db_begin(r, db) != 0 || lock_community(r, db, acc.id) != 0
        || load_target(r, db, acc.id, uid, &t) != 0)
        return bl_db_rollback(r, db), OK;
    if (!t.exists || (!t.role && !banning)) {
        bl_db_rollback(r, db);
        return community_not_found(r, "member");
    }
    if (t.role && !may_touch(&acc, t.role, NULL)) {
        bl_db_rollback(r, db);
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "a moderator cannot remove an owner", NULL);
    }
    args[0] = acc.id;
    args[1] = uid;
    args[2] = user->id;
    args[3] = user->role;
    if (t.role && (n = bl_db_exec(r, db, SQL_REMOVE, 4, args)) <= 0) {
        bl_db_rollback(r, db);
        return n < 0 ? OK : last_owner(r);
    }
    if (banning && bl_db_exec(r, db, SQL_BAN, 4, args) < 0)
        return bl_db_rollback(r, db), OK;
    if (community_audit(r, db, banning ? "community.member_banned" : "community.member_removed",
                        "community", acc.id,
                        apr_psprintf(r->pool, "{\"user_id\":\"%s\"}", uid)) != 0)
        return bl_db_rollback(r, db), OK;
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_no_content(r);
}

/* ---------------------------------------------------------------- bans */

static int communities_bans(request_rec *r, apr_table_t *params)
{
    return send_community_list(r, params, SQL_BANS, 1);
}

static int communities_lift_ban(request_rec *r, apr_table_t *params)
{
    user_action a;

    if (!begin_user_action(r, params, 1, SQL_UNBAN, "ban", &a))
        return OK;
    if (community_audit(r, a.db, "community.ban_lifted", "community", a.acc.id,
                        apr_psprintf(r->pool, "{\"user_id\":\"%s\"}", a.uid)) != 0)
        return bl_db_rollback(r, a.db), OK;
    if (bl_db_commit(r, a.db) != 0)
        return OK;
    return bl_send_no_content(r);
}

/* ---------------------------------------------------------------- account */

int community_account_deleted(request_rec *r, ap_dbd_t *db, const char *user_id)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, SQL_ACCOUNT_GONE, APR_HASH_KEY_STRING);
    const char *args[1] = {user_id};
    int nrows = 0, rv;

    if (!st) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_beautiful_community: %s is not prepared", SQL_ACCOUNT_GONE);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = apr_dbd_pquery(db->driver, r->pool, db->handle, &nrows, st, 1, args);
    if (rv != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_beautiful_community: %s failed: %s",
                      SQL_ACCOUNT_GONE, apr_dbd_error(db->driver, db->handle, rv));
        return HTTP_SERVICE_UNAVAILABLE;
    }
    return OK;
}

static const community_route routes[] = {
    {"POST", "/communities/:id/join", communities_join},
    {"DELETE", "/communities/:id/leave", communities_leave},
    {"GET", "/communities/:id/join-requests", communities_join_requests},
    {"POST", "/communities/:id/join-requests/:user_id/approve", communities_approve},
    {"POST", "/communities/:id/join-requests/:user_id/reject", communities_reject},
    {"POST", "/communities/:id/invitations", communities_invite},
    {"GET", "/communities/:id/members", communities_members},
    {"PUT", "/communities/:id/members/:user_id", communities_set_role},
    {"DELETE", "/communities/:id/members/:user_id", communities_remove_member},
    {"GET", "/communities/:id/bans", communities_bans},
    {"DELETE", "/communities/:id/bans/:user_id", communities_lift_ban},
    {NULL, NULL, NULL}
};

const community_part communities_membership_part = {"membership", routes, statements};
