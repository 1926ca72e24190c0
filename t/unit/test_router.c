/* Router: parameters, static-over-param precedence with backtracking,
 * 405 with Allow, trailing slash, percent-decoding and refused paths. */
#include <string.h>

#include "router.h"
#include "unit.h"

/* Handlers are opaque to the router: distinct addresses suffice. */
static int h_list, h_create, h_me, h_get, h_put, h_posts, h_me_settings, h_root;

static bl_router *sample_router(void)
{
    bl_router *r = bl_router_create(pool);

    ck_assert_int_eq(bl_router_add(r, "GET", "/users", &h_list), 0);
    ck_assert_int_eq(bl_router_add(r, "POST", "/users", &h_create), 0);
    ck_assert_int_eq(bl_router_add(r, "GET", "/users/me", &h_me), 0);
    ck_assert_int_eq(bl_router_add(r, "GET", "/users/:id", &h_get), 0);
    ck_assert_int_eq(bl_router_add(r, "PUT", "/users/:id", &h_put), 0);
    ck_assert_int_eq(bl_router_add(r, "GET", "/users/:id/posts/:post_id", &h_posts), 0);
    ck_assert_int_eq(bl_router_add(r, "GET", "/users/me/settings", &h_me_settings), 0);
    ck_assert_int_eq(bl_router_add(r, "GET", "/", &h_root), 0);
    return r;
}

static bl_route_status match(const bl_router *r, const char *method, const char *path,
                             bl_route_match *m)
{
    return bl_router_match(r, pool, method, path, m);
}

