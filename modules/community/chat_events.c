/* Chat live events: GET /chat/conversations/:id/events, a Server-Sent
 * Events stream (core's bl_stream_serve) of the conversation's new,
 * edited and deleted messages and read markers, from any host.
 *
 * Event ids are the conversation's event numbers (chat_events.seq), so a
 * client reconnecting with Last-Event-ID is sent what it missed from the
 * database. While a participant has a stream open on a conversation they
 * count as connected there, and new messages do not notify them.
 *
 * Presence is a sorted set per conversation: one member per open stream
 * ("<user id>:<random>"), scored with the time the stream must end by —
 * core ends a stream when the caller's access token expires — plus a
 * grace. A stream that ends removes its member; one whose child died
 * stops counting at that time, read by score, so at most one access-token
 * lifetime after the child went, at no cost to any other request. */
#include "chat_video.h"
#include "hmac.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

#define SQL_CAN_LISTEN "chat_events_can_listen"
#define SQL_RESUME "chat_events_resume"
#define RESUME_MAX "500"
/* Seconds a stream's presence outlasts its access token: the stream ends
 * within about a second of it, then removes its member. */
#define PRESENCE_GRACE 30

static const bl_statement event_statements[] = {
    /* conversation, me */
    {SQL_CAN_LISTEN,
     "SELECT 1 FROM chat_participants WHERE conversation_id = %s::uuid AND user_id = %s::uuid"},
    /* conversation, last event number: what came after it, oldest first;
     * a message event carries the message as it is now. */
    {SQL_RESUME,
     "SELECT e.seq::text, e.type::text, CASE WHEN e.type = 'read' THEN "
     "  json_build_object('conversation_id', e.conversation_id, 'user_id', e.user_id, "
     "  'last_read_at', " CV_TS("e.read_up_to") ")::text "
     "  ELSE " CV_MESSAGE("m") " END "
     "FROM chat_events e LEFT JOIN chat_messages m ON m.id = e.message_id "
     "  AND m.created_at = e.message_created_at "
     "WHERE e.conversation_id = %s::uuid AND e.seq > %s::bigint "
     "  AND (e.type = 'read' OR m.id IS NOT NULL) "
     "ORDER BY e.seq LIMIT " RESUME_MAX},
    {NULL, NULL}
};

static const char *channel_of(apr_pool_t *p, const char *conversation_id)
{
    return apr_pstrcat(p, "chat:", conversation_id, NULL);
}

static const char *presence_key(apr_pool_t *p, const char *conversation_id)
{
    return apr_pstrcat(p, "bl:chat:online:", conversation_id, NULL);
}

void chat_publish(request_rec *r, const char *conversation_id, const char *seq,
                  const char *type, const char *data_json)
{
    /* A failure is logged by core; the event still reaches clients by resume. */
    bl_stream_publish(r->server, r->pool, channel_of(r->pool, conversation_id), seq, type,
                      data_json);
}

const char *chat_connected_users(request_rec *r, const char *conversation_id)
{
    const char *argv[4] = {"ZRANGEBYSCORE", presence_key(r->pool, conversation_id),
                           apr_psprintf(r->pool, "%" APR_TIME_T_FMT,
                                        apr_time_sec(apr_time_now())), "+inf"};
    redisReply *reply = bl_redis_command(r, 4, argv, NULL);
    const char *list = "";
    size_t i;

    /* Redis away: nobody counts as connected, so everyone is notified. */
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return "{}";
    for (i = 0; i < reply->elements; i++) {
        const redisReply *member = reply->element[i];

        if (member->type == REDIS_REPLY_STRING && member->len > 36 && member->str[36] == ':')
            list = apr_pstrcat(r->pool, list, *list ? "," : "",
                               apr_pstrndup(r->pool, member->str, 36), NULL);
    }
    return apr_pstrcat(r->pool, "{", list, "}", NULL);
}

/* Counts this stream in the participant's presence on the conversation
 * until user's access token expires; returns its member, for
 * presence_leave, or NULL when Redis is away (then nobody counts as
 * connected). Members past their time are dropped on the way. */
