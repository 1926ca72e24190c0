/* mod_beautiful_community — communities, membership, posts, threaded
 * comments, likes, reports and moderation: handler "beautiful-community"
 * for /api/v1/communities..., /api/v1/posts..., /api/v1/comments... and
 * /api/v1/admin/{communities,reports}...
 *
 * This file holds the module: the directive, hooks, the list of parts and
 * the dispatcher. Each part (a feature file) brings its own routes and
 * statements; adding one is a line in community_parts below. */
#include "community_private.h"
#include "chat_video.h"
#include "router.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_optional_hooks.h>
#include <apr_strings.h>

#include <stdlib.h>
#include <string.h>

#define COMMUNITY_HANDLER "beautiful-community"
#define DEFAULT_HIDE_AFTER_REPORTS 3

static const community_part *const community_parts[] = {
    &chat_conversations_part, &chat_messages_part, &chat_events_part, &video_sessions_part,
    &video_tasks_part,
    &community_common_part,
    &communities_part,
    &communities_membership_part,
    &posts_part,
    &comments_part,
    &reports_part,
    &communities_admin_part,
    NULL
};

/* Built once at start-up (post_config, pconf); read-only afterwards. */
static bl_router *community_router;

/* ---------------------------------------------------------------- config */

static void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    community_conf *c = apr_pcalloc(p, sizeof *c);

    c->hide_after_reports = -1;
    return c;
}

static void *merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    const community_conf *base = basev, *add = addv;
    community_conf *c = apr_pcalloc(p, sizeof *c);

    c->hide_after_reports = add->hide_after_reports >= 0 ? add->hide_after_reports
                                                         : base->hide_after_reports;
    return c;
}

const community_conf *community_config(const request_rec *r)
{
    return ap_get_module_config(r->server->module_config, &beautiful_community_module);
}

/* BeautifulCommunityHideAfterReports <count> */
static const char *cmd_hide_after(cmd_parms *cmd, void *dc, const char *arg)
{
    community_conf *c = ap_get_module_config(cmd->server->module_config,
                                             &beautiful_community_module);
    char *end = NULL;
    long n = strtol(arg, &end, 10);

    if (!*arg || *end || n < 1 || n > 1000)
        return "BeautifulCommunityHideAfterReports takes a number from 1 to 1000";
    c->hide_after_reports = (int)n;
    return NULL;
}

static const command_rec community_cmds[] = {
    AP_INIT_TAKE1("BeautifulCommunityHideAfterReports", cmd_hide_after, NULL, RSRC_CONF,
                  "Distinct open reports after which a post or comment is hidden from "
                  "members until a moderator decides (default 3)"),
    CHAT_VIDEO_DIRECTIVES,
    {NULL}
};

/* ---------------------------------------------------------------- dispatch */

static int community_handler(request_rec *r)
{
    apr_table_t *params;
    void *handler;

    if (!r->handler || strcmp(r->handler, COMMUNITY_HANDLER) != 0)
        return DECLINED;
    /* Member-only content and who belongs where: never in a shared cache. */
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");

    if (!(handler = bl_route(r, community_router, &params)))
        return OK;
    return ((community_route_fn *)handler)(r, params);
}

/* ---------------------------------------------------------------- hooks */

static int add_part(apr_pool_t *pconf, server_rec *s, const community_part *part)
{
    const community_route *rt;

    if (part->statements)
        bl_db_prepare_all(s, part->statements);
    for (rt = part->routes; rt && rt->method; rt++) {
        if (bl_router_add(community_router, rt->method, rt->pattern, (void *)rt->fn) != 0) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         "mod_beautiful_community: bad route %s %s (%s)", rt->method,
                         rt->pattern, part->name);
            return -1;
        }
    }
    return 0;
}

static int community_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                 server_rec *s)
{
    server_rec *vs;
    int i;

    for (vs = s; vs; vs = vs->next) {
        community_conf *c = ap_get_module_config(vs->module_config,
                                                 &beautiful_community_module);
        if (c->hide_after_reports < 0)
            c->hide_after_reports = DEFAULT_HIDE_AFTER_REPORTS;
    }
    community_router = bl_router_create(pconf);
    for (i = 0; community_parts[i]; i++)
        if (add_part(pconf, s, community_parts[i]) != 0)
            return HTTP_INTERNAL_SERVER_ERROR;
    return OK;
}

static void community_register_hooks(apr_pool_t *p)
{
    /* Statements must be registered before mod_dbd prepares them. */
    static const char *const succ_dbd[] = {"mod_dbd.c", NULL};

    ap_hook_post_config(community_post_config, NULL, succ_dbd, APR_HOOK_MIDDLE);
    ap_hook_handler(community_handler, NULL, NULL, APR_HOOK_MIDDLE);
    chat_video_register_hooks(p);
    /* mod_beautiful_auth runs it inside an account deletion. */
    apr_optional_hook_add("bl_account_deleted", (void (*)(void))community_account_deleted,
                          NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(beautiful_community) = {
    STANDARD20_MODULE_STUFF,
    NULL,
    NULL,
    create_server_conf,
    merge_server_conf,
    community_cmds,
    community_register_hooks,
    AP_MODULE_FLAG_NONE
};
