/* stream.c — live streams (Server-Sent Events) fed by Redis pub/sub.
 *
 * One subscriber thread per child holds one Redis connection in
 * PSUBSCRIBE mode on "bl:stream:*" and hands every message to the streams
 * of that child listening on its channel, so 200 open streams cost one
 * Redis connection, not 200. A stream is a request that keeps its worker
 * thread: it waits on its own condition variable, writes what arrives,
 * sends a heartbeat comment when idle, and ends when the client goes, when
 * Redis goes (the client reconnects with Last-Event-ID and is sent what it
 * missed from the database), or when the child stops.
 *
 * Events cross threads with lifetimes of their own (the subscriber's and
 * each stream's), so they are malloc'd and reference-counted: the last
 * stream to write one frees it. */
#include "core_hooks.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <ap_mpm.h>
#include <util_script.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

APLOG_USE_MODULE(beautiful_core);

#define STREAM_PREFIX "bl:stream:"
#define STREAM_PATTERN STREAM_PREFIX "*"
#define STREAM_QUEUE_MAX 256               /* per stream; beyond it the stream ends */
#define STREAM_ID_MAX 128
#define STREAM_RESUME_RETRY "3000"         /* ms: the client's reconnect delay */
#define STREAM_TICK apr_time_from_msec(500) /* how often a waiting stream looks at its socket */
#define SUBSCRIBER_POLL_MS 500
#define SUBSCRIBER_RETRY apr_time_from_sec(1)

/* ---------------------------------------------------------------- settings */

static int stream_max_per_child;                       /* 0: from the MPM */
static apr_interval_time_t stream_heartbeat = 0;       /* 0: 15 s */
static int stream_retry_after = 5;

const char *bl_cmd_stream_max(cmd_parms *cmd, void *dc, const char *arg)
{
    long v;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err)
        return err;
    if (bl_parse_long(arg, 1, 100000, &v) != 0)
        return "BeautifulStreamMaxPerChild: expected a number from 1 to 100000";
    stream_max_per_child = (int)v;
    return NULL;
}

const char *bl_cmd_stream_heartbeat(cmd_parms *cmd, void *dc, const char *arg)
{
    apr_interval_time_t t;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err)
        return err;
    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS
        || t < apr_time_from_msec(100) || t > apr_time_from_sec(3600))
        return "BeautifulStreamHeartbeat: expected a duration from 100ms to 1h";
    stream_heartbeat = t;
    return NULL;
}

/* ---------------------------------------------------------------- state */

typedef struct stream_event {
    apr_uint32_t refs;         /* guarded by the registry mutex */
    char *id;
    char *type;
    char *data;
} stream_event;

typedef struct stream_client {
    struct stream_client *next;
    struct stream_client *prev;
    const char *channel;
    apr_thread_cond_t *wake;
    stream_event *queue[STREAM_QUEUE_MAX];
    int head, count;
    int closed;                /* Redis went away or the queue overflowed */
} stream_client;

typedef enum { SUB_IDLE = 0, SUB_CONNECTING, SUB_UP, SUB_DOWN } sub_state;

/* Per child: created in child_init, reached by every worker thread. */
static struct {
    apr_pool_t *pool;
    apr_thread_mutex_t *lock;  /* everything below */
    apr_thread_cond_t *state_changed;
    apr_hash_t *channels;      /* channel -> stream_client * (list head) */
    int open;                  /* streams registered */
    int max;
    sub_state state;
    apr_thread_t *thread;
    volatile int stopping;
    server_rec *s;
} reg;

static void event_release(stream_event *ev)
{
    /* caller holds reg.lock */
    if (--ev->refs == 0) {
        free(ev->id);
        free(ev->type);
        free(ev->data);
        free(ev);
    }
}

/* Every stream of the child ends: Redis is gone, so nothing more would
 * reach them; their clients reconnect and resume. Caller holds reg.lock. */
static void close_all_locked(void)
{
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, reg.channels); hi; hi = apr_hash_next(hi)) {
        stream_client *c;
        void *val;

        apr_hash_this(hi, NULL, NULL, &val);
        for (c = val; c; c = c->next) {
            c->closed = 1;
            apr_thread_cond_signal(c->wake);
        }
    }
}

static void set_state(sub_state st)
{
    apr_thread_mutex_lock(reg.lock);
    reg.state = st;
    if (st == SUB_DOWN)
        close_all_locked();
    apr_thread_cond_broadcast(reg.state_changed);
    apr_thread_mutex_unlock(reg.lock);
}

