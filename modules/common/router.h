/* Method + path router with ":name" segments, e.g. "/users/profile/:id".
 * Routes are added at start-up (pconf); matching allocates only from the
 * request pool. Static segments win over parameters at the same depth. */
#ifndef BL_ROUTER_H
#define BL_ROUTER_H

#include <apr_pools.h>
#include <apr_tables.h>

typedef struct bl_router bl_router;

typedef enum {
    BL_ROUTE_FOUND = 0,
    BL_ROUTE_NOT_FOUND,           /* no pattern matches the path: 404 */
    BL_ROUTE_METHOD_NOT_ALLOWED   /* path matches, method does not: 405 */
} bl_route_status;

typedef struct {
    void *handler;               /* what was passed to bl_router_add */
    const char *pattern;         /* the route template, for metrics/logs */
    apr_table_t *params;         /* ":name" -> decoded segment */
    const char *allow;           /* on 405: "GET, PUT" */
} bl_route_match;

bl_router *bl_router_create(apr_pool_t *p);
/* method is upper-case ("GET"); pattern starts with '/'. Returns 0 on
 * success, -1 for a malformed pattern or a duplicate method+pattern. */
int bl_router_add(bl_router *router, const char *method, const char *pattern,
                  void *handler);
/* path is relative to the router's mount point, without query string,
 * still percent-encoded (e.g. from r->parsed_uri.path, not r->uri).
 * A trailing slash is ignored; empty segments ("//") never match.
 * Parameter values are percent-decoded; a value that decodes to NUL or '/'
 * does not match. */
bl_route_status bl_router_match(const bl_router *router, apr_pool_t *p,
                                const char *method, const char *path,
                                bl_route_match *match);
/* HEAD is served by a GET route when no HEAD route exists, and then
 * appears in the Allow list of a 405. */

#endif
