/* Chat conversations: GET/POST /chat/conversations,
 * GET/PUT /chat/conversations/:id, POST /chat/conversations/:id/join and
 * POST /chat/conversations/:id/read.
 *
 * Every statement finds a conversation through the caller's
 * chat_participants row, so a non-participant gets "no row" and a 404 on
 * every route. A direct conversation is unique per pair (direct_key); a
 * group one belongs to a community and loses a member who leaves it (the
 * trigger of migration 0010). */
#include "chat_video.h"
#include "validate.h"

#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

/* Conversation c (with my participant row's last_read_at and is_muted
 * joined in) for viewer v (a uuid expression). Unread counts stop at 1000. */
#define CV_CONVERSATION(c, v) \
    "json_build_object('id', " c ".id, 'kind', " c ".kind, 'title', " c ".title, " \
    "'community_id', " c ".community_id, 'created_at', " CV_TS(c ".created_at") ", " \
    "'last_message_at', " CV_TS(c ".last_message_at") ", 'is_muted', " c ".is_muted, " \
    "'last_read_at', " CV_TS(c ".last_read_at") ", " \
    "'last_message', (SELECT " CV_MESSAGE("lm") "::json FROM chat_messages lm " \
    "  WHERE lm.conversation_id = " c ".id ORDER BY lm.created_at DESC, lm.id DESC LIMIT 1), " \
    "'unread_count', (SELECT count(*) FROM (SELECT 1 FROM chat_messages um " \
    "  WHERE um.conversation_id = " c ".id AND um.deleted_at IS NULL " \
    "  AND um.sender_id IS DISTINCT FROM " v " " \
    "  AND um.created_at > coalesce(" c ".last_read_at, '-infinity') LIMIT 1000) u), " \
    "'participants', (SELECT coalesce(json_agg(" CV_PERSON("pu") " ORDER BY pu.first_name, pu.id), " \
    "  '[]') FROM chat_participants op JOIN users pu ON pu.id = op.user_id " \
    "  WHERE op.conversation_id = " c ".id AND op.user_id <> " v "))"

#define SQL_LIST "chat_conversations_list"
#define SQL_GET "chat_conversation_get"
#define SQL_TARGET "chat_direct_target"
#define SQL_DIRECT_INSERT "chat_direct_insert"
#define SQL_DIRECT_FIND "chat_direct_find"
#define SQL_GROUP_ROLE "chat_group_role"
#define SQL_GROUP_INSERT "chat_group_insert"
#define SQL_JOIN_CHECK "chat_join_check"
#define SQL_JOIN "chat_join"
#define SQL_MUTE "chat_mute"
#define SQL_LOCK "chat_conversation_lock"
#define SQL_READ "chat_read"

