/* Chat messages: GET/POST /chat/conversations/:id/messages,
 * PUT/DELETE /chat/messages/:id.
 *
 * Every write takes the conversation's row lock first (bumping its event
 * number), then changes the message and logs the event in the same
 * transaction, so the live streams and their Last-Event-ID resume see
 * events in commit order. Sending also queues the coalesced chat.message
 * notifications of participants who are neither muted nor connected. */
#include "chat_video.h"
#include "validate.h"

#include <http_protocol.h>
#include <apr_strings.h>

#include <ctype.h>
#include <string.h>

#define DEFAULT_LIMIT 50
#define MAX_LIMIT 100
#define EDIT_WINDOW "15 minutes"

#define SQL_PAGE "chat_messages_page"
#define SQL_PAGE_BEFORE "chat_messages_page_before"
#define SQL_SEND_LOCK "chat_message_send_lock"
#define SQL_INSERT "chat_message_insert"
#define SQL_NOTIFY_CLAIM "chat_message_notify_claim"
#define SQL_MESSAGE_LOCK "chat_message_lock"
#define SQL_EDIT "chat_message_edit"
#define SQL_DELETE "chat_message_delete"

/* A page of messages, newest first, walked by (created_at, id) on the
 * index (conversation_id, created_at DESC, id DESC), in one pass: the
 * participant check is the outer row (no row: not mine), the page is
 * aggregated once. The scan's LIMIT is a constant (MAX_LIMIT + 1) and the
 * page size only a filter, so PostgreSQL settles on one generic plan after
 * five executions instead of planning the month partitions every time; a
 * cursor also bounds created_at, so that plan still prunes the partitions
 * newer than the cursor when it runs. Parameters, in order: limit x3,
 * conversation, the cursor's (microseconds x2, id) when there is one,
 * limit, conversation, me. */
#define PAGE_SQL(cursor_cond) \
    "SELECT (SELECT '{\"items\":[' || coalesce(string_agg(" CV_MESSAGE("p") ", ',' " \
    "    ORDER BY p.rn) FILTER (WHERE p.rn <= %s::int), '') || '],\"next_cursor\":' || " \
    "  CASE WHEN count(*) > %s::int " \
    "    THEN '\"' || min(" CV_CURSOR("p") ") FILTER (WHERE p.rn = %s::int) || '\"' " \
    "    ELSE 'null' END || '}' " \
    "  FROM (SELECT m.*, row_number() OVER (ORDER BY m.created_at DESC, m.id DESC) AS rn " \
    "    FROM chat_messages m WHERE m.conversation_id = %s::uuid " cursor_cond \
    "    ORDER BY m.created_at DESC, m.id DESC LIMIT " PAGE_SCAN_ROWS ") p " \
    "  WHERE p.rn <= %s::int + 1) " \
    "FROM chat_participants WHERE conversation_id = %s::uuid AND user_id = %s::uuid"
#define CURSOR_TIME "(timestamptz 'epoch' + %s::bigint * interval '1 microsecond')"
#define STRINGIFY(x) #x
#define NUMBER_TEXT(x) STRINGIFY(x)
/* A full page and the one row that tells whether there is a next. */
#define PAGE_SCAN_ROWS NUMBER_TEXT(MAX_LIMIT) " + 1"

