/* Internal interfaces between the files of mod_beautiful_core.
 * Nothing here is for domain modules: they use include/beautiful.h. */
#ifndef BL_CORE_PRIVATE_H
#define BL_CORE_PRIVATE_H

#include "beautiful.h"
#include "jwt.h"
#include <apr_tables.h>

extern module AP_MODULE_DECLARE_DATA beautiful_core_module;

/* Server-wide settings (BeautifulRedis, BeautifulJWT*, BeautifulCORSOrigin ...). */
typedef struct {
    const char *redis_host;
    int redis_port;
    apr_interval_time_t redis_timeout;
    bl_jwt_keyset *jwt_keys;          /* loaded from BeautifulJWTKeyFile at config time */
    const char *jwks_json;            /* jwt_keys as a JWKS, built at post_config */
    const char *jwt_issuer;
    const char *jwt_audience;
    int jwt_leeway_sec;
    int access_token_ttl;             /* seconds */
    int refresh_token_ttl;            /* seconds */
    apr_array_header_t *cors_origins; /* const char * exact origins */
    apr_size_t max_body;              /* bytes */
    const char *public_base_url;
    apr_array_header_t *trusted_proxies; /* apr_ipsubnet_t *, BeautifulTrustedProxy */
    int test_echo;                    /* BeautifulTestEcho: -1 unset */
    apr_interval_time_t partition_interval; /* BeautifulPartitionInterval (main server) */
    int partition_months_ahead;       /* BeautifulPartitionMonthsAhead (main server) */
    const char *json_errorlog_path;   /* BeautifulJSONErrorLog */
    apr_file_t *json_errorlog;        /* opened by errorlog_json.c at open_logs */
} bl_server_conf;

/* BeautifulRateLimit name limit window_seconds [key=ip|user] */
typedef enum { BL_RATE_KEY_IP, BL_RATE_KEY_USER } bl_rate_key;
typedef struct {
    const char *name;
    int limit;
    int window_sec;
    bl_rate_key key;
} bl_rate_rule;

/* Per-directory settings. */
typedef struct {
    int api;                          /* BeautifulAPI On: envelope + headers; -1 unset */
    const bl_rate_rule *rate_rule;    /* NULL: none; "BeautifulRateLimit off" clears */
    int rate_rule_set;
    const char *csp;                  /* BeautifulContentSecurityPolicy, or NULL */
} bl_dir_conf;

bl_server_conf *bl_core_server_conf(const server_rec *s);
bl_dir_conf *bl_core_dir_conf(const request_rec *r);
/* Strict decimal in [min, max], nothing else ("10s", "", "+1", "1e3" are
 * refused); 0 on success with *out set, -1 otherwise. */
int bl_parse_long(const char *arg, long min, long max, long *out);

/* envelope.c — now as RFC 3339 UTC with Z, second precision: the
 * "timestamp" of every response body. */
const char *bl_timestamp_now(apr_pool_t *p);

/* metrics.c — Prometheus counters in shared memory, summed across children. */
/* r->notes key holding the route template set by bl_set_route(). */
#ifndef BL_NOTE_ROUTE
#define BL_NOTE_ROUTE "bl-route"
#endif
apr_status_t bl_metrics_post_config(apr_pool_t *pconf, server_rec *s);
void bl_metrics_child_init(apr_pool_t *pchild, server_rec *s);

int bl_metrics_log_transaction(request_rec *r);   /* log_transaction hook */
int bl_metrics_handler(request_rec *r);           /* handler "beautiful-metrics" */
void bl_metrics_count_db_error(void);
void bl_metrics_count_redis_error(void);

/* Readies a connection from mod_dbd for use (db.c): error verbosity, a
 * reconnect when the server closed it, its statements prepared again on a
 * new session. bl_db, bl_db_open and the health check call it. */
void bl_db_ready_session(server_rec *s, ap_dbd_t *db);

/* health.c — handler "beautiful-health": GET /health and GET /health/ready. */
int bl_health_handler(request_rec *r);
/* 1 when the database answers SELECT 1 / Redis answers PING. */
int bl_health_database_ok(request_rec *r);
int bl_health_redis_ok(request_rec *r);

/* partitions.c — the watchdog task keeping monthly partitions ahead.
 * Called from a post_config ordered before mod_dbd's and mod_watchdog's. */
int bl_partitions_post_config(apr_pool_t *pconf, server_rec *s);
/* audit_seal.c: the background task sealing new audit_logs rows. */
int bl_audit_seal_post_config(apr_pool_t *pconf, server_rec *s);

/* tasks.c — from core's child_init: running tasks finish before the
 * child's pools (mod_dbd's connections) go. */
void bl_tasks_child_init(apr_pool_t *pchild);

/* headers.c — 1 for a CORS preflight (OPTIONS with
 * Access-Control-Request-Method). */
int bl_is_preflight(const request_rec *r);

/* ratelimit.c */
const char *bl_cmd_rate_limit(cmd_parms *cmd, void *dirconf, int argc,
                              char *const argv[]);
int bl_rate_limit_fixups(request_rec *r);        /* fixups hook: applies rate_rule */

#endif
