/* beautiful.h — the API mod_beautiful_core exports to the domain modules.
 *
 * mod_beautiful_core is LoadModule'd first (after mod_dbd); httpd loads
 * modules with RTLD_GLOBAL so the functions below resolve at load time.
 *
 * Conventions:
 *  - Functions that answer the client (bl_send_*) write the whole envelope
 *    and return OK, so a handler can `return bl_send_error(...)`.
 *  - Functions that may fail on a dependency (database, Redis) answer the
 *    client themselves (503 + Retry-After) when they return failure, unless
 *    their comment says otherwise; the handler then just returns OK.
 *  - Everything is allocated from r->pool unless stated.
 */
#ifndef BEAUTIFUL_H
#define BEAUTIFUL_H

#include <httpd.h>
#include <http_config.h>
#include <apr_dbd.h>
#include <mod_dbd.h>
#include <json-c/json.h>
#include <hiredis/hiredis.h>

#define BL_API_PREFIX "/api/v1"

/* ---------------------------------------------------------------- users */

typedef struct {
    const char *id;          /* users.id (uuid) — the JWT "sub" */
    const char *role;        /* patient | caregiver | doctor | admin */
    const char *session_id;  /* sessions.id — the JWT "sid" */
    const char *token_id;    /* the JWT "jti" */
    apr_time_t expires;      /* the JWT "exp" */
} bl_user;

/* The authenticated caller, or NULL. On routes that do not require a user
 * (Require all granted) a presented token is still verified lazily here, so
 * optional authentication works; an invalid token then counts as none. */
const bl_user *bl_current_user(request_rec *r);

/* Answers 401 (no user) unless there is a user; returns the user or NULL
 * (after answering). For handlers that need a user on public locations. */
const bl_user *bl_require_user(request_rec *r);

/* ---------------------------------------------------------------- tokens */

/* Signs an access token (typ "at+jwt") with the configured signing key:
 * iss/aud from config, sub, role, sid, jti (fresh), iat, nbf, exp
 * (BeautifulAccessTokenTTL). Returns NULL on failure. */
const char *bl_issue_access_token(request_rec *r, const char *user_id,
                                  const char *role, const char *session_id,
                                  apr_time_t *expires);

/* The JWKS document (all configured keys) as JSON text, built once at
 * start-up. */
const char *bl_jwks_json(request_rec *r);

/* Sessions live in Redis as "bl:sess:<sid>" -> user id, with a TTL.
 * The authn hook refuses an access token whose sid key is gone.
 * Return APR_SUCCESS, or an error (Redis down; nothing answered). */
apr_status_t bl_session_store(request_rec *r, const char *session_id,
                              const char *user_id, apr_interval_time_t ttl);
apr_status_t bl_session_revoke(request_rec *r, const char *session_id);

/* ---------------------------------------------------------------- database */

/* The request's pooled mod_dbd connection (ap_dbd_acquire), or NULL after
 * answering 503 with Retry-After and counting a DB error. */
ap_dbd_t *bl_db(request_rec *r);

/* A prepared statement to register at start-up. SQL uses apr_dbd
 * placeholders (%s); every argument is passed as text and cast in SQL. */
typedef struct {
    const char *label;       /* server-wide unique: "<module>_<name>" */
    const char *sql;
} bl_statement;

/* Registers statements (array ended by {NULL, NULL}) with mod_dbd on the
 * main server; virtual hosts with the same DBDParams share its connection
 * group and so its statements. Call from a post_config hook ordered before
 * mod_dbd's:
 *   static const char *const succ[] = {"mod_dbd.c", NULL};
 *   ap_hook_post_config(my_post_config, NULL, succ, APR_HOOK_MIDDLE);   */
void bl_db_prepare_all(server_rec *s, const bl_statement *statements);

/* Outside a request (background tasks): a pooled connection, or NULL
 * (counted; nothing logged); give it back with bl_db_close. Like bl_db, it
 * comes with the registered statements prepared, also after PostgreSQL
 * restarted under it. */
ap_dbd_t *bl_db_open(apr_pool_t *p, server_rec *s);
void bl_db_close(server_rec *s, ap_dbd_t *db);

/* Runs a prepared SELECT; rows fetched whole (random access).
 * Returns the results or NULL after answering 503 (DB error, counted and
 * logged without the arguments). nargs/args are the text parameters;
 * NULL in args is SQL NULL. */