/* The event number and, for edits and deletes, the message's state. */
static const bl_statement message_statements[] = {
    {SQL_PAGE, PAGE_SQL("")},
    {SQL_PAGE_BEFORE,
     PAGE_SQL("    AND m.created_at <= " CURSOR_TIME " "
              "    AND (m.created_at, m.id) < (" CURSOR_TIME ", %s::uuid) ")},
    /* conversation, me: locks the conversation, bumps its event number */
    {SQL_SEND_LOCK,
     "UPDATE chat_conversations c SET event_seq = c.event_seq + 1, last_message_at = now() "
     "WHERE c.id = %s::uuid AND EXISTS (SELECT 1 FROM chat_participants p "
     "  WHERE p.conversation_id = c.id AND p.user_id = %s::uuid) RETURNING c.event_seq::text"},
    /* conversation, me, body, event number: the message; the sender has
     * read their own message. */
    {SQL_INSERT,
     "WITH a AS (SELECT %s::uuid AS conv, %s::uuid AS me, %s::text AS body, %s::bigint AS seq), "
     "msg AS (INSERT INTO chat_messages (conversation_id, sender_id, body) "
     "  SELECT conv, me, body FROM a RETURNING *), "
     "ev AS (INSERT INTO chat_events (conversation_id, seq, type, message_id, message_created_at) "
     "  SELECT a.conv, a.seq, 'message.created', msg.id, msg.created_at FROM a, msg), "
     "rd AS (UPDATE chat_participants p SET last_read_at = msg.created_at FROM a, msg "
     "  WHERE p.conversation_id = a.conv AND p.user_id = a.me) "
     "SELECT " CV_MESSAGE("msg") " FROM msg"},
    /* conversation, me, coalescing window (microseconds), connected users
     * (uuid[] text): marks and returns who gets a notification now, with
     * the text it says (never the message itself). */
    {SQL_NOTIFY_CLAIM,
     "WITH a AS (SELECT %s::uuid AS conv, %s::uuid AS me, "
     "  %s::bigint * interval '1 microsecond' AS gap, %s::uuid[] AS online), "
     "t AS (SELECT CASE WHEN c.kind = 'group' THEN 'New messages in ' || c.title "
     "  ELSE 'New messages from ' || coalesce(nullif(btrim(concat_ws(' ', u.first_name, "
     "  u.last_name)), ''), 'a member') END AS title, c.id "
     "  FROM a JOIN chat_conversations c ON c.id = a.conv LEFT JOIN users u ON u.id = a.me) "
     "UPDATE chat_participants p SET notified_at = now() FROM a, t "
     "WHERE p.conversation_id = a.conv AND p.user_id <> a.me AND NOT p.is_muted "
     "  AND NOT (p.user_id = ANY (a.online)) "
     "  AND (p.notified_at IS NULL OR p.notified_at <= now() - a.gap) "
     "RETURNING p.user_id::text, t.title"},
    /* message, me, now: locks the message's conversation (bumping its event
     * number) when I am in it; whether the message is mine, deleted, still
     * editable, and its partition key. */
    {SQL_MESSAGE_LOCK,
     "WITH a AS (SELECT %s::uuid AS msg, %s::uuid AS me, %s::timestamptz AS now), "
     "m AS (SELECT cm.conversation_id, cm.created_at, cm.sender_id, cm.deleted_at "
     "  FROM a JOIN chat_messages cm ON cm.id = a.msg JOIN chat_participants p "
     "  ON p.conversation_id = cm.conversation_id AND p.user_id = a.me) "
     "UPDATE chat_conversations c SET event_seq = c.event_seq + 1 FROM m, a "
     "WHERE c.id = m.conversation_id "
     "RETURNING c.id::text, c.event_seq::text, (m.sender_id = a.me)::text, "
     "  (m.deleted_at IS NOT NULL)::text, "
     "  (m.created_at > a.now - interval '" EDIT_WINDOW "')::text, m.created_at::text"},
    /* message, created_at, body, conversation, event number */
    {SQL_EDIT,
     "WITH a AS (SELECT %s::uuid AS msg, %s::timestamptz AS at, %s::text AS body, "
     "  %s::uuid AS conv, %s::bigint AS seq), "
     "up AS (UPDATE chat_messages m SET body = a.body, edited_at = now() FROM a "
     "  WHERE m.id = a.msg AND m.created_at = a.at RETURNING m.*), "
     "ev AS (INSERT INTO chat_events (conversation_id, seq, type, message_id, message_created_at) "
     "  SELECT a.conv, a.seq, 'message.edited', a.msg, a.at FROM a) "
     "SELECT " CV_MESSAGE("up") " FROM up"},
    /* message, created_at, conversation, event number: the tombstone */
    {SQL_DELETE,
     "WITH a AS (SELECT %s::uuid AS msg, %s::timestamptz AS at, %s::uuid AS conv, "
     "  %s::bigint AS seq), "
     "up AS (UPDATE chat_messages m SET body = '', deleted_at = now() FROM a "
     "  WHERE m.id = a.msg AND m.created_at = a.at RETURNING m.*), "
     "ev AS (INSERT INTO chat_events (conversation_id, seq, type, message_id, message_created_at) "
     "  SELECT a.conv, a.seq, 'message.deleted', a.msg, a.at FROM a) "
     "SELECT " CV_MESSAGE("up") " FROM up"},
    {NULL, NULL}
};

/* ---------------------------------------------------------------- input */

