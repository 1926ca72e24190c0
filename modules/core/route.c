/* route.c — bl_route: one way for every domain module's handler to find
 * its route, so 404, 405 with Allow, the route template for metrics and
 * the CSRF refusal of cross-site cookie writes are the same everywhere. */
#include "core_hooks.h"
#include "router.h"

#include <http_protocol.h>

/* The path the routers see: the raw path without "/api/v1", or NULL. */
static const char *api_path(request_rec *r)
{
    const char *path = r->parsed_uri.path ? r->parsed_uri.path : r->uri;
    size_t plen = sizeof(BL_API_PREFIX) - 1;

    if (path && strncmp(path, BL_API_PREFIX, plen) == 0
        && (path[plen] == '/' || path[plen] == '\0'))
        return path + plen;
    return NULL;
}

void *bl_route(request_rec *r, const bl_router *router, apr_table_t **params)
{
    bl_route_match match;
    const char *path = api_path(r);

    if (!router || !path) {
        bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such route", NULL);
        return NULL;
    }
    switch (bl_router_match(router, r->pool, r->method, path, &match)) {
    case BL_ROUTE_FOUND:
        break;
    case BL_ROUTE_METHOD_NOT_ALLOWED:
        apr_table_setn(r->err_headers_out, "Allow", match.allow);
        bl_send_error(r, HTTP_METHOD_NOT_ALLOWED, BL_ERR_METHOD_NOT_ALLOWED,
                      "method not allowed on this route", NULL);
        return NULL;
    default:
        bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such route", NULL);
        return NULL;
    }
    bl_set_route(r, match.pattern);
    if (r->method_number != M_GET && bl_csrf_refused(r))
        return NULL;
    *params = match.params;
    return match.handler;
}
