/* POST /ai/chat and the conversation routes.
 *
 * A chat message goes: validation → triage (a red flag answers at once,
 * with no model call) → the model's configuration, the circuit breaker
 * and the daily quota → the messages sent (the server's system prompt,
 * the caller's data only with use_my_data, the history trimmed to a token
 * budget, everything redacted) → the model, plain or streamed to the
 * client as Server-Sent Events → the conversation and the ledger row,
 * in one transaction. */
#include "ai_private.h"
#include "json.h"
#include "uuid.h"
#include "validate.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_ai);

#define MESSAGE_MAX_CHARS 4000
#define TITLE_CHARS 60

typedef struct {
    request_rec *r;
    const char *conversation_id;
    int started;                  /* the event stream's headers are out */
    int gone;                     /* the client went away */
} relay;

/* ---------------------------------------------------------------- events */

static void stream_start(relay *rl)
{
    request_rec *r = rl->r;

    if (rl->started)
        return;
    rl->started = 1;
    r->status = HTTP_OK;
    ap_set_content_type(r, "text/event-stream; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    apr_table_unset(r->headers_out, "Content-Length");
}

/* One event, flushed at once. Returns non-zero when the client is gone. */
static int stream_event(relay *rl, const char *event, json_object *data)
{
    request_rec *r = rl->r;

    if (rl->gone)
        return 1;
    stream_start(rl);
    ap_rvputs(r, "event: ", event, "\ndata: ",
              json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN), "\n\n", NULL);
    if (ap_rflush(r) < 0 || r->connection->aborted)
        rl->gone = 1;
    return rl->gone;
}

static int stream_event_start(relay *rl)
{
    json_object *o = json_object_new_object();
    int gone;

    json_object_object_add(o, "conversation_id", json_object_new_string(rl->conversation_id));
    gone = stream_event(rl, "start", o);
    json_object_put(o);
    return gone;
}

static int on_token(void *ctx, const char *text, apr_size_t len)
{
    relay *rl = ctx;
    json_object *o;
    int gone;

    if (!rl->started && stream_event_start(rl))
        return 1;
    o = json_object_new_object();
    json_object_object_add(o, "text", json_object_new_string_len(text, (int)len));
    gone = stream_event(rl, "token", o);
    json_object_put(o);
    return gone;
}

static void stream_error(relay *rl, const char *code, const char *message)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "code", json_object_new_string(code));
    json_object_object_add(o, "message", json_object_new_string(message));
    (void)stream_event(rl, "error", o);
    json_object_put(o);
}

/* ---------------------------------------------------------------- storage */

/* At most max characters of s, for a conversation title. */
static const char *title_of(apr_pool_t *p, const char *s)
{
    size_t i = 0, chars = 0;

    while (s[i] && chars < TITLE_CHARS) {
        i++;
        while ((s[i] & 0xC0) == 0x80)
            i++;
        chars++;
    }
    return apr_pstrndup(p, s, i);
}

/* The conversation (made when new), both messages and the ledger row, in
 * one transaction. Returns 0, or -1 after answering. */
static int save_exchange(request_rec *r, ap_dbd_t *db, const char *user_id, const char *cid,
                         const char *message, const char *reply, const char *urgency,
                         const ai_ledger_entry *entry)
{
    const char *conv[3] = {cid, user_id, title_of(r->pool, message)};
    const char *user_msg[4] = {cid, "user", message, NULL};
    const char *bot_msg[4] = {cid, "assistant", reply, urgency};

    if (bl_db_begin(r, db) != 0)
        return -1;
    if (bl_db_exec(r, db, AI_SQL_CONVERSATION_UPSERT, 3, conv) != 1
        || bl_db_exec(r, db, AI_SQL_MESSAGE_INSERT, 4, user_msg) != 1
        || bl_db_exec(r, db, AI_SQL_MESSAGE_INSERT, 4, bot_msg) != 1
        || ai_ledger_write(r, db, user_id, entry) != 0) {
        bl_db_rollback(r, db);
        if (r->status < 400 && !r->sent_bodyct)
            bl_send_unavailable(r, "database");
        return -1;
    }
    return bl_db_commit(r, db);
}