apr_dbd_results_t *bl_db_select(request_rec *r, ap_dbd_t *db, const char *label,
                                int nargs, const char *const *args);

/* Runs a prepared INSERT/UPDATE/DELETE. Returns the number of affected rows,
 * or -1 after answering (409 CONFLICT for a unique violation, 400 for a
 * foreign-key/check violation, 503 otherwise). */
int bl_db_exec(request_rec *r, ap_dbd_t *db, const char *label,
               int nargs, const char *const *args);

/* Convenience for statements returning one text column in at most one row
 * (e.g. SELECT json_build_object(...)). Returns APR_SUCCESS with *value set
 * (NULL when no row or SQL NULL), or an error after answering 503. */
apr_status_t bl_db_value(request_rec *r, ap_dbd_t *db, const char *label,
                         int nargs, const char *const *args, const char **value);

/* Column col of row as text, or NULL for SQL NULL. */
const char *bl_db_get(request_rec *r, ap_dbd_t *db, apr_dbd_row_t *row, int col);

/* Transactions on the request's connection. begin/commit return non-zero
 * on failure, and then the client has its answer: the one a failing
 * bl_db_exec/bl_db_select gave, else 503 (also when only a quiet statement
 * such as bl_audit or bl_outbox_add failed), or for a deferred constraint
 * that fails at COMMIT 409/400 as bl_db_exec. They never write a second
 * answer over one already sent. rollback never answers. A transaction left
 * open at the end of a request is rolled back. */
int bl_db_begin(request_rec *r, ap_dbd_t *db);
int bl_db_commit(request_rec *r, ap_dbd_t *db);
void bl_db_rollback(request_rec *r, ap_dbd_t *db);

/* ---------------------------------------------------------------- redis */

/* Runs one command on the child's pooled Redis connection (hiredis,
 * reconnecting after Redis restarts). The reply is freed with r->pool.
 * Returns NULL when Redis is unreachable (counted, logged; nothing
 * answered) — the caller decides between failing open and bl_send_unavailable. */
redisReply *bl_redis_command(request_rec *r, int argc, const char **argv,
                             const size_t *argvlen);
/* The same outside a request (background tasks): logs on s, the reply is
 * freed with p. */
redisReply *bl_redis_server_command(server_rec *s, apr_pool_t *p, int argc,
                                    const char **argv, const size_t *argvlen);

/* ---------------------------------------------------------------- responses */

/* Success envelope: {"success":true,"message":...,"data":<data_json>,
 * "meta":<meta_json>,"timestamp":...}. data_json and meta_json are JSON
 * text (NULL omits them; message NULL omits it). Sets Content-Type. */
int bl_send_data(request_rec *r, int status, const char *message,
                 const char *data_json, const char *meta_json);
/* As bl_send_data with data serialised from a json-c object. */
int bl_send_object(request_rec *r, int status, const char *message, json_object *data);
/* 204, no body. */
int bl_send_no_content(request_rec *r);
/* Error envelope {"success":false,"error":{"code","message","details"},...}.
 * details may be NULL. */
int bl_send_error(request_rec *r, int status, const char *code,
                  const char *message, const char *details);
/* 503 SERVICE_UNAVAILABLE with Retry-After. */
int bl_send_unavailable(request_rec *r, const char *what);
/* Pagination meta {"page","per_page","total","total_pages"} as JSON text. */
const char *bl_pagination_meta(request_rec *r, int page, int per_page, long total);
/* Reads page / per_page from the query string (defaults 1 / 20, per_page
 * at most 100). Returns 0, or answers 400 and returns -1. */
int bl_pagination_args(request_rec *r, int *page, int *per_page);

/* Error codes (stable; listed in docs/openapi.yaml). */
#define BL_ERR_VALIDATION        "VALIDATION_ERROR"
#define BL_ERR_MALFORMED_JSON    "MALFORMED_JSON"
#define BL_ERR_UNAUTHORIZED      "UNAUTHORIZED"
#define BL_ERR_FORBIDDEN         "FORBIDDEN"
#define BL_ERR_NOT_FOUND         "NOT_FOUND"
#define BL_ERR_METHOD_NOT_ALLOWED "METHOD_NOT_ALLOWED"
#define BL_ERR_CONFLICT          "CONFLICT"
#define BL_ERR_TOO_LARGE         "PAYLOAD_TOO_LARGE"
#define BL_ERR_UNSUPPORTED_MEDIA "UNSUPPORTED_MEDIA_TYPE"
#define BL_ERR_RATE_LIMITED      "RATE_LIMITED"
#define BL_ERR_UNAVAILABLE       "SERVICE_UNAVAILABLE"
#define BL_ERR_INTERNAL          "INTERNAL_ERROR"