/* ---------------------------------------------------------------- subscriber */

/* "id\ntype\ndata" as published by bl_stream_publish. */
static stream_event *event_parse(const char *payload, size_t len)
{
    const char *nl1 = memchr(payload, '\n', len), *nl2;
    stream_event *ev;

    if (!nl1 || !(nl2 = memchr(nl1 + 1, '\n', len - (size_t)(nl1 + 1 - payload))))
        return NULL;
    ev = calloc(1, sizeof(*ev));
    if (!ev)
        return NULL;
    ev->id = strndup(payload, (size_t)(nl1 - payload));
    ev->type = strndup(nl1 + 1, (size_t)(nl2 - nl1 - 1));
    ev->data = strndup(nl2 + 1, len - (size_t)(nl2 + 1 - payload));
    if (!ev->id || !ev->type || !ev->data) {
        free(ev->id);
        free(ev->type);
        free(ev->data);
        free(ev);
        return NULL;
    }
    return ev;
}

static void fan_out(const char *channel, size_t channel_len, const char *payload,
                    size_t len)
{
    stream_client *c;
    stream_event *ev;

    apr_thread_mutex_lock(reg.lock);
    c = apr_hash_get(reg.channels, channel, (apr_ssize_t)channel_len);
    if (c && (ev = event_parse(payload, len)) != NULL) {
        ev->refs = 1;           /* held while handing out */
        for (; c; c = c->next) {
            if (c->closed)
                continue;
            if (c->count == STREAM_QUEUE_MAX) {
                c->closed = 1;  /* a client this far behind reconnects and resumes */
            }
            else {
                ev->refs++;
                c->queue[(c->head + c->count++) % STREAM_QUEUE_MAX] = ev;
            }
            apr_thread_cond_signal(c->wake);
        }
        event_release(ev);
    }
    apr_thread_mutex_unlock(reg.lock);
}

static void handle_reply(redisReply *reply)
{
    size_t plen = sizeof(STREAM_PREFIX) - 1;
    redisReply *ch, *msg;

    /* ["pmessage", pattern, channel, payload] */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4
        || reply->element[0]->type != REDIS_REPLY_STRING
        || strcmp(reply->element[0]->str, "pmessage") != 0)
        return;
    ch = reply->element[2];
    msg = reply->element[3];
    if (ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING
        || ch->len <= plen || strncmp(ch->str, STREAM_PREFIX, plen) != 0)
        return;
    fan_out(ch->str + plen, ch->len - plen, msg->str, msg->len);
}

static redisContext *subscribe(const bl_server_conf *sc)
{
    struct timeval tv;
    redisContext *c;
    redisReply *reply;

    tv.tv_sec = (long)apr_time_sec(sc->redis_timeout);
    tv.tv_usec = (long)apr_time_usec(sc->redis_timeout);
    c = redisConnectWithTimeout(sc->redis_host, sc->redis_port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    reply = redisCommand(c, "PSUBSCRIBE %s", STREAM_PATTERN);
    if (!reply || c->err || reply->type != REDIS_REPLY_ARRAY) {
        if (reply)
            freeReplyObject(reply);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(reply);
    return c;
}

/* Reads until the connection fails or the child stops. */
static void listen_loop(redisContext *c)
{
    while (!reg.stopping) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        void *reply = NULL;
        int n = poll(&pfd, 1, SUBSCRIBER_POLL_MS);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;
        if (n == 0)
            continue;
        if (redisBufferRead(c) != REDIS_OK)
            return;
        while (redisGetReplyFromReader(c, &reply) == REDIS_OK && reply) {
            handle_reply(reply);
            freeReplyObject(reply);
            reply = NULL;
        }
        if (c->err)
            return;
    }
}

static void *APR_THREAD_FUNC subscriber_main(apr_thread_t *t, void *data)
{
    const bl_server_conf *sc = bl_core_server_conf(reg.s);
    int logged_down = 0;

    while (!reg.stopping) {
        redisContext *c = subscribe(sc);

        if (!c) {
            if (!logged_down)
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, reg.s,
                             "live streams: cannot subscribe on Redis %s:%d",
                             sc->redis_host, sc->redis_port);
            logged_down = 1;
            set_state(SUB_DOWN);
            apr_sleep(SUBSCRIBER_RETRY);
            continue;
        }
        if (logged_down)
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, reg.s,
                         "live streams: subscribed on Redis again");
        logged_down = 0;
        set_state(SUB_UP);
        listen_loop(c);
        redisFree(c);
        if (!reg.stopping) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, reg.s,
                         "live streams: Redis subscription lost");
            logged_down = 1;
            set_state(SUB_DOWN);
        }
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static apr_status_t stream_child_exit(void *unused)
{
    apr_status_t rv;

    reg.stopping = 1;
    if (reg.thread)
        apr_thread_join(&rv, reg.thread);
    reg.thread = NULL;
    return APR_SUCCESS;
}