/* Prepends the history that fits the budget (newest kept) to messages. */
static int add_history(request_rec *r, ap_dbd_t *db, const ai_person *who, const char *cid,
                       const char *user_id, json_object *messages, int budget)
{
    const char *args[2] = {cid, user_id};
    apr_dbd_results_t *res = bl_db_select(r, db, AI_SQL_HISTORY, 2, args);
    apr_array_header_t *kept;
    apr_dbd_row_t *row = NULL;
    int i, used = 0, full = 0;

    if (!res)
        return -1;
    kept = apr_array_make(r->pool, 16, sizeof(const char *) * 2);
    /* Rows come newest first; every row is read, and copied: reading past
     * the last row frees the result. */
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        const char *role = apr_pstrdup(r->pool, bl_db_get(r, db, row, 0));
        const char *content = apr_pstrdup(r->pool, bl_db_get(r, db, row, 1));
        int cost = (int)(strlen(content) + 3) / 4;
        const char **pair;
        if (full || used + cost > budget) {
            full = 1;
            continue;
        }
        used += cost;
        pair = apr_array_push(kept);
        pair[0] = role;
        pair[1] = content;
    }
    for (i = kept->nelts - 1; i >= 0; i--) {
        const char **pair = (const char **)(kept->elts + (size_t)i * kept->elt_size);
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string(pair[0]));
        json_object_object_add(m, "content", json_object_new_string(ai_redact(r, who, pair[1])));
        json_object_array_add(messages, m);
    }
    return 0;
}

static void add_message(json_object *messages, const char *role, const char *content)
{
    json_object *m = json_object_new_object();

    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", json_object_new_string(content));
    json_object_array_add(messages, m);
}

/* With use_my_data: what the account says, as information from the
 * person (user role), never names, contacts or dates of birth. */
static int add_context(request_rec *r, ap_dbd_t *db, const ai_person *who, const char *user_id,
                       json_object *messages)
{
    const char *args[1] = {user_id};
    const char *context = NULL;

    if (bl_db_value(r, db, AI_SQL_CONTEXT, 1, args, &context) != APR_SUCCESS)
        return -1;
    if (context)
        add_message(messages, "user",
                    apr_pstrcat(r->pool, "Information from my account, shared with my "
                                "permission (JSON): ", ai_redact(r, who, context), NULL));
    return 0;
}

static json_object *usage_json(const ai_answer *a, double cost)
{
    json_object *u = json_object_new_object();

    json_object_object_add(u, "prompt_tokens", a->prompt_tokens >= 0
                           ? json_object_new_int64(a->prompt_tokens) : NULL);
    json_object_object_add(u, "completion_tokens", a->completion_tokens >= 0
                           ? json_object_new_int64(a->completion_tokens) : NULL);
    json_object_object_add(u, "cost_usd", cost >= 0 ? json_object_new_double(cost) : NULL);
    return u;
}

/* ---------------------------------------------------------------- triage */

static int answer_triaged(request_rec *r, ap_dbd_t *db, const char *user_id, relay *rl,
                          int stream, const ai_person *who, const char *message,
                          const ai_rule *rule)
{
    json_object *triage = ai_triage_json(r, rule, who->country), *data, *msg, *line;
    const char *reply = rule->guidance;
    ai_ledger_entry entry = {"chat", ai_redact(r, who, message), NULL, NULL,
                             rl->conversation_id, rule->id, NULL};

    if (json_object_object_get_ex(triage, "crisis_line", &line))
        reply = apr_pstrcat(r->pool, reply, "\n\n", json_object_get_string(line), NULL);
    entry.response = reply;
    if (save_exchange(r, db, user_id, rl->conversation_id, message, reply, "emergency", &entry)) {
        json_object_put(triage);
        return OK;
    }
    data = json_object_new_object();
    msg = json_object_new_object();
    json_object_object_add(msg, "role", json_object_new_string("assistant"));
    json_object_object_add(msg, "content", json_object_new_string(reply));
    json_object_object_add(data, "conversation_id", json_object_new_string(rl->conversation_id));
    json_object_object_add(data, "urgency", json_object_new_string("emergency"));
    json_object_object_add(data, "triage", triage);
    json_object_object_add(data, "message", msg);
    json_object_object_add(data, "disclaimer", json_object_new_string(ai_disclaimer));
    if (!stream)
        return ai_send_object(r, HTTP_OK, "red flag: emergency guidance", data);
    if (!stream_event_start(rl) && !stream_event(rl, "triage", data)) {
        json_object *done = json_object_new_object();
        json_object_object_add(done, "conversation_id", json_object_new_string(rl->conversation_id));
        json_object_object_add(done, "urgency", json_object_new_string("emergency"));
        json_object_object_add(done, "disclaimer", json_object_new_string(ai_disclaimer));
        (void)stream_event(rl, "done", done);
        json_object_put(done);
    }
    json_object_put(data);
    return OK;
}

