/* The model call: one OpenAI Chat Completions request through
 * modules/common/http_client (timeouts, retries with backoff on 429 and
 * 5xx within a deadline), plain or streamed (the provider's Server-Sent
 * Events parsed by modules/common/sse and handed on token by token).
 * Nothing here logs a prompt, an answer or the key. */
#include "ai_private.h"
#include "http_client.h"
#include "json.h"
#include "sse.h"

#include <http_log.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_ai);

typedef struct {
    request_rec *r;
    ai_answer *out;
    bl_sse_parser *sse;
    ai_token_fn *on_token;
    void *token_ctx;
    char *text;                 /* the answer so far */
    apr_size_t len, cap;
    int done;                   /* "[DONE]" or a finish_reason seen */
    int client_gone;
    int bad_chunk;
} stream_state;

static void append(stream_state *st, const char *s, apr_size_t n)
{
    if (st->len + n + 1 > st->cap) {
        apr_size_t cap = st->cap ? st->cap * 2 : 1024;
        char *grown;
        while (cap < st->len + n + 1)
            cap *= 2;
        grown = apr_palloc(st->r->pool, cap);
        if (st->len)
            memcpy(grown, st->text, st->len);
        st->text = grown;
        st->cap = cap;
    }
    memcpy(st->text + st->len, s, n);
    st->len += n;
    st->text[st->len] = '\0';
}

static void read_usage(json_object *chunk, ai_answer *out)
{
    json_object *usage, *v;

    if (!json_object_object_get_ex(chunk, "usage", &usage) || !usage
        || !json_object_is_type(usage, json_type_object))
        return;
    if (json_object_object_get_ex(usage, "prompt_tokens", &v) && json_object_is_type(v, json_type_int))
        out->prompt_tokens = (long)json_object_get_int64(v);
    if (json_object_object_get_ex(usage, "completion_tokens", &v)
        && json_object_is_type(v, json_type_int))
        out->completion_tokens = (long)json_object_get_int64(v);
}

/* choices[0] of a chunk or an answer, or NULL. */
static json_object *first_choice(json_object *o)
{
    json_object *choices;

    if (!json_object_object_get_ex(o, "choices", &choices)
        || !json_object_is_type(choices, json_type_array) || json_object_array_length(choices) == 0)
        return NULL;
    return json_object_array_get_idx(choices, 0);
}