static const bl_statement conversation_statements[] = {
    /* me, per_page, offset */
    {SQL_LIST,
     "WITH mine AS (SELECT p.conversation_id, p.last_read_at, p.is_muted, p.user_id "
     "  FROM chat_participants p WHERE p.user_id = %s::uuid), "
     "page AS (SELECT c.id, c.kind, c.title, c.community_id, c.created_at, c.last_message_at, "
     "  mine.last_read_at, mine.is_muted, mine.user_id AS viewer "
     "  FROM mine JOIN chat_conversations c ON c.id = mine.conversation_id "
     "  ORDER BY coalesce(c.last_message_at, c.created_at) DESC, c.id DESC "
     "  LIMIT %s::int OFFSET %s::int) "
     "SELECT json_build_object('total', (SELECT count(*) FROM mine), 'items', "
     "  coalesce((SELECT json_agg(" CV_CONVERSATION("pg", "pg.viewer")
     "   ORDER BY coalesce(pg.last_message_at, pg.created_at) DESC, pg.id DESC) FROM page pg), "
     "  '[]'::json))::text"},
    /* conversation, me */
    {SQL_GET,
     "SELECT " CV_CONVERSATION("x", "x.viewer") "::text FROM "
     "(SELECT c.*, p.last_read_at, p.is_muted, p.user_id AS viewer FROM chat_conversations c "
     " JOIN chat_participants p ON p.conversation_id = c.id AND p.user_id = %s::uuid "
     " WHERE c.id = %s::uuid) x"},
    /* The direct pair rule: the other user exists (active) and shares a
     * community or a live medical-record share with me. me, other, me,
     * other, other, me */
    {SQL_TARGET,
     "SELECT EXISTS (SELECT 1 FROM users u WHERE u.id = t.other AND u.is_active "
     "  AND u.deleted_at IS NULL), "
     " EXISTS (SELECT 1 FROM community_members a JOIN community_members b "
     "  ON b.community_id = a.community_id WHERE a.user_id = t.me AND b.user_id = t.other) "
     " OR EXISTS (SELECT 1 FROM medical_record_shares s JOIN medical_records mr "
     "  ON mr.id = s.record_id WHERE s.revoked_at IS NULL AND s.expires_at > now() "
     "  AND mr.deleted_at IS NULL AND ((mr.owner_id = t.me AND s.shared_with_id = t.other) "
     "  OR (mr.owner_id = t.other AND s.shared_with_id = t.me))) "
     "FROM (SELECT %s::uuid AS me, %s::uuid AS other) t"},
    /* direct_key, me, me, other: the new conversation's id, or no row when
     * the pair has one already. */
    {SQL_DIRECT_INSERT,
     "WITH ins AS (INSERT INTO chat_conversations (kind, direct_key, created_by) "
     "  VALUES ('direct', %s, %s::uuid) "
     "  ON CONFLICT (direct_key) WHERE direct_key IS NOT NULL DO NOTHING RETURNING id), "
     "parts AS (INSERT INTO chat_participants (conversation_id, user_id) "
     "  SELECT ins.id, u FROM ins CROSS JOIN unnest(ARRAY[%s::uuid, %s::uuid]) u) "
     "SELECT id FROM ins"},
    {SQL_DIRECT_FIND,
     "SELECT id FROM chat_conversations WHERE direct_key = %s"},
    /* community, me: my role there (no row: not a member) */
    {SQL_GROUP_ROLE,
     "SELECT role FROM community_members WHERE community_id = %s::uuid AND user_id = %s::uuid"},
    /* community, title, me, me */
    {SQL_GROUP_INSERT,
     "WITH ins AS (INSERT INTO chat_conversations (kind, community_id, title, created_by) "
     "  VALUES ('group', %s::uuid, btrim(%s), %s::uuid) RETURNING id), "
     "parts AS (INSERT INTO chat_participants (conversation_id, user_id) "
     "  SELECT id, %s::uuid FROM ins) "
     "SELECT id FROM ins"},
    /* conversation, me: a group chat of a community I belong to, and
     * whether I am in it already */
    {SQL_JOIN_CHECK,
     "SELECT EXISTS (SELECT 1 FROM chat_participants p WHERE p.conversation_id = c.id "
     "  AND p.user_id = m.user_id) "
     "FROM chat_conversations c JOIN community_members m ON m.community_id = c.community_id "
     "WHERE c.id = %s::uuid AND m.user_id = %s::uuid AND c.kind = 'group'"},
    /* conversation, me */
    {SQL_JOIN,
     "INSERT INTO chat_participants (conversation_id, user_id) VALUES (%s::uuid, %s::uuid) "
     "ON CONFLICT DO NOTHING"},
    /* muted, conversation, me */
    {SQL_MUTE,
     "UPDATE chat_participants SET is_muted = %s::boolean "
     "WHERE conversation_id = %s::uuid AND user_id = %s::uuid"},
    /* conversation, me: the conversation's row lock, taken first by every
     * write (a fixed order: no deadlock with a message being sent). */
    {SQL_LOCK,
     "SELECT c.id FROM chat_conversations c WHERE c.id = %s::uuid AND EXISTS "
     "(SELECT 1 FROM chat_participants p WHERE p.conversation_id = c.id AND p.user_id = %s::uuid) "
     "FOR UPDATE OF c"},
    /* conversation, me, message: moves my marker forward to the message
     * and logs a read event. Returns whether the message is in the
     * conversation and the event's number (NULL when the marker did not
     * move). */
    {SQL_READ,
     "WITH a AS (SELECT %s::uuid AS conv, %s::uuid AS me, %s::uuid AS msg), "
     "m AS (SELECT cm.created_at FROM a JOIN chat_messages cm ON cm.id = a.msg "
     "  AND cm.conversation_id = a.conv), "
     "upd AS (UPDATE chat_participants p SET last_read_at = m.created_at FROM a, m "
     "  WHERE p.conversation_id = a.conv AND p.user_id = a.me "
     "  AND (p.last_read_at IS NULL OR p.last_read_at < m.created_at) RETURNING p.last_read_at), "
     "seq AS (UPDATE chat_conversations c SET event_seq = c.event_seq + 1 FROM a, upd "
     "  WHERE c.id = a.conv RETURNING c.event_seq, upd.last_read_at), "
     "ev AS (INSERT INTO chat_events (conversation_id, seq, type, user_id, read_up_to) "
     "  SELECT a.conv, seq.event_seq, 'read', a.me, seq.last_read_at FROM a, seq) "
     "SELECT EXISTS (SELECT 1 FROM m), (SELECT event_seq::text FROM seq), "
     " (SELECT json_build_object('conversation_id', a.conv, 'user_id', a.me, "
     "  'last_read_at', " CV_TS("seq.last_read_at") ")::text FROM a, seq)"},
    {NULL, NULL}
};

