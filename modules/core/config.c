/* config.c — directives of mod_beautiful_core and the settings getters.
 *
 * Server settings start "unset" (NULL, -1, 0) so a virtual host inherits
 * what it does not set; defaults are filled in post_config
 * (bl_core_check_config), after httpd has merged every virtual host. */
#include "core_hooks.h"

#include <http_log.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_DEFAULT_REDIS_HOST   "127.0.0.1"
#define BL_DEFAULT_REDIS_PORT   6379
#define BL_DEFAULT_REDIS_MS     1000
#define BL_DEFAULT_ACCESS_TTL   900
#define BL_DEFAULT_REFRESH_TTL  (30 * 24 * 3600)
#define BL_DEFAULT_MAX_BODY     (1024 * 1024)
#define BL_DEFAULT_LEEWAY       30
#define BL_DEFAULT_PARTITION_INTERVAL apr_time_from_sec(3600)
#define BL_DEFAULT_MONTHS_AHEAD 3
#define BL_MAX_MONTHS_AHEAD     120   /* create_monthly_partitions' own limit */

bl_server_conf *bl_core_server_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &beautiful_core_module);
}

bl_dir_conf *bl_core_dir_conf(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &beautiful_core_module);
}

int bl_core_api_enabled(const request_rec *r)
{
    const bl_dir_conf *dc = bl_core_dir_conf(r);
    return dc && dc->api == 1;
}

int bl_core_test_echo_enabled(const server_rec *s)
{
    return bl_core_server_conf(s)->test_echo == 1;
}

void *bl_core_create_server_conf(apr_pool_t *p, server_rec *s)
{
    bl_server_conf *sc = apr_pcalloc(p, sizeof(*sc));
    sc->redis_timeout = -1;
    sc->jwt_leeway_sec = -1;
    sc->access_token_ttl = -1;
    sc->refresh_token_ttl = -1;
    sc->test_echo = -1;
    return sc;
}

void *bl_core_merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    const bl_server_conf *base = basev, *add = addv;
    bl_server_conf *sc = apr_pcalloc(p, sizeof(*sc));

    sc->redis_host = add->redis_host ? add->redis_host : base->redis_host;
    sc->redis_port = add->redis_port ? add->redis_port : base->redis_port;
    sc->redis_timeout = add->redis_timeout >= 0 ? add->redis_timeout : base->redis_timeout;
    sc->jwt_keys = add->jwt_keys ? add->jwt_keys : base->jwt_keys;
    sc->jwt_issuer = add->jwt_issuer ? add->jwt_issuer : base->jwt_issuer;
    sc->jwt_audience = add->jwt_audience ? add->jwt_audience : base->jwt_audience;
    sc->jwt_leeway_sec = add->jwt_leeway_sec >= 0 ? add->jwt_leeway_sec : base->jwt_leeway_sec;
    sc->access_token_ttl = add->access_token_ttl > 0 ? add->access_token_ttl
                                                     : base->access_token_ttl;
    sc->refresh_token_ttl = add->refresh_token_ttl > 0 ? add->refresh_token_ttl
                                                       : base->refresh_token_ttl;
    sc->cors_origins = add->cors_origins ? add->cors_origins : base->cors_origins;
    sc->max_body = add->max_body ? add->max_body : base->max_body;
    sc->public_base_url = add->public_base_url ? add->public_base_url
                                               : base->public_base_url;
    sc->trusted_proxies = add->trusted_proxies ? add->trusted_proxies
                                               : base->trusted_proxies;
    sc->test_echo = add->test_echo >= 0 ? add->test_echo : base->test_echo;
    sc->partition_interval = add->partition_interval ? add->partition_interval
                                                     : base->partition_interval;
    sc->partition_months_ahead = add->partition_months_ahead ? add->partition_months_ahead
                                                             : base->partition_months_ahead;
    sc->json_errorlog_path = add->json_errorlog_path ? add->json_errorlog_path
                                                     : base->json_errorlog_path;
    return sc;
}