/* ---------------------------------------------------------------- chat */

static int wants_stream(request_rec *r, int stream_field)
{
    const char *accept = apr_table_get(r->headers_in, "Accept");

    return stream_field || (accept && ap_strcasestr(accept, "text/event-stream"));
}

int ai_chat(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"message", "conversation_id", "stream", "use_my_data",
                                          NULL};
    const ai_conf *c = ai_config(r);
    const bl_user *user;
    json_object *body, *messages;
    const char *message = NULL, *cid = NULL, *err = NULL, *tier, *sent;
    int stream = 0, use_my_data = 0;
    ap_dbd_t *db;
    ai_person who;
    const ai_rule *rule;
    relay rl;
    ai_answer answer;
    ai_ledger_entry entry;

    if (!(user = bl_require_user(r)) || !(body = bl_read_json(r)) || ai_refuse_unknown(r, body, allowed))
        return OK;
    if (bl_json_get_string(r->pool, body, "message", BL_REQUIRED, 1, MESSAGE_MAX_CHARS, &message,
                           &err) != BL_FIELD_OK
        || bl_json_get_string(r->pool, body, "conversation_id", BL_OPTIONAL, 36, 36, &cid, &err)
               == BL_FIELD_INVALID
        || bl_json_get_bool(r->pool, body, "stream", BL_OPTIONAL, &stream, &err) == BL_FIELD_INVALID
        || bl_json_get_bool(r->pool, body, "use_my_data", BL_OPTIONAL, &use_my_data, &err)
               == BL_FIELD_INVALID)
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION, err, NULL);
    if (cid && !bl_valid_uuid(cid))
        return bl_send_validation_error(r, "conversation_id", "conversation_id must be a UUID");
    message = apr_pstrdup(r->pool, message);
    stream = wants_stream(r, stream);
    if (!(db = bl_db(r)) || ai_load_person(r, db, user->id, &who) != 0)
        return OK;
    if (cid) {
        const char *args[2] = {cid, user->id};
        const char *owned = NULL;
        if (bl_db_value(r, db, AI_SQL_CONVERSATION_OWNED, 2, args, &owned) != APR_SUCCESS)
            return OK;
        if (!owned)
            return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such conversation", NULL);
        cid = apr_pstrdup(r->pool, cid);
    }
    memset(&rl, 0, sizeof rl);
    rl.r = r;
    rl.conversation_id = cid ? cid : bl_uuid_v4(r->pool);

    /* Safety before the model: no quota, no configuration needed. */
    if ((rule = ai_triage(r->pool, c->rules, message, -1)))
        return answer_triaged(r, db, user->id, &rl, stream, &who, message, rule);

    if (!ai_configured(c))
        return ai_send_not_configured(r);
    if (ai_breaker_check(r) != 0 || ai_quota_take(r, db, user->id, &tier) != 0)
        return OK;

    messages = json_object_new_array();
    add_message(messages, "system", ai_system_prompt);
    sent = ai_redact(r, &who, message);
    if ((use_my_data && add_context(r, db, &who, user->id, messages) != 0)
        || (cid && add_history(r, db, &who, cid, user->id, messages, c->history_tokens) != 0)) {
        json_object_put(messages);
        ai_quota_give_back(r, user->id);
        return OK;
    }
    add_message(messages, "user", sent);
    ai_complete(r, messages, NULL, NULL, stream ? on_token : NULL, &rl, &answer);
    json_object_put(messages);

    memset(&entry, 0, sizeof entry);
    entry.kind = "chat";
    entry.prompt = sent;
    entry.response = answer.content;
    entry.model = c->model;
    entry.triage = "none";
    entry.answer = &answer;
    if (!answer.content) {
        /* The ledger keeps the failed call; the quota gets it back. */
        ai_quota_give_back(r, user->id);
        if (ai_ledger_write(r, db, user->id, &entry) != 0 && !rl.started)
            return OK;
        if (answer.cancelled)
            return OK;
        if (rl.started) {
            stream_error(&rl, AI_ERR_UNAVAILABLE, "the model stopped answering; try again");
            return OK;
        }
        return ai_send_unavailable(r, &answer);
    }
    entry.conversation_id = rl.conversation_id;
    if (save_exchange(r, db, user->id, rl.conversation_id, message, answer.content, NULL, &entry)) {
        if (rl.started)
            stream_error(&rl, BL_ERR_UNAVAILABLE, "the answer could not be saved");
        return OK;
    }
    {
        double cost = ai_cost(c, c->model, answer.prompt_tokens, answer.completion_tokens);
        json_object *data = json_object_new_object();

        json_object_object_add(data, "conversation_id", json_object_new_string(rl.conversation_id));
        json_object_object_add(data, "usage", usage_json(&answer, cost));
        json_object_object_add(data, "disclaimer", json_object_new_string(ai_disclaimer));
        if (stream) {
            if (!rl.started)
                (void)stream_event_start(&rl);
            (void)stream_event(&rl, "done", data);
            json_object_put(data);
            return OK;
        }
        {
            json_object *msg = json_object_new_object();
            json_object_object_add(msg, "role", json_object_new_string("assistant"));
            json_object_object_add(msg, "content", json_object_new_string(answer.content));
            json_object_object_add(data, "message", msg);
            json_object_object_add(data, "urgency", NULL);
        }
        return ai_send_object(r, HTTP_OK, NULL, data);
    }
}