/* ---------------------------------------------------------------- helpers */

/* Answers with conversation id as the caller sees it (404 when they are
 * not in it). */
static int send_conversation(request_rec *r, ap_dbd_t *db, int status, const char *message,
                             const char *me, const char *id)
{
    const char *args[2] = {me, id};
    const char *json;

    if (bl_db_value(r, db, SQL_GET, 2, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return cv_not_found(r, "conversation");
    return bl_send_data(r, status, message, json, NULL);
}

/* ---------------------------------------------------------------- routes */

static int chat_list_conversations(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"page", "per_page", NULL};
    const bl_user *user = cv_user(r);
    apr_table_t *q;
    ap_dbd_t *db;
    int page, per_page;
    const char *args[3], *json;
    json_object *obj, *total, *items;

    if (!user || cv_query(r, allowed, &q) || bl_pagination_args(r, &page, &per_page))
        return OK;
    if (!(db = cv_db(r)))
        return OK;
    args[0] = user->id;
    args[1] = apr_itoa(r->pool, per_page);
    args[2] = apr_itoa(r->pool, (page - 1) * per_page);
    if (bl_db_value(r, db, SQL_LIST, 3, args, &json) != APR_SUCCESS)
        return OK;
    obj = json ? json_tokener_parse(json) : NULL;
    if (!obj || !json_object_object_get_ex(obj, "total", &total) ||
        !json_object_object_get_ex(obj, "items", &items)) {
        if (obj)
            json_object_put(obj);
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL, "Internal error",
                             NULL);
    }
    {
        const char *items_json = apr_pstrdup(r->pool, json_object_to_json_string_ext(
                                                          items, JSON_C_TO_STRING_PLAIN));
        long n = (long)json_object_get_int64(total);
        json_object_put(obj);
        return bl_send_data(r, HTTP_OK, NULL, items_json,
                            bl_pagination_meta(r, page, per_page, n));
    }
}