/* ---------------------------------------------------------------- requests */

/* Reads the body (Content-Length or chunked) up to max_bytes
 * (0: BeautifulMaxBodySize). Answers 413 when larger. Returns 0 or -1. */
int bl_read_body(request_rec *r, apr_size_t max_bytes, const char **body,
                 apr_size_t *len);

/* Requires Content-Type application/json (415), reads the body (413),
 * parses it as an object with depth/UTF-8 limits (400 MALFORMED_JSON naming
 * the problem). Returns the object or NULL after answering. */
json_object *bl_read_json(request_rec *r);

/* Answers 400 VALIDATION_ERROR for a typed-getter failure (message from
 * common/json.h, details "field: <name>"). */
int bl_send_validation_error(request_rec *r, const char *field, const char *message);

/* The caller's IP (r->useragent_ip: behind trusted proxies the client
 * from X-Forwarded-For, set by BeautifulTrustedProxy or mod_remoteip) and
 * User-Agent (may be NULL). */
const char *bl_client_ip(request_rec *r);
const char *bl_user_agent(request_rec *r);

/* The route template for metrics and logs ("/users/profile/:id"). */
void bl_set_route(request_rec *r, const char *route_template);

/* A module's route for r (common/router.h, built at start-up; the path
 * after /api/v1): sets the route template and refuses a cross-site cookie
 * write. Returns the route's handler with *params set, or NULL after
 * answering 404, 405 (with Allow) or 403. */
typedef struct bl_router bl_router;
void *bl_route(request_rec *r, const bl_router *router, apr_table_t **params);

/* True when the request is cookie-authenticated and state-changing and its
 * Origin (or Referer) is not an allowed origin: answers 403 and returns 1. */
int bl_csrf_refused(request_rec *r);

/* ---------------------------------------------------------------- rate limit */

/* Counts one hit for key in bucket name (fixed window, Redis, shared by all
 * children and hosts). Returns 0 when allowed; when over the limit answers
 * 429 with Retry-After and RateLimit-* headers and returns 1; when Redis is
 * down answers 503 and returns -1. */
int bl_rate_limit(request_rec *r, const char *name, const char *key,
                  int limit, int window_sec);

/* ---------------------------------------------------------------- audit */

/* Writes an audit_logs row: actor (current user or actor_id), action
 * ("auth.login"), resource type and id, outcome ("success" | "failure" |
 * "denied"), details (JSON text or NULL), IP, user agent, request id.
 * With db == NULL the request's connection is acquired. Returns 0, or -1
 * (logged; nothing answered) — callers in a transaction roll back and
 * answer, or go on to bl_db_commit, which then fails and answers 503. */
int bl_audit(request_rec *r, ap_dbd_t *db, const char *actor_id,
             const char *action, const char *resource_type,
             const char *resource_id, const char *outcome,
             const char *details_json);

/* ---------------------------------------------------------------- outbox */

/* Inserts a notifications row (outbox) on db — inside the caller's
 * transaction — for the delivery worker: channel "email" | "sms" | "push" |
 * "in_app", a type ("auth.verify_email"), title, body and data (JSON text
 * or NULL). Returns 0 or -1 (logged; nothing answered). */
int bl_outbox_add(request_rec *r, ap_dbd_t *db, const char *user_id,
                  const char *channel, const char *type, const char *title,
                  const char *body, const char *data_json);

/* ---------------------------------------------------------------- tasks */

/* A periodic background task (reminders, delivery, cleanup). It runs
 * outside any request, so it opens its own connection with ap_dbd_open(pool,
 * s) and closes it with ap_dbd_close. pool is cleared after each run. It
 * cannot fail: it logs, and the next run tries again. */
typedef void bl_task_fn(server_rec *s, void *data, apr_pool_t *pool);