void *bl_core_create_dir_conf(apr_pool_t *p, char *dir)
{
    bl_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));
    dc->api = -1;
    return dc;
}

void *bl_core_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const bl_dir_conf *base = basev, *add = addv;
    bl_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));
    dc->api = add->api >= 0 ? add->api : base->api;
    dc->rate_rule_set = add->rate_rule_set || base->rate_rule_set;
    dc->rate_rule = add->rate_rule_set ? add->rate_rule : base->rate_rule;
    dc->csp = add->csp ? add->csp : base->csp;
    return dc;
}

/* The keys do not change until a restart: their JWKS is built once. */
static int build_jwks(apr_pool_t *pconf, server_rec *s, bl_server_conf *sc)
{
    sc->jwks_json = sc->jwt_keys ? bl_jwt_keyset_jwks(pconf, sc->jwt_keys)
                                 : "{\"keys\":[]}";
    if (!sc->jwks_json) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "cannot build the JWKS of BeautifulJWTKeyFile");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Fills defaults in every server and refuses configurations that cannot
 * work (a key set without issuer/audience cannot verify anything). */
int bl_core_check_config(apr_pool_t *pconf, server_rec *s)
{
    server_rec *sp;

    for (sp = s; sp; sp = sp->next) {
        bl_server_conf *sc = bl_core_server_conf(sp);
        if (!sc->redis_host) sc->redis_host = BL_DEFAULT_REDIS_HOST;
        if (!sc->redis_port) sc->redis_port = BL_DEFAULT_REDIS_PORT;
        if (sc->redis_timeout < 0)
            sc->redis_timeout = apr_time_from_msec(BL_DEFAULT_REDIS_MS);
        if (sc->jwt_leeway_sec < 0) sc->jwt_leeway_sec = BL_DEFAULT_LEEWAY;
        if (sc->access_token_ttl <= 0) sc->access_token_ttl = BL_DEFAULT_ACCESS_TTL;
        if (sc->refresh_token_ttl <= 0) sc->refresh_token_ttl = BL_DEFAULT_REFRESH_TTL;
        if (!sc->max_body) sc->max_body = BL_DEFAULT_MAX_BODY;
        if (!sc->cors_origins) sc->cors_origins = apr_array_make(pconf, 1, sizeof(const char *));
        if (sc->test_echo < 0) sc->test_echo = 0;
        if (!sc->partition_interval) sc->partition_interval = BL_DEFAULT_PARTITION_INTERVAL;
        if (!sc->partition_months_ahead) sc->partition_months_ahead = BL_DEFAULT_MONTHS_AHEAD;
        if (build_jwks(pconf, sp, sc) != OK)
            return HTTP_INTERNAL_SERVER_ERROR;

        if (sc->jwt_keys && (!sc->jwt_issuer || !sc->jwt_audience)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sp,
                         "BeautifulJWTKeyFile is set but BeautifulJWTIssuer or "
                         "BeautifulJWTAudience is missing");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!sc->jwt_keys && sp == s) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, sp,
                         "no BeautifulJWTKeyFile: every access token will be refused");
        }
        else if (sc->jwt_keys && !bl_jwt_keyset_signing_key(sc->jwt_keys) && sp == s) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, sp,
                         "no private key in BeautifulJWTKeyFile: tokens are verified, "
                         "none can be issued here");
        }
    }
    return OK;
}

/* ---------------------------------------------------------------- getters */

const char *bl_public_base_url(request_rec *r)
{
    return bl_core_server_conf(r->server)->public_base_url;
}

int bl_access_token_ttl(request_rec *r)
{
    return bl_core_server_conf(r->server)->access_token_ttl;
}

int bl_refresh_token_ttl(request_rec *r)
{
    return bl_core_server_conf(r->server)->refresh_token_ttl;
}