/* A cursor "<microseconds>_<uuid>" into its two parts; -1 after answering 400. */
static int parse_cursor(request_rec *r, const char *cursor, const char **micros,
                        const char **id)
{
    const char *us = strchr(cursor, '_');
    size_t n = us ? (size_t)(us - cursor) : 0;
    size_t i;

    if (!us || n < 1 || n > 18 || !bl_valid_uuid(us + 1))
        goto bad;
    for (i = 0; i < n; i++)
        if (!isdigit((unsigned char)cursor[i]))
            goto bad;
    *micros = apr_pstrndup(r->pool, cursor, n);
    *id = us + 1;
    return 0;
bad:
    bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION, "before is not a valid cursor",
                  "query: before");
    return -1;
}

static int parse_limit(request_rec *r, const char *text, int *limit)
{
    char *end;
    long v;

    *limit = DEFAULT_LIMIT;
    if (!text)
        return 0;
    v = strtol(text, &end, 10);
    if (!*text || *end || v < 1 || v > MAX_LIMIT) {
        bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                      "limit must be a number from 1 to 100", "query: limit");
        return -1;
    }
    *limit = (int)v;
    return 0;
}

/* The "body" field: 1 to 4000 characters, not only white space. */
static const char *read_message_body(request_rec *r)
{
    static const char *const allowed[] = {"body", NULL};
    json_object *obj = cv_read_body(r, allowed);
    const char *body, *err;

    if (!obj)
        return NULL;
    if (bl_json_get_string(r->pool, obj, "body", BL_REQUIRED, 1, 4000, &body, &err)
        != BL_FIELD_OK) {
        bl_send_validation_error(r, "body", err);
        return NULL;
    }
    if (!cv_has_text(body)) {
        bl_send_validation_error(r, "body", "body must not be blank");
        return NULL;
    }
    return body;
}

/* ---------------------------------------------------------------- routes */

static int chat_list_messages(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"before", "limit", NULL};
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *before, *args[10], *json, *micros, *cid;
    const char *limit_text;
    apr_table_t *q;
    ap_dbd_t *db;
    int limit, n = 0;

    if (!user || cv_path_id(r, id, "conversation") || cv_query(r, allowed, &q) ||
        parse_limit(r, apr_table_get(q, "limit"), &limit))
        return OK;
    before = apr_table_get(q, "before");
    if (before && parse_cursor(r, before, &micros, &cid))
        return OK;
    if (!(db = cv_db(r)))
        return OK;
    limit_text = apr_itoa(r->pool, limit);
    for (int i = 0; i < 3; i++)
        args[n++] = limit_text;
    args[n++] = id;
    if (before) {
        args[n++] = micros;
        args[n++] = micros;
        args[n++] = cid;
    }
    args[n++] = limit_text;
    args[n++] = id;
    args[n++] = user->id;
    if (bl_db_value(r, db, before ? SQL_PAGE_BEFORE : SQL_PAGE, n, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return cv_not_found(r, "conversation");
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}

/* Queues the coalesced notifications of this message, in its transaction.
 * Returns 0, or -1 after answering. */
static int queue_notifications(request_rec *r, ap_dbd_t *db, const char *conv,
                               const char *me)
{
    const chat_video_conf *conf = chat_video_config();
    const char *args[4], *data;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;

    args[0] = conv;
    args[1] = me;
    args[2] = apr_psprintf(r->pool, "%" APR_TIME_T_FMT, conf->notify_coalesce);
    args[3] = chat_connected_users(r, conv);
    if (!(res = bl_db_select(r, db, SQL_NOTIFY_CLAIM, 4, args)))
        return -1;
    data = apr_psprintf(r->pool, "{\"conversation_id\":\"%s\"}", conv);
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        const char *user_id = bl_db_get(r, db, row, 0);
        const char *title = bl_db_get(r, db, row, 1);

        if (bl_outbox_add(r, db, user_id, "push", "chat.message", title,
                          "Open the conversation to read them.", data) ||
            bl_outbox_add(r, db, user_id, "in_app", "chat.message", title,
                          "Open the conversation to read them.", data)) {
            bl_send_unavailable(r, "database");
            return -1;
        }
    }
    return 0;
}