/* Runs fn(s, data, pool) every interval in one httpd child per host, on a
 * mod_watchdog singleton instance of its own named name (unique), so a slow
 * task never delays another. The first run comes one interval after the
 * child takes the task, not at once: mod_dbd's child_init may not have run
 * yet. A task meant to run soon after start-up but rarely passes a short
 * interval and keeps its own schedule (core's partition task). Singleton
 * is per host only: claim work in the database (FOR UPDATE SKIP LOCKED) to
 * stay exactly-once across hosts.
 *
 * Call from a post_config hook ordered before mod_watchdog's, which sets up
 * only the instances registered by then (a later one makes every child
 * crash), and before mod_dbd's when the task's statements are registered
 * there too:
 *   static const char *const succ[] = {"mod_dbd.c", "mod_watchdog.c", NULL};
 *   ap_hook_post_config(my_post_config, NULL, succ, APR_HOOK_MIDDLE);
 * In the first, configuration-checking pass it registers nothing. data
 * must live as long as pconf. Returns OK, or HTTP_INTERNAL_SERVER_ERROR
 * after logging (no mod_watchdog, name taken, registration failed). */
int bl_task_register(apr_pool_t *pconf, server_rec *s, const char *name,
                     apr_interval_time_t interval, bl_task_fn *fn, void *data);

/* ---------------------------------------------------------------- trace */

/* The W3C traceparent for calls this request makes to outside services
 * (bl_http_request.traceparent): the caller's trace, or one the request
 * started, with the request's own span as parent. The trace id is in the
 * environment as BL_TRACE_ID for log formats. NULL only when no random
 * bytes could be had (http_client then starts a trace of its own). */
const char *bl_traceparent(request_rec *r);

/* ---------------------------------------------------------------- clock */

/* The time that schedules and windows are judged by (reminders due, a
 * chat message's edit window, a video session's reminder). Pass it to SQL
 * as a parameter (bl_time_param) instead of calling now() wherever the
 * answer depends on the time, so that one clock rules both.
 *
 * In production builds this is apr_time_now(). Builds configured with
 * --enable-test-clock (scripts/check's) also honour BeautifulTestClock
 * FILE: while FILE holds an RFC 3339 UTC time, that is the time for every
 * request and background task of every child; a request's X-BL-Test-Now
 * header (same format) overrides it for that request only. */
apr_time_t bl_now(request_rec *r);
/* The same outside a request (background tasks). */
apr_time_t bl_server_now(server_rec *s);
/* t as RFC 3339 UTC with microseconds ("2026-03-08T13:00:00.000000Z"),
 * for a timestamptz parameter. */
const char *bl_time_param(apr_pool_t *p, apr_time_t t);
/* Parses RFC 3339 ("2026-03-08T08:00:00Z", "...T08:00:00.5-05:00").
 * Returns 0 with *out set, or -1. */
int bl_time_parse(const char *text, apr_time_t *out);

/* ---------------------------------------------------------------- config */

/* Settings other modules read (from BeautifulPublicBaseURL etc.). */
const char *bl_public_base_url(request_rec *r);
int bl_access_token_ttl(request_rec *r);   /* seconds */
int bl_refresh_token_ttl(request_rec *r);  /* seconds */
/* Name of the cookie carrying the access / refresh token
 * ("__Host-bl_at" / "__Host-bl_rt"). */
#define BL_ACCESS_COOKIE  "__Host-bl_at"
#define BL_REFRESH_COOKIE "__Host-bl_rt"

/* ---------------------------------------------------------------- metrics */

/* Notification delivery, shown on /metrics as
 * beautiful_notifications_total{channel,outcome} (channel email | sms |
 * push | in_app; outcome sent | retry | failed | skipped; other values are
 * ignored) and beautiful_notifications_queued{channel,status} (status
 * pending | sending | failed), a gauge the delivery worker sets. Shared
 * memory, summed across children; safe from any thread. */
void bl_metrics_count_notification(const char *channel, const char *outcome);
void bl_metrics_set_notification_queue(const char *channel, const char *status, long n);

/* A domain module's own series on /metrics, summed across children and
 * kept across graceful restarts: series is its Prometheus text, "name" or
 * "name{label=\"value\"}" (at most 95 bytes), with label values from a
 * fixed set (an enum, a plan code, a model name from config), never from
 * a request. Counters add n; gauges are set. Safe in requests and in
 * background tasks; never blocks. At most 256 series in all: updates of
 * others are dropped and counted in beautiful_metrics_dropped_total. */
void bl_metrics_count(const char *series, apr_uint64_t n);
void bl_metrics_gauge(const char *series, apr_int64_t value);

/* ---------------------------------------------------------------- live streams */