/* ---------------------------------------------------------------- directives */

int bl_parse_long(const char *arg, long min, long max, long *out)
{
    char *end;
    long v;

    if (!arg || !*arg || !apr_isdigit(*arg))
        return -1;
    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static bl_server_conf *cmd_sconf(cmd_parms *cmd)
{
    return bl_core_server_conf(cmd->server);
}

static const char *cmd_redis(cmd_parms *cmd, void *dummy, int argc, char *const argv[])
{
    bl_server_conf *sc = cmd_sconf(cmd);
    long port, ms = BL_DEFAULT_REDIS_MS;

    if (argc < 2 || argc > 3)
        return "BeautifulRedis takes host port [timeout_ms]";
    if (bl_parse_long(argv[1], 1, 65535, &port))
        return "BeautifulRedis: port must be 1-65535";
    if (argc == 3 && bl_parse_long(argv[2], 1, 60000, &ms))
        return "BeautifulRedis: timeout_ms must be 1-60000";
    sc->redis_host = argv[0];
    sc->redis_port = (int)port;
    sc->redis_timeout = apr_time_from_msec(ms);
    return NULL;
}

/* Keys are loaded here, at configuration time, so a missing or unreadable
 * file stops httpd from starting with a message naming it. */
static const char *cmd_jwt_key(cmd_parms *cmd, void *dummy, const char *path,
                               const char *kid)
{
    bl_server_conf *sc = cmd_sconf(cmd);
    const char *full = ap_server_root_relative(cmd->temp_pool, path);
    const char *err = NULL;

    if (!full)
        return apr_psprintf(cmd->pool, "BeautifulJWTKeyFile: invalid path %s", path);
    if (!sc->jwt_keys)
        sc->jwt_keys = bl_jwt_keyset_create(cmd->pool);
    if (!bl_jwt_keyset_add_pem_file(sc->jwt_keys, full, kid, &err))
        return apr_psprintf(cmd->pool, "BeautifulJWTKeyFile %s: %s", full,
                            err ? err : "cannot load key");
    return NULL;
}

static const char *cmd_string(cmd_parms *cmd, void *dummy, const char *arg)
{
    bl_server_conf *sc = cmd_sconf(cmd);
    const char **slot = (const char **)((char *)sc + (apr_size_t)cmd->info);
    if (!*arg)
        return apr_psprintf(cmd->pool, "%s must not be empty", cmd->cmd->name);
    *slot = arg;
    return NULL;
}

static const char *cmd_seconds(cmd_parms *cmd, void *dummy, const char *arg)
{
    bl_server_conf *sc = cmd_sconf(cmd);
    int *slot = (int *)((char *)sc + (apr_size_t)cmd->info);
    long v;
    long min = (apr_size_t)cmd->info == APR_OFFSETOF(bl_server_conf, jwt_leeway_sec) ? 0 : 1;

    if (bl_parse_long(arg, min, 10L * 365 * 24 * 3600, &v))
        return apr_psprintf(cmd->pool, "%s takes a number of seconds", cmd->cmd->name);
    *slot = (int)v;
    return NULL;
}

static const char *cmd_max_body(cmd_parms *cmd, void *dummy, const char *arg)
{
    long v;
    if (bl_parse_long(arg, 1, 1024L * 1024 * 1024, &v))
        return "BeautifulMaxBodySize takes a number of bytes (1 to 1 GiB)";
    cmd_sconf(cmd)->max_body = (apr_size_t)v;
    return NULL;
}

/* An origin is scheme://host[:port], nothing after. */
static int valid_origin(const char *o)
{
    const char *host;

    if (!strncmp(o, "https://", 8))
        host = o + 8;
    else if (!strncmp(o, "http://", 7))
        host = o + 7;
    else
        return 0;
    if (!*host)
        return 0;
    for (; *host; host++) {
        if (!apr_isalnum(*host) && !strchr(".-:[]", *host))
            return 0;
    }
    return 1;
}

static const char *cmd_cors_origin(cmd_parms *cmd, void *dummy, const char *arg)
{
    bl_server_conf *sc = cmd_sconf(cmd);

    if (!valid_origin(arg))
        return apr_psprintf(cmd->pool, "BeautifulCORSOrigin: '%s' is not an origin "
                            "(scheme://host[:port], no path)", arg);
    if (!sc->cors_origins)
        sc->cors_origins = apr_array_make(cmd->pool, 4, sizeof(const char *));
    APR_ARRAY_PUSH(sc->cors_origins, const char *) = arg;
    return NULL;
}

static const char *cmd_public_url(cmd_parms *cmd, void *dummy, const char *arg)
{
    apr_size_t n = strlen(arg);

    if (strncmp(arg, "https://", 8) && strncmp(arg, "http://", 7))
        return "BeautifulPublicBaseURL must start with https:// or http://";
    while (n > 0 && arg[n - 1] == '/')
        n--;
    cmd_sconf(cmd)->public_base_url = apr_pstrmemdup(cmd->pool, arg, n);
    return NULL;
}

static const char *cmd_test_echo(cmd_parms *cmd, void *dummy, int on)
{
    cmd_sconf(cmd)->test_echo = on;
    return NULL;
}

/* Partition maintenance runs once per host: main server only. */
static const char *cmd_partition_interval(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_interval_time_t t;

    if (err)
        return err;
    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS
        || t < apr_time_from_sec(1) || t > apr_time_from_sec(31L * 24 * 3600))
        return "BeautifulPartitionInterval takes a duration from 1s to 31 days "
               "(e.g. 3600, 30min, 1h)";
    cmd_sconf(cmd)->partition_interval = t;
    return NULL;
}