static const char *presence_join(request_rec *r, const char *conversation_id,
                                 const bl_user *user)
{
    const char *key = presence_key(r->pool, conversation_id);
    apr_time_t now = apr_time_sec(apr_time_now());
    apr_time_t until = apr_time_sec(user->expires) + PRESENCE_GRACE;
    unsigned char nonce[8];
    const char *member, *add[4], *prune[4], *expire[3];
    redisReply *reply;

    if (apr_generate_random_bytes(nonce, sizeof nonce) != APR_SUCCESS)
        return NULL;
    member = apr_pstrcat(r->pool, user->id, ":", bl_hex(r->pool, nonce, sizeof nonce), NULL);
    add[0] = "ZADD", add[1] = key;
    add[2] = apr_psprintf(r->pool, "%" APR_TIME_T_FMT, until), add[3] = member;
    if (!(reply = bl_redis_command(r, 4, add, NULL)) || reply->type == REDIS_REPLY_ERROR)
        return NULL;
    prune[0] = "ZREMRANGEBYSCORE", prune[1] = key, prune[2] = "-inf";
    prune[3] = apr_psprintf(r->pool, "(%" APR_TIME_T_FMT, now);
    bl_redis_command(r, 4, prune, NULL);
    /* The set goes once its last member could count: no token lives longer. */
    expire[0] = "EXPIRE", expire[1] = key;
    expire[2] = apr_itoa(r->pool, bl_access_token_ttl(r) + PRESENCE_GRACE);
    bl_redis_command(r, 3, expire, NULL);
    return member;
}

static void presence_leave(request_rec *r, const char *conversation_id, const char *member)
{
    const char *argv[3] = {"ZREM", presence_key(r->pool, conversation_id), member};

    if (member)
        bl_redis_command(r, 3, argv, NULL);
}

typedef struct {
    const char *conversation_id;
} resume_ctx;

static int digits_only(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= 18 && strspn(s, "0123456789") == n;
}

/* On a connection of its own, given back at once: an open stream holds no
 * database connection. */
static int chat_resume(request_rec *r, void *ctxv, const char *last_event_id,
                       bl_stream_emit_fn *emit, void *emit_ctx)
{
    resume_ctx *ctx = ctxv;
    const char *args[2];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    ap_dbd_t *db;

    if (!digits_only(last_event_id))
        return bl_send_validation_error(r, "Last-Event-ID",
                                        "Last-Event-ID is not an event id of this stream"), -1;
    if (!(db = bl_db_open(r->pool, r->server))) {
        bl_send_unavailable(r, "database");
        return -1;
    }
    args[0] = ctx->conversation_id;
    args[1] = last_event_id;
    if (!(res = bl_db_select(r, db, SQL_RESUME, 2, args))) {
        bl_db_close(r->server, db);
        return -1;
    }
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0)
        emit(emit_ctx, bl_db_get(r, db, row, 0), bl_db_get(r, db, row, 1),
             bl_db_get(r, db, row, 2));
    bl_db_close(r->server, db);
    return 0;
}

static int chat_events(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"last_event_id", NULL};
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *args[2], *one, *member;
    apr_table_t *q;
    resume_ctx *ctx;
    ap_dbd_t *db;
    int found, rv;

    if (!user || cv_path_id(r, id, "conversation") || cv_query(r, allowed, &q))
        return OK;
    if (!(db = bl_db_open(r->pool, r->server)))
        return bl_send_unavailable(r, "database");
    args[0] = id;
    args[1] = user->id;
    found = cv_select_row(r, db, SQL_CAN_LISTEN, 2, args, 1, &one);
    bl_db_close(r->server, db);
    if (found <= 0)
        return found < 0 ? OK : cv_not_found(r, "conversation");

    ctx = apr_pcalloc(r->pool, sizeof *ctx);
    ctx->conversation_id = id;
    member = presence_join(r, id, user);
    rv = bl_stream_serve(r, channel_of(r->pool, id), chat_resume, ctx);
    presence_leave(r, id, member);
    return rv;
}

static const community_route event_routes[] = {
    {"GET", "/chat/conversations/:id/events", chat_events},
    {NULL, NULL, NULL}
};

const community_part chat_events_part = {
    "chat events", event_routes, event_statements
};