void bl_stream_child_init(apr_pool_t *pchild, server_rec *s)
{
    int threads = 1;

    memset(&reg, 0, sizeof(reg));
    reg.pool = pchild;
    reg.s = s;
    reg.channels = apr_hash_make(pchild);
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    reg.max = stream_max_per_child > 0 ? stream_max_per_child
                                       : (threads > 1 ? threads / 2 : 1);
    if (apr_thread_mutex_create(&reg.lock, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS
        || apr_thread_cond_create(&reg.state_changed, pchild) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "live streams: cannot create locks");
        reg.lock = NULL;
        return;
    }
    /* runs before the pool's subpools (and their threads' memory) go */
    apr_pool_pre_cleanup_register(pchild, NULL, stream_child_exit);
}

/* Starts the subscriber on first use, then waits (bounded) for it to be
 * subscribed. Caller holds reg.lock. Returns 1 when subscribed. */
static int subscriber_ready_locked(void)
{
    const bl_server_conf *sc = bl_core_server_conf(reg.s);
    apr_time_t until = apr_time_now() + sc->redis_timeout + apr_time_from_msec(200);

    if (!reg.thread) {
        apr_threadattr_t *attr;

        reg.state = SUB_CONNECTING;
        if (apr_threadattr_create(&attr, reg.pool) != APR_SUCCESS
            || apr_thread_create(&reg.thread, attr, subscriber_main, NULL, reg.pool)
                   != APR_SUCCESS) {
            reg.thread = NULL;
            reg.state = SUB_IDLE;
            return 0;
        }
    }
    while (reg.state == SUB_CONNECTING && apr_time_now() < until)
        apr_thread_cond_timedwait(reg.state_changed, reg.lock, apr_time_from_msec(100));
    return reg.state == SUB_UP;
}

/* ---------------------------------------------------------------- one stream */

typedef enum { REG_OK = 0, REG_FULL, REG_DOWN } reg_status;

/* The hash key of a channel is always its head client's own copy of the
 * name (from that request's pool): re-keyed whenever the head changes, so
 * no key outlives its request and nothing accumulates in the child pool. */
static void set_head_locked(const char *channel, stream_client *head)
{
    apr_hash_set(reg.channels, channel, APR_HASH_KEY_STRING, NULL);
    if (head)
        apr_hash_set(reg.channels, head->channel, APR_HASH_KEY_STRING, head);
}

static reg_status client_register(stream_client *c)
{
    stream_client *head;
    reg_status st = REG_OK;

    if (!reg.lock)
        return REG_DOWN;
    apr_thread_mutex_lock(reg.lock);
    if (reg.open >= reg.max)
        st = REG_FULL;
    else if (!subscriber_ready_locked())
        st = REG_DOWN;
    else {
        head = apr_hash_get(reg.channels, c->channel, APR_HASH_KEY_STRING);
        c->next = head;
        if (head)
            head->prev = c;
        set_head_locked(c->channel, c);
        reg.open++;
    }
    apr_thread_mutex_unlock(reg.lock);
    return st;
}