static const char *cmd_months_ahead(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    long v;

    if (err)
        return err;
    if (bl_parse_long(arg, 1, BL_MAX_MONTHS_AHEAD, &v))
        return "BeautifulPartitionMonthsAhead takes a number of months from 1 to 120";
    cmd_sconf(cmd)->partition_months_ahead = (int)v;
    return NULL;
}

static const char *cmd_api(cmd_parms *cmd, void *dirconf, int on)
{
    ((bl_dir_conf *)dirconf)->api = on;
    return NULL;
}

static const char *cmd_json_errorlog(cmd_parms *cmd, void *dummy, const char *path)
{
    bl_server_conf *sc = ap_get_module_config(cmd->server->module_config,
                                              &beautiful_core_module);

    sc->json_errorlog_path = ap_server_root_relative(cmd->pool, path);
    return sc->json_errorlog_path ? NULL : "BeautifulJSONErrorLog: invalid path";
}

static const char *cmd_csp(cmd_parms *cmd, void *dirconf, const char *policy)
{
    const char *c;

    for (c = policy; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return "BeautifulContentSecurityPolicy must not hold control characters";
    }
    ((bl_dir_conf *)dirconf)->csp = policy;
    return NULL;
}

const command_rec bl_core_cmds[] = {
    AP_INIT_TAKE_ARGV("BeautifulRedis", cmd_redis, NULL, RSRC_CONF,
                      "Redis host, port and optional timeout in milliseconds"),
    AP_INIT_TAKE12("BeautifulJWTKeyFile", cmd_jwt_key, NULL, RSRC_CONF,
                   "PEM RSA key file and optional kid; repeatable, the first "
                   "private key signs"),
    AP_INIT_TAKE1("BeautifulJWTIssuer", cmd_string,
                  (void *)APR_OFFSETOF(bl_server_conf, jwt_issuer), RSRC_CONF,
                  "The iss of access tokens"),
    AP_INIT_TAKE1("BeautifulJWTAudience", cmd_string,
                  (void *)APR_OFFSETOF(bl_server_conf, jwt_audience), RSRC_CONF,
                  "The aud of access tokens"),
    AP_INIT_TAKE1("BeautifulJWTLeeway", cmd_seconds,
                  (void *)APR_OFFSETOF(bl_server_conf, jwt_leeway_sec), RSRC_CONF,
                  "Clock skew allowed on exp/nbf, in seconds"),
    AP_INIT_TAKE1("BeautifulAccessTokenTTL", cmd_seconds,
                  (void *)APR_OFFSETOF(bl_server_conf, access_token_ttl), RSRC_CONF,
                  "Access token lifetime in seconds (default 900)"),
    AP_INIT_TAKE1("BeautifulRefreshTokenTTL", cmd_seconds,
                  (void *)APR_OFFSETOF(bl_server_conf, refresh_token_ttl), RSRC_CONF,
                  "Refresh token lifetime in seconds (default 30 days)"),
    AP_INIT_ITERATE("BeautifulCORSOrigin", cmd_cors_origin, NULL, RSRC_CONF,
                    "Origins allowed to call the API with credentials (exact match)"),
    AP_INIT_TAKE1("BeautifulMaxBodySize", cmd_max_body, NULL, RSRC_CONF,
                  "Largest request body read, in bytes (default 1 MiB)"),
    AP_INIT_TAKE1("BeautifulPublicBaseURL", cmd_public_url, NULL, RSRC_CONF,
                  "The public URL of this service, e.g. https://api.example.org"),
    AP_INIT_ITERATE("BeautifulTrustedProxy", bl_cmd_trusted_proxy, NULL, RSRC_CONF,
                    "Addresses or CIDR ranges of reverse proxies whose X-Forwarded-For "
                    "and X-Forwarded-Proto are believed"),
    AP_INIT_FLAG("BeautifulTestEcho", cmd_test_echo, NULL, RSRC_CONF,
                 "Enable the test-only beautiful-echo handler (never in production)"),
    AP_INIT_TAKE1("BeautifulTestClock", bl_cmd_test_clock, NULL, RSRC_CONF,
                  "Test builds only: file holding the RFC 3339 time bl_now() answers"),
    AP_INIT_TAKE1("BeautifulPartitionInterval", cmd_partition_interval, NULL, RSRC_CONF,
                  "How often monthly partitions are created ahead (default 1h)"),
    AP_INIT_TAKE1("BeautifulPartitionMonthsAhead", cmd_months_ahead, NULL, RSRC_CONF,
                  "Months of partitions kept ahead of the current one (default 3)"),
    AP_INIT_TAKE1("BeautifulStreamMaxPerChild", bl_cmd_stream_max, NULL, RSRC_CONF,
                  "Live streams one child serves at once (default: half its threads)"),
    AP_INIT_TAKE1("BeautifulStreamHeartbeat", bl_cmd_stream_heartbeat, NULL, RSRC_CONF,
                  "Idle time before a live stream sends a heartbeat comment (default 15s)"),
    AP_INIT_FLAG("BeautifulAPI", cmd_api, NULL, RSRC_CONF | ACCESS_CONF,
                 "Mark an API location: JSON error envelope, security headers, "
                 "CORS, no-store"),
    AP_INIT_TAKE1("BeautifulJSONErrorLog", cmd_json_errorlog, NULL, RSRC_CONF,
                  "A file that gets every error log message of this server as one "
                  "JSON object per line, besides ErrorLog"),
    AP_INIT_TAKE1("BeautifulContentSecurityPolicy", cmd_csp, NULL, RSRC_CONF | ACCESS_CONF,
                  "Security headers with this Content-Security-Policy on a location "
                  "that is not an API location (the pages at /docs)"),
    AP_INIT_TAKE_ARGV("BeautifulRateLimit", bl_cmd_rate_limit, NULL,
                      OR_AUTHCFG | ACCESS_CONF,
                      "name limit window_seconds [key=ip|user], or off"),
    {NULL}
};