/* The string member name of member holder of o, or NULL. */
static const char *string_at(json_object *o, const char *holder, const char *name)
{
    json_object *h, *v;

    if (!o || !json_object_object_get_ex(o, holder, &h) || !h
        || !json_object_object_get_ex(h, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int on_event(void *ctx, const char *event, const char *data, apr_size_t len,
                    const char *id)
{
    stream_state *st = ctx;
    json_object *chunk, *choice, *finish;
    const char *err = NULL, *piece;

    if (strcmp(data, "[DONE]") == 0) {
        st->done = 1;
        return 0;
    }
    if (!(chunk = bl_json_parse_object(st->r->pool, data, len, 0, &err))) {
        st->bad_chunk = 1;
        return 1;
    }
    if (json_object_object_get_ex(chunk, "error", NULL)) {
        st->bad_chunk = 1;
        return 1;
    }
    read_usage(chunk, st->out);
    choice = first_choice(chunk);
    piece = string_at(choice, "delta", "content");
    if (piece && *piece) {
        size_t n = strlen(piece);
        append(st, piece, n);
        if (st->on_token && st->on_token(st->token_ctx, piece, n) != 0) {
            st->client_gone = 1;
            return 1;
        }
    }
    if (choice && json_object_object_get_ex(choice, "finish_reason", &finish) && finish
        && json_object_is_type(finish, json_type_string))
        st->done = 1;
    return 0;
}

static int on_data(void *ctx, const char *data, apr_size_t len)
{
    stream_state *st = ctx;

    return bl_sse_feed(st->sse, data, len) != 0;
}

static const char *request_body(request_rec *r, const ai_conf *c, json_object *messages,
                                const char *schema_name, const char *schema, int stream)
{
    json_object *body = json_object_new_object();
    const char *text;

    json_object_object_add(body, "model", json_object_new_string(c->model));
    json_object_object_add(body, "messages", json_object_get(messages));
    json_object_object_add(body, "max_tokens", json_object_new_int(c->max_tokens));
    json_object_object_add(body, "temperature", json_object_new_double_s(0.3, "0.3"));
    if (stream) {
        json_object *opts = json_object_new_object();
        json_object_object_add(body, "stream", json_object_new_boolean(1));
        json_object_object_add(opts, "include_usage", json_object_new_boolean(1));
        json_object_object_add(body, "stream_options", opts);
    }
    if (schema) {
        json_object *format = json_object_new_object(), *js = json_object_new_object();
        json_object_object_add(js, "name", json_object_new_string(schema_name));
        json_object_object_add(js, "strict", json_object_new_boolean(1));
        json_object_object_add(js, "schema", json_tokener_parse(schema));
        json_object_object_add(format, "type", json_object_new_string("json_schema"));
        json_object_object_add(format, "json_schema", js);
        json_object_object_add(body, "response_format", format);
    }
    text = bl_json_to_string(r->pool, body);
    json_object_put(body);
    return text;
}

/* The text of a whole (not streamed) answer, or NULL. */
static const char *answer_text(request_rec *r, const bl_http_response *resp, ai_answer *out)
{
    const char *err = NULL;
    json_object *o = bl_json_parse_object(r->pool, resp->body, resp->body_len, 0, &err);

    if (!o)
        return NULL;
    read_usage(o, out);
    return string_at(first_choice(o), "message", "content");
}

int ai_complete(request_rec *r, json_object *messages, const char *schema_name,
                const char *schema, ai_token_fn *on_token, void *token_ctx, ai_answer *out)
{
    const ai_conf *c = ai_config(r);
    bl_http_request req;
    bl_http_response resp;
    stream_state st;
    apr_time_t started = apr_time_now();
    bl_http_outcome outcome;

    memset(out, 0, sizeof *out);
    memset(&req, 0, sizeof req);
    memset(&st, 0, sizeof st);
    out->prompt_tokens = out->completion_tokens = -1;
    st.r = r;
    st.out = out;
    st.on_token = on_token;
    st.token_ctx = token_ctx;

    req.method = "POST";
    req.url = apr_pstrcat(r->pool, c->url, "/v1/chat/completions", NULL);
    req.body = request_body(r, c, messages, schema_name, schema, on_token != NULL);
    req.body_len = strlen(req.body);
    req.content_type = "application/json";
    req.bearer = c->api_key && *c->api_key ? c->api_key : NULL;
    req.connect_timeout = c->connect_timeout;
    req.timeout = c->timeout;
    req.max_attempts = c->max_attempts;
    req.deadline = started + c->deadline;
    req.traceparent = bl_traceparent(r);
    if (on_token) {
        st.sse = bl_sse_parser_create(r->pool, 0, on_event, &st);
        req.on_data = on_data;
        req.on_data_ctx = &st;
    }
    outcome = bl_http_perform(r->pool, &req, &resp);
    out->latency = apr_time_now() - started;
    out->retry_after = resp.retry_after;
    out->streamed = st.len > 0;

    if (outcome == BL_HTTP_ABORTED && st.client_gone) {
        out->cancelled = 1;
        out->error = "client_disconnected";
    } else if (outcome != BL_HTTP_OK && outcome != BL_HTTP_ABORTED) {
        out->error = outcome == BL_HTTP_TOO_LARGE ? "answer too large"
                   : apr_pstrcat(r->pool, "transport: ", resp.error ? resp.error : "failed", NULL);
    } else if (outcome == BL_HTTP_ABORTED || (on_token && resp.status / 100 == 2 && !st.done)) {
        out->error = st.bad_chunk ? "unreadable stream" : "stream ended early";
    } else if (resp.status / 100 != 2) {
        out->error = apr_psprintf(r->pool, "provider answered %ld", resp.status);
        if (!bl_http_status_retryable(resp.status))
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "mod_beautiful_ai: the provider refused the request with %ld "
                          "(key, model or URL?)", resp.status);
    } else if (on_token) {
        out->content = st.text ? st.text : "";
    } else if (!(out->content = answer_text(r, &resp, out))) {
        out->error = "unreadable answer";
    }
    if (out->content && !*out->content)
        out->error = "empty answer";
    if (out->error && !out->cancelled) {
        out->unavailable = 1;
        out->content = NULL;
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "mod_beautiful_ai: model call failed after %d attempt(s): %s",
                      resp.attempts, out->error);
    }
    if (!out->cancelled)
        ai_breaker_record(r, out->unavailable);
    return out->content ? 0 : -1;
}
