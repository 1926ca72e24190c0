/* Method + path router: a tree of path segments built once at start-up.
 *
 * Each node has static children, at most one ":param" child, and the
 * methods registered for the path ending there. Matching tries static
 * children before the parameter child and backtracks, so "/users/me" wins
 * over "/users/:id" while "/users/me/posts" still reaches "/users/:id/posts". */
#include "router.h"

#include <string.h>
#include <apr_strings.h>

typedef struct route_node route_node;

typedef struct {
    const char *method;
    void *handler;
    const char *pattern;
} route_method;

typedef struct {
    const char *segment;
    route_node *node;
} static_child;

struct route_node {
    apr_array_header_t *statics;    /* of static_child */
    const char *param_name;         /* NULL when no parameter child */
    route_node *param;
    apr_array_header_t *methods;    /* of route_method */
    const char *allow;              /* "GET, PUT", kept current by add */
};

struct bl_router {
    apr_pool_t *pool;
    route_node *root;
};

/* Most routes are a handful of segments deep; deeper paths cannot match. */
#define ROUTER_MAX_SEGMENTS 32

static route_node *node_create(apr_pool_t *p)
{
    route_node *n = apr_pcalloc(p, sizeof *n);

    n->statics = apr_array_make(p, 2, sizeof(static_child));
    n->methods = apr_array_make(p, 2, sizeof(route_method));
    return n;
}

bl_router *bl_router_create(apr_pool_t *p)
{
    bl_router *r = apr_pcalloc(p, sizeof *r);

    r->pool = p;
    r->root = node_create(p);
    return r;
}

static route_node *static_child_find(const route_node *n, const char *segment)
{
    int i;

    for (i = 0; i < n->statics->nelts; i++) {
        const static_child *c = &APR_ARRAY_IDX(n->statics, i, static_child);
        if (strcmp(c->segment, segment) == 0)
            return c->node;
    }
    return NULL;
}

/* Finds or creates the child for one pattern segment; NULL when the
 * segment is malformed or names a parameter differently than before. */
static route_node *child_for_pattern(apr_pool_t *p, route_node *n, const char *segment)
{
    if (segment[0] == ':') {
        if (segment[1] == '\0')
            return NULL;
        if (!n->param) {
            n->param_name = segment + 1;
            n->param = node_create(p);
        } else if (strcmp(n->param_name, segment + 1) != 0) {
            return NULL;
        }
        return n->param;
    }
    if (strpbrk(segment, "%?#"))
        return NULL;
    {
        route_node *child = static_child_find(n, segment);
        static_child *c;
        if (child)
            return child;
        c = apr_array_push(n->statics);
        c->segment = segment;
        c->node = node_create(p);
        return c->node;
    }
}

static int method_index(const route_node *n, const char *method)
{
    int i;

    for (i = 0; i < n->methods->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(n->methods, i, route_method).method, method) == 0)
            return i;
    return -1;
}