/* {kind: "direct", user_id} */
static int create_direct(request_rec *r, ap_dbd_t *db, const bl_user *user, json_object *body)
{
    const char *other, *err, *cols[2], *args[4], *key, *id;
    int found;

    if (bl_json_get_string(r->pool, body, "user_id", BL_REQUIRED, 36, 36, &other, &err)
        != BL_FIELD_OK || !bl_valid_uuid(other))
        return bl_send_validation_error(r, "user_id", "user_id must be a user id");
    if (json_object_object_get_ex(body, "community_id", NULL) ||
        json_object_object_get_ex(body, "title", NULL))
        return bl_send_validation_error(r, "kind",
                                        "a direct conversation takes only user_id");
    other = apr_pstrdup(r->pool, other);
    for (char *c = (char *)other; *c; c++)
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a');
    if (!strcmp(other, user->id))
        return bl_send_validation_error(r, "user_id", "a conversation needs someone else");

    args[0] = user->id;
    args[1] = other;
    if ((found = cv_select_row(r, db, SQL_TARGET, 2, args, 2, cols)) < 0)
        return OK;
    if (!found || !cv_is_true(cols[0]))
        return cv_not_found(r, "user");
    if (!cv_is_true(cols[1]))
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "you can message people who share a community or a medical "
                             "record with you", NULL);

    key = strcmp(user->id, other) < 0 ? apr_pstrcat(r->pool, user->id, ":", other, NULL)
                                      : apr_pstrcat(r->pool, other, ":", user->id, NULL);
    args[0] = key;
    args[1] = user->id;
    args[2] = user->id;
    args[3] = other;
    if ((found = cv_select_row(r, db, SQL_DIRECT_INSERT, 4, args, 1, &id)) < 0)
        return OK;
    if (found)
        return send_conversation(r, db, HTTP_CREATED, "conversation created", user->id, id);
    /* The pair has one (perhaps created a moment ago by a concurrent
     * request, now committed): the same conversation again. */
    if ((found = cv_select_row(r, db, SQL_DIRECT_FIND, 1, &key, 1, &id)) < 0)
        return OK;
    if (!found)
        return bl_send_unavailable(r, "database");
    return send_conversation(r, db, HTTP_OK, "existing conversation", user->id, id);
}