/* Server-Sent Events fed by Redis pub/sub (modules/core/stream.c).
 *
 * A stream is a GET that keeps its worker thread: size MaxRequestWorkers
 * for the streams you expect. Each child holds one Redis subscription
 * (PSUBSCRIBE bl:stream:*) and fans messages out to its own open streams,
 * so a message published on any host reaches every client of its channel.
 *
 * Channels are names a module chooses, printable ASCII without spaces, at
 * most 200 bytes, e.g. "notify:<user id>" or "chat:<conversation id>".
 * Event ids are the module's (at most 128 printable bytes, no spaces) and
 * must let its resume callback find what came after one. */

/* Hands one missed event to the stream (id, SSE event type, data as JSON
 * text; data may contain newlines). Returns 0. */
typedef int bl_stream_emit_fn(void *emit_ctx, const char *event_id,
                              const char *event_type, const char *data_json);

/* Reads from the database the events of the stream after last_event_id,
 * in order, and passes each to emit. Called once, after the stream is
 * registered (so nothing published meanwhile is lost; an event both read
 * here and published is sent once) and before any byte of the response.
 * Returns 0, or -1 after answering (bl_send_error 400 for an id it does
 * not recognise, 503 when the database is down). Read a bounded number. */
typedef int bl_stream_resume_fn(request_rec *r, void *ctx, const char *last_event_id,
                                bl_stream_emit_fn *emit, void *emit_ctx);

/* Serves a live stream of channel to the caller and returns when it ends
 * (always OK: it answers itself). The handler checks who may listen
 * first. It answers 503 with Retry-After when the child already has
 * BeautifulStreamMaxPerChild streams open or Redis is unreachable, and
 * 400 for a malformed Last-Event-ID. The client's last event id comes
 * from the Last-Event-ID header (EventSource reconnects) or the
 * last_event_id query parameter; resume (may be NULL) is called only when
 * there is one. Then: "text/event-stream", a "retry:" hint, the resumed
 * events, each published event as "id:", "event:", "data:" lines, a
 * ": heartbeat" comment every BeautifulStreamHeartbeat (default 15 s)
 * when idle. The stream ends when the client disconnects (seen within
 * half a second), when the subscription to Redis is lost (the client
 * reconnects and resumes), when the client falls 256 events behind, when
 * the caller's access token expires (the client reconnects with a fresh
 * one, so a revoked session stops listening), or when the child stops. */
int bl_stream_serve(request_rec *r, const char *channel, bl_stream_resume_fn *resume,
                    void *resume_ctx);

/* Publishes one event to channel on every host (Redis PUBLISH). Call it
 * after the transaction that stored the event committed, so a client that
 * gets it can also read it back. Works inside and outside requests (s:
 * any server_rec; the command's memory comes from p). Returns APR_SUCCESS,
 * APR_EINVAL for an invalid channel, id or type, or APR_EGENERAL when Redis
 * is unreachable (logged; the event reaches clients only by resume). */
apr_status_t bl_stream_publish(server_rec *s, apr_pool_t *p, const char *channel,
                               const char *event_id, const char *event_type,
                               const char *data_json);

/* ---------------------------------------------------------------- Google service accounts */

/* Access tokens for Google APIs (FCM, Calendar) from a service-account
 * JSON file (client_email, private_key, token_uri, project_id): the OAuth
 * 2.0 JWT-bearer grant of RFC 7523, cached per process per scope until a
 * minute before the token expires (modules/core/google_token.c; the
 * assertion is common/google_oauth.c). */
typedef struct bl_google_credentials bl_google_credentials;

/* Reads the file at start-up (a directive handler or post_config, as root:
 * the file can stay readable by root only). NULL with *err (never any key
 * material) on failure. */
bl_google_credentials *bl_google_credentials_load(apr_pool_t *pconf, const char *path,
                                                  const char **err);
const char *bl_google_project_id(const bl_google_credentials *c);   /* may be NULL */
const char *bl_google_client_email(const bl_google_credentials *c);

/* A Bearer token for scope ("https://www.googleapis.com/auth/firebase.messaging"):
 * the cached one, or a new one from token_uri (bl_http_perform, 10 s, one
 * retry). Thread-safe; concurrent callers wait for one exchange. NULL with
 * *err (short, no secrets) when the exchange fails. Memory from p. */
const char *bl_google_access_token(apr_pool_t *p, server_rec *s, bl_google_credentials *c,
                                   const char *scope, const char **err);

/* Drops the cached token of scope, e.g. after the API answered 401. */
void bl_google_token_invalidate(bl_google_credentials *c, const char *scope);

#endif