/* ---------------------------------------------------------------- conversations */

int ai_list_conversations(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    int page, per_page;
    const char *args[3];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    if (!(user = bl_require_user(r)) || bl_pagination_args(r, &page, &per_page) != 0
        || !(db = bl_db(r)))
        return OK;
    args[0] = user->id;
    args[1] = apr_itoa(r->pool, per_page);
    args[2] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(res = bl_db_select(r, db, AI_SQL_CONVERSATIONS, 3, args)))
        return OK;
    if (!(row = ai_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 1),
                        bl_pagination_meta(r, page, per_page,
                                           (long)apr_atoi64(bl_db_get(r, db, row, 0))));
}

static const char *conversation_param(request_rec *r, apr_table_t *params)
{
    const char *id = apr_table_get(params, "id");

    if (!id || !bl_valid_uuid(id)) {
        bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such conversation", NULL);
        return NULL;
    }
    return id;
}

int ai_get_conversation(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    const char *id, *json = NULL;
    const char *args[2];
    ap_dbd_t *db;

    if (!(user = bl_require_user(r)) || !(id = conversation_param(r, params)) || !(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = user->id;
    if (bl_db_value(r, db, AI_SQL_CONVERSATION_JSON, 2, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such conversation", NULL);
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}

int ai_delete_conversation(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    const char *id;
    const char *args[2];
    ap_dbd_t *db;
    int n;

    if (!(user = bl_require_user(r)) || !(id = conversation_param(r, params)) || !(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = user->id;
    if ((n = bl_db_exec(r, db, AI_SQL_CONVERSATION_DELETE, 2, args)) < 0)
        return OK;
    if (n == 0)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such conversation", NULL);
    return bl_send_no_content(r);
}