int bl_router_add(bl_router *router, const char *method, const char *pattern,
                  void *handler)
{
    route_node *n = router->root;
    char *copy, *segment, *state = NULL;
    size_t len;
    route_method *m;

    if (!method || !*method || !pattern || pattern[0] != '/')
        return -1;
    len = strlen(pattern);
    if (strstr(pattern, "//") || (len > 1 && pattern[len - 1] == '/'))
        return -1;
    copy = apr_pstrdup(router->pool, pattern);
    for (segment = apr_strtok(copy, "/", &state); segment;
         segment = apr_strtok(NULL, "/", &state)) {
        n = child_for_pattern(router->pool, n, segment);
        if (!n)
            return -1;
    }
    if (method_index(n, method) >= 0)
        return -1;
    m = apr_array_push(n->methods);
    m->method = apr_pstrdup(router->pool, method);
    m->handler = handler;
    m->pattern = apr_pstrdup(router->pool, pattern);
    n->allow = n->allow ? apr_pstrcat(router->pool, n->allow, ", ", m->method, NULL)
                        : m->method;
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes a segment in place. Returns 0 for a malformed escape or
 * one that yields NUL or '/', which no route may see inside a segment. */
static int percent_decode(char *s)
{
    char *in = s, *out = s;

    while (*in) {
        if (*in == '%') {
            int hi = hex_value(in[1]), lo = hi >= 0 ? hex_value(in[2]) : -1;
            char c;
            if (hi < 0 || lo < 0)
                return 0;
            c = (char)(hi * 16 + lo);
            if (c == '\0' || c == '/')
                return 0;
            *out++ = c;
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return 1;
}

typedef struct {
    char *segments[ROUTER_MAX_SEGMENTS];
    int count;
    const char *param_names[ROUTER_MAX_SEGMENTS];
    const char *param_values[ROUTER_MAX_SEGMENTS];
    int param_count;
} path_walk;

/* Splits "/a/b/" into decoded segments. Returns 0 when the path has an
 * empty segment, a bad escape, or too many segments. */
static int split_path(apr_pool_t *p, const char *path, path_walk *w)
{
    char *copy, *s;
    size_t len;

    w->count = 0;
    w->param_count = 0;
    if (!path || path[0] != '/')
        return 0;
    copy = apr_pstrdup(p, path + 1);
    len = strlen(copy);
    if (len > 0 && copy[len - 1] == '/')
        copy[--len] = '\0';           /* one trailing slash is tolerated */
    if (len == 0)
        return 1;                     /* the root */
    for (s = copy;;) {
        char *slash = strchr(s, '/');
        if (slash)
            *slash = '\0';
        if (*s == '\0' || w->count == ROUTER_MAX_SEGMENTS || !percent_decode(s))
            return 0;
        w->segments[w->count++] = s;
        if (!slash)
            return 1;
        s = slash + 1;
    }
}

/* Node serving method on this path (any method when method is NULL),
 * depth-first with static children first; records parameters on the way. */
static const route_node *find_node(const route_node *n, path_walk *w, int depth,
                                   const char *method)
{
    const route_node *found, *child;

    if (depth == w->count) {
        if (n->methods->nelts == 0)
            return NULL;
        return !method || method_index(n, method) >= 0 ? n : NULL;
    }
    child = static_child_find(n, w->segments[depth]);
    if (child && (found = find_node(child, w, depth + 1, method)))
        return found;
    if (n->param) {
        int saved = w->param_count;
        w->param_names[w->param_count] = n->param_name;
        w->param_values[w->param_count++] = w->segments[depth];
        if ((found = find_node(n->param, w, depth + 1, method)))
            return found;
        w->param_count = saved;
    }
    return NULL;
}

static void fill_params(apr_pool_t *p, const path_walk *w, bl_route_match *match)
{
    int i;

    match->params = apr_table_make(p, w->param_count ? w->param_count : 1);
    for (i = 0; i < w->param_count; i++)
        apr_table_setn(match->params, w->param_names[i], w->param_values[i]);
}

bl_route_status bl_router_match(const bl_router *router, apr_pool_t *p,
                                const char *method, const char *path,
                                bl_route_match *match)
{
    path_walk w;
    const route_node *n;
    const char *wanted = method;
    int i;

    memset(match, 0, sizeof *match);
    if (!method || !split_path(p, path, &w))
        return BL_ROUTE_NOT_FOUND;
    n = find_node(router->root, &w, 0, wanted);
    /* HEAD is served by GET when no HEAD route exists (httpd drops the body). */
    if (!n && strcmp(method, "HEAD") == 0) {
        wanted = "GET";
        w.param_count = 0;
        n = find_node(router->root, &w, 0, wanted);
    }
    if (n) {
        const route_method *m = &APR_ARRAY_IDX(n->methods, method_index(n, wanted), route_method);
        match->handler = m->handler;
        match->pattern = m->pattern;
        fill_params(p, &w, match);
        return BL_ROUTE_FOUND;
    }
    w.param_count = 0;
    n = find_node(router->root, &w, 0, NULL);
    if (!n)
        return BL_ROUTE_NOT_FOUND;
    match->pattern = APR_ARRAY_IDX(n->methods, 0, route_method).pattern;
    match->allow = n->allow;
    for (i = 0; i < n->methods->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(n->methods, i, route_method).method, "GET") == 0 &&
            method_index(n, "HEAD") < 0)
            match->allow = apr_pstrcat(p, n->allow, ", HEAD", NULL);
    fill_params(p, &w, match);
    return BL_ROUTE_METHOD_NOT_ALLOWED;
}