START_TEST(static_routes)
{
    bl_router *r = sample_router();
    bl_route_match m;

    ck_assert_int_eq(match(r, "GET", "/users", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_list);
    ck_assert_str_eq(m.pattern, "/users");
    ck_assert_int_eq(match(r, "POST", "/users", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_create);
    ck_assert_int_eq(match(r, "GET", "/", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_root);
    ck_assert_int_eq(match(r, "GET", "/nothing", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", "/users/1/posts", &m), BL_ROUTE_NOT_FOUND);
}
END_TEST

START_TEST(parameters)
{
    bl_router *r = sample_router();
    bl_route_match m;

    ck_assert_int_eq(match(r, "GET", "/users/42", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_get);
    ck_assert_str_eq(m.pattern, "/users/:id");
    ck_assert_str_eq(apr_table_get(m.params, "id"), "42");
    ck_assert_int_eq(match(r, "GET", "/users/7/posts/99", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_posts);
    ck_assert_str_eq(apr_table_get(m.params, "id"), "7");
    ck_assert_str_eq(apr_table_get(m.params, "post_id"), "99");
}
END_TEST

START_TEST(static_beats_param)
{
    bl_router *r = sample_router();
    bl_route_match m;

    ck_assert_int_eq(match(r, "GET", "/users/me", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_me);
    ck_assert_ptr_null(apr_table_get(m.params, "id"));
    ck_assert_int_eq(match(r, "GET", "/users/me/settings", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_me_settings);
    /* "me" is static here, but only the parameter branch continues. */
    ck_assert_int_eq(match(r, "GET", "/users/me/posts/3", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_posts);
    ck_assert_str_eq(apr_table_get(m.params, "id"), "me");
    /* PUT exists only on the parameter route: "me" reaches it as an id. */
    ck_assert_int_eq(match(r, "PUT", "/users/me", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_put);
    ck_assert_str_eq(apr_table_get(m.params, "id"), "me");
}
END_TEST

START_TEST(method_not_allowed)
{
    bl_router *r = sample_router();
    bl_route_match m;

    ck_assert_int_eq(match(r, "DELETE", "/users", &m), BL_ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(m.allow, "GET, POST, HEAD");
    ck_assert_ptr_null(m.handler);
    ck_assert_int_eq(match(r, "DELETE", "/users/5", &m), BL_ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(m.allow, "GET, PUT, HEAD");
    ck_assert_str_eq(m.pattern, "/users/:id");
    ck_assert_int_eq(match(r, "POST", "/users/me/settings", &m), BL_ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(m.allow, "GET, HEAD");
    /* HEAD is answered by the GET route. */
    ck_assert_int_eq(match(r, "HEAD", "/users/5", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_get);
}
END_TEST

START_TEST(trailing_slash)
{
    bl_router *r = sample_router();
    bl_route_match m;

    ck_assert_int_eq(match(r, "GET", "/users/", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_list);
    ck_assert_int_eq(match(r, "GET", "/users/42/", &m), BL_ROUTE_FOUND);
    ck_assert_str_eq(apr_table_get(m.params, "id"), "42");
    ck_assert_int_eq(match(r, "GET", "/users//", &m), BL_ROUTE_NOT_FOUND);
}
END_TEST

START_TEST(percent_decoding)
{
    bl_router *r = sample_router();
    bl_route_match m;

    ck_assert_int_eq(match(r, "GET", "/users/a%20b%C3%A9", &m), BL_ROUTE_FOUND);
    ck_assert_str_eq(apr_table_get(m.params, "id"), "a b\xc3\xa9");
    ck_assert_int_eq(match(r, "GET", "/users/%6De", &m), BL_ROUTE_FOUND);
    ck_assert_ptr_eq(m.handler, &h_me);
    /* Encoded '/' and NUL never reach a handler; bad escapes match nothing. */
    ck_assert_int_eq(match(r, "GET", "/users/a%2Fb", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", "/users/a%2fb", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", "/users/a%00b", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", "/users/a%zz", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", "/users/a%2", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", "/users/%", &m), BL_ROUTE_NOT_FOUND);
}
END_TEST

START_TEST(refused_paths)
{
    bl_router *r = sample_router();
    bl_route_match m;

    ck_assert_int_eq(match(r, "GET", "//users", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", "/users//42", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", "users", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", "", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", NULL, &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, NULL, "/users", &m), BL_ROUTE_NOT_FOUND);
    ck_assert_int_eq(match(r, "GET", "/users/1/posts/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/"
                                   "18/19/20/21/22/23/24/25/26/27/28/29/30/31/32/33", &m),
                     BL_ROUTE_NOT_FOUND);
}
END_TEST

START_TEST(bad_patterns)
{
    bl_router *r = sample_router();

    ck_assert_int_eq(bl_router_add(r, "GET", "/users", &h_list), -1);       /* duplicate */
    ck_assert_int_eq(bl_router_add(r, "GET", "users", &h_list), -1);
    ck_assert_int_eq(bl_router_add(r, "GET", "/a//b", &h_list), -1);
    ck_assert_int_eq(bl_router_add(r, "GET", "/a/", &h_list), -1);
    ck_assert_int_eq(bl_router_add(r, "GET", "/a/:", &h_list), -1);
    ck_assert_int_eq(bl_router_add(r, "GET", "/users/:uid/x", &h_list), -1); /* other name */
    ck_assert_int_eq(bl_router_add(r, "GET", "/a%20b", &h_list), -1);
    ck_assert_int_eq(bl_router_add(r, "", "/b", &h_list), -1);
    ck_assert_int_eq(bl_router_add(r, "DELETE", "/users/:id", &h_list), 0);
}
END_TEST

/* Matching allocates only from the request pool: a destroyed request pool
 * leaves the router usable (valgrind would see a use after free). */
START_TEST(match_uses_request_pool)
{
    bl_router *r = sample_router();
    apr_pool_t *request;
    bl_route_match m;
    int i;

    for (i = 0; i < 3; i++) {
        apr_pool_create(&request, pool);
        ck_assert_int_eq(bl_router_match(r, request, "GET", "/users/9/posts/1", &m),
                         BL_ROUTE_FOUND);
        ck_assert_str_eq(apr_table_get(m.params, "post_id"), "1");
        apr_pool_destroy(request);
    }
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, static_routes);
    tcase_add_test(tc, parameters);
    tcase_add_test(tc, static_beats_param);
    tcase_add_test(tc, method_not_allowed);
    tcase_add_test(tc, trailing_slash);
    tcase_add_test(tc, percent_decoding);
    tcase_add_test(tc, refused_paths);
    tcase_add_test(tc, bad_patterns);
    tcase_add_test(tc, match_uses_request_pool);
    suite_add_tcase(s, tc);
    return s;
}
