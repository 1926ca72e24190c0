/* mod_beautiful_core — the common auth/filter module of Beautiful Life.
 *
 * This file only wires things into httpd: the module record, the hooks in
 * request order and the handler names. The work lives in config.c,
 * headers.c, proxy.c, authn.c, envelope.c, body.c, db.c, redis.c, audit.c,
 * tasks.c, partitions.c and (by their own authors) metrics.c, health.c,
 * ratelimit.c. */
#include "core_hooks.h"
#include "http_client.h"

#include <http_protocol.h>
#include <http_log.h>
#include <mod_auth.h>
#include <malloc.h>

bl_req_state *bl_core_req_state(request_rec *r)
{
    bl_req_state *st = ap_get_module_config(r->request_config, &beautiful_core_module);

    if (!st) {
        st = apr_pcalloc(r->pool, sizeof(*st));
        ap_set_module_config(r->request_config, &beautiful_core_module, st);
    }
    return st;
}

/* Runs before mod_dbd's post_config, which copies the statements registered
 * so far into its connection groups (see bl_db_prepare_all), and before
 * mod_watchdog's, which sets up only the watchdogs registered by then. */
static int core_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s)
{
    int rv = bl_core_check_config(pconf, s);

    if (rv != OK)
        return rv;
    bl_db_prepare_core(s);
    /* google_token.c calls out with libcurl: its global state before threads */
    bl_http_global_init();
    if ((rv = bl_partitions_post_config(pconf, s)) != OK)
        return rv;
    if ((rv = bl_audit_seal_post_config(pconf, s)) != OK)
        return rv;
    return bl_metrics_post_config(pconf, s) == APR_SUCCESS ? OK
                                                           : HTTP_INTERNAL_SERVER_ERROR;
}

/* glibc raises its mmap threshold to the size of each large block freed,
 * so after the first argon2 password hash (19 MiB) every later one is
 * carved from the arena of whichever worker thread runs it, and stays
 * resident there: a child's RSS grew by 19 MiB for each thread that ever
 * checked a password. A fixed threshold (glibc's own default) keeps such
 * blocks mmapped, returned to the system when freed. */
static void keep_large_blocks_mmapped(void)
{
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

static void core_child_init(apr_pool_t *pchild, server_rec *s)
{
    keep_large_blocks_mmapped();
    bl_tasks_child_init(pchild);
    bl_redis_child_init(pchild, s);
    bl_token_cache_child_init(pchild, s);
    bl_request_id_child_init(pchild);
    bl_stream_child_init(pchild, s);
    bl_metrics_child_init(pchild, s);
}

static void core_optional_fn_retrieve(void)
{
    bl_db_retrieve_fns();
}

static int core_handler(request_rec *r)
{
    if (!r->handler || strncmp(r->handler, "beautiful-", 10))
        return DECLINED;
    if (!strcmp(r->handler, "beautiful-api"))
        return bl_api_handler(r);
    if (!strcmp(r->handler, "beautiful-health"))
        return bl_health_handler(r);
    if (!strcmp(r->handler, "beautiful-metrics"))
        return bl_metrics_handler(r);
    if (!strcmp(r->handler, "beautiful-echo"))
        return bl_echo_handler(r);
    return DECLINED;
}

static void core_register_hooks(apr_pool_t *p)
{
    static const char *const before_dbd_wd[] = {"mod_dbd.c", "mod_watchdog.c", NULL};
    static const char *const after_remoteip[] = {"mod_remoteip.c", NULL};
    static const char *const after_log_config[] = {"mod_log_config.c", NULL};

    bl_envelope_register();
    bl_errorlog_json_register();
    bl_authz_register(p);

    ap_hook_optional_fn_retrieve(core_optional_fn_retrieve, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_config(bl_logformat_pre_config, after_log_config, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_config(bl_stream_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(core_post_config, NULL, before_dbd_wd, APR_HOOK_MIDDLE);
    ap_hook_child_init(core_child_init, NULL, NULL, APR_HOOK_MIDDLE);

    /* request order: post_read_request, header_parser, authn, fixups, handler */
    ap_hook_post_read_request(bl_headers_post_read_request, NULL, NULL,
                              APR_HOOK_REALLY_FIRST);
    ap_hook_post_read_request(bl_trace_post_read_request, NULL, NULL,
                              APR_HOOK_REALLY_FIRST);
    ap_hook_post_read_request(bl_proxy_post_read_request, after_remoteip, NULL,
                              APR_HOOK_FIRST);
    ap_hook_translate_name(bl_storage_translate_name, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_map_to_storage(bl_storage_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_header_parser(bl_headers_header_parser, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_check_authn(bl_check_authn, NULL, NULL, APR_HOOK_MIDDLE,
                        AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_note_auth_failure(bl_note_auth_failure, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_fixups(bl_rate_limit_fixups, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(core_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(bl_metrics_log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(bl_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(beautiful_core) = {
    STANDARD20_MODULE_STUFF,
    bl_core_create_dir_conf,
    bl_core_merge_dir_conf,
    bl_core_create_server_conf,
    bl_core_merge_server_conf,
    bl_core_cmds,
    core_register_hooks,
    AP_MODULE_FLAG_NONE
};