static apr_status_t client_unregister(void *data)
{
    stream_client *c = data;

    apr_thread_mutex_lock(reg.lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        set_head_locked(c->channel, c->next);
    if (c->next)
        c->next->prev = c->prev;
    while (c->count > 0) {
        event_release(c->queue[c->head]);
        c->head = (c->head + 1) % STREAM_QUEUE_MAX;
        c->count--;
    }
    reg.open--;
    apr_thread_mutex_unlock(reg.lock);
    return APR_SUCCESS;
}

/* True when the client closed its side (or the connection broke). */
static int client_gone(request_rec *r)
{
    apr_socket_t *sock = ap_get_conn_socket(r->connection);
    apr_os_sock_t fd;
    struct pollfd pfd;
    char b;

    if (r->connection->aborted)
        return 1;
    if (!sock || apr_os_sock_get(&fd, sock) != APR_SUCCESS)
        return 0;
    pfd.fd = fd;
    pfd.events = POLLIN | POLLRDHUP;
    pfd.revents = 0;
    if (poll(&pfd, 1, 0) <= 0)
        return 0;
    if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
        return 1;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* One event in SSE framing; data may hold newlines (one data: line each). */
static void write_event(request_rec *r, const char *id, const char *type, const char *data)
{
    const char *line = data, *nl;

    if (id && *id)
        ap_rvputs(r, "id: ", id, "\n", NULL);
    if (type && *type)
        ap_rvputs(r, "event: ", type, "\n", NULL);
    while ((nl = strchr(line, '\n')) != NULL) {
        ap_rputs("data: ", r);
        ap_rwrite(line, (int)(nl - line), r);
        ap_rputs("\n", r);
        line = nl + 1;
    }
    ap_rvputs(r, "data: ", line, "\n\n", NULL);
}

static int flush_ok(request_rec *r)
{
    return ap_rflush(r) >= 0 && !r->connection->aborted;
}

/* Resume output collected before the headers go, so a database failure
 * can still be a 503. */
typedef struct {
    apr_pool_t *pool;
    apr_array_header_t *events;   /* stream_event (pool-allocated copies) */
    apr_hash_t *ids;              /* ids sent by resume: queued duplicates skipped */
} resume_buffer;

static int resume_emit(void *ctx, const char *id, const char *type, const char *data)
{
    resume_buffer *rb = ctx;
    stream_event *ev = apr_array_push(rb->events);

    ev->id = apr_pstrdup(rb->pool, id ? id : "");
    ev->type = apr_pstrdup(rb->pool, type ? type : "");
    ev->data = apr_pstrdup(rb->pool, data ? data : "");
    if (*ev->id)
        apr_hash_set(rb->ids, ev->id, APR_HASH_KEY_STRING, "");
    return 0;
}

/* The client's last event id: the Last-Event-ID header (EventSource's
 * reconnect) or ?last_event_id= (a first connect that knows where it was).
 * Returns NULL (none), the id, or "" for a malformed one. */
static const char *last_event_id(request_rec *r)
{
    const char *id = apr_table_get(r->headers_in, "Last-Event-ID");
    const char *p;

    if (!id && r->args) {
        apr_table_t *q = NULL;

        ap_args_to_table(r, &q);
        id = q ? apr_table_get(q, "last_event_id") : NULL;
    }
    if (!id)
        return NULL;
    if (!*id || strlen(id) > STREAM_ID_MAX)
        return "";
    for (p = id; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return "";
    return id;
}

static int answer_busy(request_rec *r, const char *message)
{
    apr_table_setn(r->err_headers_out, "Retry-After",
                   apr_itoa(r->pool, stream_retry_after));
    return bl_send_error(r, HTTP_SERVICE_UNAVAILABLE, BL_ERR_UNAVAILABLE, message, NULL);
}

static void send_head(request_rec *r)
{
    ap_set_content_type(r, "text/event-stream; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    /* a stream has no length: httpd must not wait for the end to send it */
    r->chunked = r->proto_num >= HTTP_VERSION(1, 1);
    ap_rputs(": stream open\nretry: " STREAM_RESUME_RETRY "\n\n", r);
}

/* Takes the queued events out under the lock; returns how many, and
 * whether the stream was closed. */
static int take_queue(stream_client *c, stream_event **out, int *closed,
                      apr_interval_time_t wait)
{
    int n = 0;

    apr_thread_mutex_lock(reg.lock);
    if (c->count == 0 && !c->closed && wait > 0)
        apr_thread_cond_timedwait(c->wake, reg.lock, wait);
    while (c->count > 0) {
        out[n++] = c->queue[c->head];
        c->head = (c->head + 1) % STREAM_QUEUE_MAX;
        c->count--;
    }
    *closed = c->closed;
    apr_thread_mutex_unlock(reg.lock);
    return n;
}

static void release_all(stream_event **evs, int n)
{
    int i;

    apr_thread_mutex_lock(reg.lock);
    for (i = 0; i < n; i++)
        event_release(evs[i]);
    apr_thread_mutex_unlock(reg.lock);
}

static int child_stopping(void)
{
    int state = AP_MPMQ_RUNNING;

    ap_mpm_query(AP_MPMQ_MPM_STATE, &state);
    return state == AP_MPMQ_STOPPING || reg.stopping;
}

/* The stream's life after the head: queued events, heartbeats, the end
 * (at the latest when the caller's access token expires: a revoked
 * session must not keep listening). */
static void pump(request_rec *r, stream_client *c, apr_hash_t *resumed, apr_time_t until)
{
    apr_interval_time_t beat = stream_heartbeat ? stream_heartbeat : apr_time_from_sec(15);
    apr_time_t next_beat = apr_time_now() + beat;
    stream_event **evs = apr_palloc(r->pool, sizeof(*evs) * STREAM_QUEUE_MAX);

    for (;;) {
        apr_time_t now = apr_time_now();
        apr_interval_time_t wait = next_beat - now;
        int closed = 0, n, i;

        if (wait > STREAM_TICK)
            wait = STREAM_TICK;
        n = take_queue(c, evs, &closed, wait);
        for (i = 0; i < n; i++)
            if (!resumed || !apr_hash_get(resumed, evs[i]->id, APR_HASH_KEY_STRING))
                write_event(r, evs[i]->id, evs[i]->type, evs[i]->data);
        release_all(evs, n);
        if (n > 0) {
            if (!flush_ok(r))
                return;
            next_beat = apr_time_now() + beat;
        }
        if (closed || child_stopping() || client_gone(r)
            || (until && apr_time_now() >= until))
            return;
        if (apr_time_now() >= next_beat) {
            ap_rputs(": heartbeat\n\n", r);
            if (!flush_ok(r))
                return;
            next_beat = apr_time_now() + beat;
        }
    }
}

int bl_stream_serve(request_rec *r, const char *channel, bl_stream_resume_fn *resume,
                    void *resume_ctx)
{
    stream_client *c = apr_pcalloc(r->pool, sizeof(*c));
    const char *last = last_event_id(r);
    resume_buffer rb = {r->pool, NULL, NULL};
    reg_status st;
    int i;

    if (last && !*last)
        return bl_send_validation_error(r, "Last-Event-ID",
                                        "Last-Event-ID must be 1 to 128 printable characters");
    c->channel = apr_pstrdup(r->pool, channel);
    if (apr_thread_cond_create(&c->wake, r->pool) != APR_SUCCESS)
        return answer_busy(r, "live stream unavailable");
    st = client_register(c);
    if (st == REG_FULL)
        return answer_busy(r, "too many open streams on this server, retry later");
    if (st == REG_DOWN)
        return answer_busy(r, "live streams are unavailable (Redis)");
    apr_pool_cleanup_register(r->pool, c, client_unregister, apr_pool_cleanup_null);
    /* registered first, so nothing published while the database is read is
     * lost; what both bring is sent once */
    if (last && resume) {
        rb.events = apr_array_make(r->pool, 16, sizeof(stream_event));
        rb.ids = apr_hash_make(r->pool);
        if (resume(r, resume_ctx, last, resume_emit, &rb) != 0)
            return OK;    /* the callback answered (503, 400) */
    }
    send_head(r);
    if (rb.events)
        for (i = 0; i < rb.events->nelts; i++) {
            stream_event *ev = &APR_ARRAY_IDX(rb.events, i, stream_event);
            write_event(r, ev->id, ev->type, ev->data);
        }
    if (!flush_ok(r))
        return OK;
    pump(r, c, rb.ids, bl_current_user(r) ? bl_current_user(r)->expires : 0);
    return OK;
}

/* ---------------------------------------------------------------- publishing */

static int valid_token(const char *s, size_t max)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || n >= max)
            return 0;
    return 1;
}

apr_status_t bl_stream_publish(server_rec *s, apr_pool_t *p, const char *channel,
                               const char *event_id, const char *event_type,
                               const char *data_json)
{
    const char *argv[3];
    size_t argvlen[3];
    redisReply *reply;

    if (!channel || !*channel || !valid_token(channel, 200)
        || !event_id || !valid_token(event_id, STREAM_ID_MAX)
        || !event_type || !valid_token(event_type, 64) || !data_json)
        return APR_EINVAL;
    argv[0] = "PUBLISH";
    argv[1] = apr_pstrcat(p, STREAM_PREFIX, channel, NULL);
    argv[2] = apr_pstrcat(p, event_id, "\n", event_type, "\n", data_json, NULL);
    argvlen[0] = 7;
    argvlen[1] = strlen(argv[1]);
    argvlen[2] = strlen(argv[2]);
    reply = bl_redis_server_command(s, p, 3, argv, argvlen);
    return reply && reply->type == REDIS_REPLY_INTEGER ? APR_SUCCESS : APR_EGENERAL;
}