/* {kind: "group", community_id, title} */
static int create_group(request_rec *r, ap_dbd_t *db, const bl_user *user, json_object *body)
{
    const char *community, *title, *err, *role, *args[4], *id;
    int found;

    if (json_object_object_get_ex(body, "user_id", NULL))
        return bl_send_validation_error(r, "user_id",
                                        "a group conversation takes community_id and title");
    if (bl_json_get_string(r->pool, body, "community_id", BL_REQUIRED, 36, 36, &community,
                           &err) != BL_FIELD_OK || !bl_valid_uuid(community))
        return bl_send_validation_error(r, "community_id", "community_id must be a community id");
    if (bl_json_get_string(r->pool, body, "title", BL_REQUIRED, 1, 200, &title, &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "title", err);
    if (!cv_has_text(title))
        return bl_send_validation_error(r, "title", "title must not be blank");

    args[0] = community;
    args[1] = user->id;
    if ((found = cv_select_row(r, db, SQL_GROUP_ROLE, 2, args, 1, &role)) < 0)
        return OK;
    /* Members only learn of the community here. */
    if (!found)
        return cv_not_found(r, "community");
    if (strcmp(role, "moderator") && strcmp(role, "owner"))
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only the community's moderators create group chats", NULL);
    args[0] = community;
    args[1] = title;
    args[2] = user->id;
    args[3] = user->id;
    if ((found = cv_select_row(r, db, SQL_GROUP_INSERT, 4, args, 1, &id)) <= 0)
        return found < 0 ? OK : bl_send_unavailable(r, "database");
    return send_conversation(r, db, HTTP_CREATED, "conversation created", user->id, id);
}

static int chat_create_conversation(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"kind", "user_id", "community_id", "title", NULL};
    static const char *const kinds[] = {"direct", "group", NULL};
    const bl_user *user = cv_user(r);
    json_object *body;
    const char *kind, *err;
    ap_dbd_t *db;

    if (!user || !(body = cv_read_body(r, allowed)))
        return OK;
    if (bl_json_get_enum(r->pool, body, "kind", BL_REQUIRED, kinds, &kind, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "kind", err);
    if (!(db = cv_db(r)))
        return OK;
    return !strcmp(kind, "direct") ? create_direct(r, db, user, body)
                                   : create_group(r, db, user, body);
}

static int chat_get_conversation(request_rec *r, apr_table_t *params)
{
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id");
    ap_dbd_t *db;

    if (!user || cv_path_id(r, id, "conversation") || !(db = cv_db(r)))
        return OK;
    return send_conversation(r, db, HTTP_OK, NULL, user->id, id);
}

/* PUT {is_muted} */
static int chat_update_conversation(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"is_muted", NULL};
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *err, *args[3];
    json_object *body;
    ap_dbd_t *db;
    int muted, n;

    if (!user || cv_path_id(r, id, "conversation") || !(body = cv_read_body(r, allowed)))
        return OK;
    if (bl_json_get_bool(r->pool, body, "is_muted", BL_REQUIRED, &muted, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "is_muted", err);
    if (!(db = cv_db(r)))
        return OK;
    args[0] = muted ? "true" : "false";
    args[1] = id;
    args[2] = user->id;
    if ((n = bl_db_exec(r, db, SQL_MUTE, 3, args)) < 0)
        return OK;
    if (n == 0)
        return cv_not_found(r, "conversation");
    return send_conversation(r, db, HTTP_OK, muted ? "muted" : "unmuted", user->id, id);
}

static int chat_join_conversation(request_rec *r, apr_table_t *params)
{
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *args[2], *already;
    ap_dbd_t *db;
    int found;

    if (!user || cv_path_id(r, id, "conversation") || !(db = cv_db(r)))
        return OK;
    args[0] = id;
    args[1] = user->id;
    if ((found = cv_select_row(r, db, SQL_JOIN_CHECK, 2, args, 1, &already)) < 0)
        return OK;
    if (!found)
        return cv_not_found(r, "conversation");
    if (!cv_is_true(already) && bl_db_exec(r, db, SQL_JOIN, 2, args) < 0)
        return OK;
    return send_conversation(r, db, cv_is_true(already) ? HTTP_OK : HTTP_CREATED,
                             cv_is_true(already) ? "already a participant" : "joined",
                             user->id, id);
}

/* POST {up_to: <message id>} */
static int chat_read_conversation(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"up_to", NULL};
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *up_to, *err, *args[3], *cols[3], *locked;
    json_object *body;
    ap_dbd_t *db;
    int found;

    if (!user || cv_path_id(r, id, "conversation") || !(body = cv_read_body(r, allowed)))
        return OK;
    if (bl_json_get_string(r->pool, body, "up_to", BL_REQUIRED, 36, 36, &up_to, &err)
        != BL_FIELD_OK || !bl_valid_uuid(up_to))
        return bl_send_validation_error(r, "up_to", "up_to must be a message id");
    if (!(db = cv_db(r)) || bl_db_begin(r, db))
        return OK;
    args[0] = id;
    args[1] = user->id;
    if ((found = cv_select_row(r, db, SQL_LOCK, 2, args, 1, &locked)) <= 0) {
        bl_db_rollback(r, db);
        return found < 0 ? OK : cv_not_found(r, "conversation");
    }
    args[2] = up_to;
    if ((found = cv_select_row(r, db, SQL_READ, 3, args, 3, cols)) <= 0) {
        bl_db_rollback(r, db);
        return found < 0 ? OK : bl_send_unavailable(r, "database");
    }
    if (!cv_is_true(cols[0])) {
        bl_db_rollback(r, db);
        return cv_not_found(r, "message in this conversation");
    }
    if (bl_db_commit(r, db))
        return OK;
    if (cols[1])
        chat_publish(r, id, cols[1], "read", cols[2]);
    return send_conversation(r, db, HTTP_OK, "read marker moved", user->id, id);
}

static const community_route conversation_routes[] = {
    {"GET", "/chat/conversations", chat_list_conversations},
    {"POST", "/chat/conversations", chat_create_conversation},
    {"GET", "/chat/conversations/:id", chat_get_conversation},
    {"PUT", "/chat/conversations/:id", chat_update_conversation},
    {"POST", "/chat/conversations/:id/join", chat_join_conversation},
    {"POST", "/chat/conversations/:id/read", chat_read_conversation},
    {NULL, NULL, NULL}
};

const community_part chat_conversations_part = {
    "chat conversations", conversation_routes, conversation_statements
};