static int chat_send_message(request_rec *r, apr_table_t *params)
{
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *body, *args[4], *seq, *json;
    ap_dbd_t *db;
    int found;

    if (!user || cv_path_id(r, id, "conversation") || !(body = read_message_body(r)))
        return OK;
    if (!(db = cv_db(r)) || bl_db_begin(r, db))
        return OK;
    args[0] = id;
    args[1] = user->id;
    if ((found = cv_select_row(r, db, SQL_SEND_LOCK, 2, args, 1, &seq)) <= 0) {
        bl_db_rollback(r, db);
        return found < 0 ? OK : cv_not_found(r, "conversation");
    }
    args[2] = body;
    args[3] = seq;
    if ((found = cv_select_row(r, db, SQL_INSERT, 4, args, 1, &json)) <= 0) {
        bl_db_rollback(r, db);
        return found < 0 ? OK : bl_send_unavailable(r, "database");
    }
    if (queue_notifications(r, db, id, user->id)) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db))
        return OK;
    chat_publish(r, id, seq, "message.created", json);
    return bl_send_data(r, HTTP_CREATED, "message sent", json, NULL);
}

/* Locks the message's conversation for an edit or delete by user. Returns
 * 1 with cols (conversation, event number, mine, deleted, editable,
 * created_at) inside an open transaction; 0 after answering 404 (rolled
 * back); -1 after answering otherwise. */
static int lock_message(request_rec *r, ap_dbd_t *db, const bl_user *user, const char *id,
                        const char **cols)
{
    const char *args[3] = {id, user->id, cv_now_param(r)};
    int found;

    if (bl_db_begin(r, db))
        return -1;
    if ((found = cv_select_row(r, db, SQL_MESSAGE_LOCK, 3, args, 6, cols)) <= 0) {
        bl_db_rollback(r, db);
        if (found == 0)
            cv_not_found(r, "message");
        return found;
    }
    return 1;
}

static int chat_edit_message(request_rec *r, apr_table_t *params)
{
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *body, *cols[6], *args[5], *json;
    ap_dbd_t *db;
    int found;

    if (!user || cv_path_id(r, id, "message") || !(body = read_message_body(r)) ||
        !(db = cv_db(r)))
        return OK;
    if (lock_message(r, db, user, id, cols) <= 0)
        return OK;
    if (!cv_is_true(cols[2]) || cv_is_true(cols[3]) || !cv_is_true(cols[4])) {
        bl_db_rollback(r, db);
        if (!cv_is_true(cols[2]))
            return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                                 "only its sender edits a message", NULL);
        if (cv_is_true(cols[3]))
            return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                                 "the message was deleted", NULL);
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "a message can be edited for " EDIT_WINDOW " after it is sent",
                             NULL);
    }
    args[0] = id;
    args[1] = cols[5];
    args[2] = body;
    args[3] = cols[0];
    args[4] = cols[1];
    if ((found = cv_select_row(r, db, SQL_EDIT, 5, args, 1, &json)) <= 0) {
        bl_db_rollback(r, db);
        return found < 0 ? OK : bl_send_unavailable(r, "database");
    }
    if (bl_db_commit(r, db))
        return OK;
    chat_publish(r, cols[0], cols[1], "message.edited", json);
    return bl_send_data(r, HTTP_OK, "message edited", json, NULL);
}

static int chat_delete_message(request_rec *r, apr_table_t *params)
{
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *cols[6], *args[4], *json;
    ap_dbd_t *db;
    int found;

    if (!user || cv_path_id(r, id, "message") || !(db = cv_db(r)))
        return OK;
    if (lock_message(r, db, user, id, cols) <= 0)
        return OK;
    if (!cv_is_true(cols[2]) || cv_is_true(cols[3])) {
        bl_db_rollback(r, db);
        if (!cv_is_true(cols[2]))
            return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                                 "only its sender deletes a message", NULL);
        return bl_send_no_content(r);    /* a tombstone already */
    }
    args[0] = id;
    args[1] = cols[5];
    args[2] = cols[0];
    args[3] = cols[1];
    if ((found = cv_select_row(r, db, SQL_DELETE, 4, args, 1, &json)) <= 0) {
        bl_db_rollback(r, db);
        return found < 0 ? OK : bl_send_unavailable(r, "database");
    }
    if (bl_db_commit(r, db))
        return OK;
    chat_publish(r, cols[0], cols[1], "message.deleted", json);
    return bl_send_no_content(r);
}

static const community_route message_routes[] = {
    {"GET", "/chat/conversations/:id/messages", chat_list_messages},
    {"POST", "/chat/conversations/:id/messages", chat_send_message},
    {"PUT", "/chat/messages/:id", chat_edit_message},
    {"DELETE", "/chat/messages/:id", chat_delete_message},
    {NULL, NULL, NULL}
};

const community_part chat_messages_part = {
    "chat messages", message_routes, message_statements
};
