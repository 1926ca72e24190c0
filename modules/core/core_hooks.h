/* Hooks and per-request state shared by the files of mod_beautiful_core
 * (config, envelope, body, headers, authn, db, redis, audit). The files of
 * metrics/health/ratelimit use core_private.h only. */
#ifndef BL_CORE_HOOKS_H
#define BL_CORE_HOOKS_H

#include "core_private.h"
#include <http_request.h>

#define BL_AUTH_TYPE "Beautiful"
/* The challenge of a 401 (authn.c adds error="invalid_token" to it). */
#define BL_WWW_AUTH  "Bearer realm=\"beautiful\""

/* r->notes read by the error envelope filter when httpd answers an error
 * itself: a hook returns the status and leaves the code and message here. */
#define BL_NOTE_ERROR_CODE    "bl-error-code"
#define BL_NOTE_ERROR_MESSAGE "bl-error-message"
#define BL_NOTE_ERROR_DETAILS "bl-error-details"
#define BL_ENV_REQUEST_ID     "BL_REQUEST_ID"
#define BL_ENV_TRACE_ID       "BL_TRACE_ID"

/* Per-request state of core, in r->request_config. */
typedef struct {
    int auth_done;           /* token looked at (authn hook or lazily) */
    const bl_user *user;     /* verified caller or NULL */
    int from_cookie;         /* the token came from the access cookie */
    int tx_open;             /* bl_db_begin ran, no commit/rollback yet */
    int tx_failed;           /* a statement failed inside the transaction */
    ap_dbd_t *tx_db;
    int answered;            /* a bl_send_* wrote the response */
} bl_req_state;

bl_req_state *bl_core_req_state(request_rec *r);

/* config.c */
extern const command_rec bl_core_cmds[];
void *bl_core_create_server_conf(apr_pool_t *p, server_rec *s);
void *bl_core_merge_server_conf(apr_pool_t *p, void *basev, void *addv);
void *bl_core_create_dir_conf(apr_pool_t *p, char *dir);
void *bl_core_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
int bl_core_check_config(apr_pool_t *pconf, server_rec *s);

/* clock.c — BeautifulTestClock (refused unless built with BL_TEST_CLOCK) */
const char *bl_cmd_test_clock(cmd_parms *cmd, void *dc, const char *arg);
int bl_core_test_echo_enabled(const server_rec *s);
int bl_core_api_enabled(const request_rec *r);

/* envelope.c */
void bl_envelope_register(void);
void bl_note_error(request_rec *r, const char *code, const char *message);
const char *bl_envelope_error_json(request_rec *r, int status, const char *code,
                                   const char *message, const char *details);
void bl_insert_error_filter(request_rec *r);
int bl_api_handler(request_rec *r);          /* "beautiful-api": unknown route */

/* headers.c */
int bl_headers_post_read_request(request_rec *r);
int bl_headers_header_parser(request_rec *r);
void bl_set_security_headers(request_rec *r);
/* origin: listed by BeautifulCORSOrigin, or BeautifulPublicBaseURL's own. */
int bl_origin_allowed(request_rec *r, const char *origin);
/* The scheme://host[:port] of url, or NULL when url is NULL or has no "://". */
const char *bl_url_origin(apr_pool_t *p, const char *url);

/* proxy.c — BeautifulTrustedProxy */
const char *bl_cmd_trusted_proxy(cmd_parms *cmd, void *dummy, const char *arg);
int bl_proxy_post_read_request(request_rec *r);
/* 1 when a trusted proxy says the client came over https. */
int bl_proxy_forwarded_https(request_rec *r);

/* authn.c */
int bl_check_authn(request_rec *r);
int bl_note_auth_failure(request_rec *r, const char *type);
void bl_authz_register(apr_pool_t *p);

/* db.c */
void bl_db_retrieve_fns(void);
void bl_db_prepare_core(server_rec *s);
/* As bl_db / bl_db_exec, but answer nothing (audit, outbox). */
ap_dbd_t *bl_db_quiet(request_rec *r);
int bl_db_exec_quiet(request_rec *r, ap_dbd_t *db, const char *label,
                     int nargs, const char *const *args);

/* token_cache.c — verified access tokens, per child. The session is never
 * cached: callers still check it on every request. */
#define BL_NOTE_TOKEN_CACHED "bl-token-cached"   /* r->notes: "1" on a hit */
void bl_token_cache_child_init(apr_pool_t *pchild, server_rec *s);
/* The claims of token when this child verified it for scope (the server
 * config) and its exp is still ahead, as a copy in r->pool; else NULL. */
const bl_user *bl_token_cache_get(request_rec *r, const void *scope, const char *token);
void bl_token_cache_put(request_rec *r, const void *scope, const char *token,
                        const bl_user *u);

/* request_id.c — a random v4 UUID for X-Request-ID, from a per-child
 * block of random bytes. */
void bl_request_id_child_init(apr_pool_t *pchild);
const char *bl_request_id_new(apr_pool_t *p);
/* n (at most BL_CHILD_RANDOM_MAX) random bytes from the child's block,
 * drawn from OpenSSL 4 KiB at a time; 1 on success. Request ids and trace
 * ids take theirs here instead of a RAND_bytes call per request. */
#define BL_CHILD_RANDOM_MAX 32
int bl_child_random(unsigned char *b, apr_size_t n);

/* storage_map.c — a request for a beautiful-* handler skips httpd's
 * <Directory> and <Files> walk (it maps to no file), as mod_proxy does. */
int bl_storage_translate_name(request_rec *r);
int bl_storage_map_to_storage(request_rec *r);

/* redis.c */
void bl_redis_child_init(apr_pool_t *pchild, server_rec *s);

/* stream.c — the child's Redis subscriber and stream registry; directives
 * BeautifulStreamMaxPerChild and BeautifulStreamHeartbeat. */
void bl_stream_child_init(apr_pool_t *pchild, server_rec *s);
int bl_stream_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
const char *bl_cmd_stream_max(cmd_parms *cmd, void *dc, const char *arg);
const char *bl_cmd_stream_heartbeat(cmd_parms *cmd, void *dc, const char *arg);

/* echo.c — "beautiful-echo", test-only (BeautifulTestEcho On). */
int bl_echo_handler(request_rec *r);

/* logformat.c: "%{item}J" for mod_log_config (pre_config, after it). */
int bl_logformat_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);

/* logformat.c: len bytes of text JSON-escaped into out (cap bytes, NUL
 * included; cut short to fit); returns the length written. */
apr_size_t bl_log_json_escape(char *out, apr_size_t cap, const char *text, apr_size_t len);

/* errorlog_json.c: BeautifulJSONErrorLog's hooks. */
void bl_errorlog_json_register(void);

/* trace.c */
int bl_trace_post_read_request(request_rec *r);

#endif
