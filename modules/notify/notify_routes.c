/* The /notifications and /admin/notifications routes: the route table, the
 * dispatcher and what the handlers share. Each route lives in the file
 * named after its job. */
#include "notify_private.h"
#include "json.h"
#include "router.h"
#include "validate.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <util_script.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_notify);

/* Built once at start-up (post_config, pconf); read-only afterwards. */
static bl_router *notify_router;

static const struct {
    const char *method;
    const char *pattern;
    notify_route_fn *fn;
} notify_routes[] = {
    {"GET", "/notifications", notify_list},
    {"PUT", "/notifications/read-all", notify_read_all},
    {"PUT", "/notifications/:id/read", notify_read},
    {"DELETE", "/notifications/:id", notify_delete},
    {"GET", "/notifications/stream", notify_stream},
    {"GET", "/notifications/preferences", notify_get_preferences},
    {"PUT", "/notifications/preferences", notify_put_preferences},
    {"POST", "/notifications/devices", notify_add_device},
    {"DELETE", "/notifications/devices/:id", notify_delete_device},
    {"GET", "/admin/notifications", notify_admin_list},
    {"POST", "/admin/notifications/:id/retry", notify_admin_retry},
    {NULL, NULL, NULL}
};

void notify_routes_init(apr_pool_t *pconf, server_rec *s)
{
    int i;

    notify_router = bl_router_create(pconf);
    for (i = 0; notify_routes[i].method; i++)
        if (bl_router_add(notify_router, notify_routes[i].method, notify_routes[i].pattern,
                          (void *)notify_routes[i].fn) != 0)
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "mod_beautiful_notify: bad route %s %s",
                         notify_routes[i].method, notify_routes[i].pattern);
}

int notify_handler(request_rec *r)
{
    apr_table_t *params;
    void *handler;

    if (!r->handler || strcmp(r->handler, BL_NOTIFY_HANDLER) != 0)
        return DECLINED;
    /* Everything here is personal. */
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (!(handler = bl_route(r, notify_router, &params)))
        return OK;
    if (!bl_require_user(r))
        return OK;
    return ((notify_route_fn *)handler)(r, params);
}

apr_dbd_row_t *notify_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res)
{
    apr_dbd_row_t *row = NULL;

    if (!res || apr_dbd_get_row(db->driver, r->pool, res, &row, -1) != 0)
        return NULL;
    return row;
}

int notify_refuse_unknown(request_rec *r, json_object *obj, const char *const *allowed,
                          const char *prefix)
{
    const char *unknown = bl_json_unknown_field(obj, allowed);
    const char *name;

    if (!unknown)
        return 0;
    name = apr_pstrcat(r->pool, prefix ? prefix : "", unknown, NULL);
    bl_send_validation_error(r, name, apr_pstrcat(r->pool, "unknown field: ", name, NULL));
    return -1;
}

const char *notify_param_id(request_rec *r, apr_table_t *params)
{
    const char *id = apr_table_get(params, "id");

    if (!id || !bl_valid_uuid(id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such notification",
                             NULL), NULL;
    return id;
}

int notify_check_query(request_rec *r, const char *const *allowed)
{
    apr_hash_t *seen = apr_hash_make(r->pool);
    char *args, *last = NULL, *pair;

    if (!r->args)
        return 0;
    if (strstr(r->args, "%00"))
        return bl_send_validation_error(r, "query", "parameters must not contain NUL"), -1;
    args = apr_pstrdup(r->pool, r->args);
    for (pair = apr_strtok(args, "&", &last); pair; pair = apr_strtok(NULL, "&", &last)) {
        char *name = apr_pstrndup(r->pool, pair, strcspn(pair, "="));

        ap_unescape_url(name);
        if (!bl_valid_enum(name, allowed))
            return bl_send_validation_error(r, name, apr_pstrcat(r->pool, "unknown parameter: ",
                                                                 name, NULL)), -1;
        if (apr_hash_get(seen, name, APR_HASH_KEY_STRING))
            return bl_send_validation_error(r, name, apr_pstrcat(r->pool, "parameter given twice: ",
                                                                 name, NULL)), -1;
        apr_hash_set(seen, name, APR_HASH_KEY_STRING, "");
    }
    return 0;
}
