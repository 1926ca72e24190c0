/* Shared scaffolding for the Check unit tests of modules/common: one APR
 * pool per test (so valgrind sees everything released) and a main that
 * prints Check's summary line and exits non-zero on any failure. */
#ifndef BL_UNIT_H
#define BL_UNIT_H

#include <stdlib.h>
#include <check.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

static apr_pool_t *pool;

static void pool_setup(void)
{
    apr_pool_create(&pool, NULL);
}

static void pool_teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
}

/* Each test file defines this: the suite with its test cases. */
static Suite *unit_suite(void);

/* A test case with the per-test pool fixture. */
static inline TCase *unit_tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_set_timeout(tc, 60);
    return tc;
}

int main(void)
{
    SRunner *runner;
    int failed;

    apr_initialize();
    runner = srunner_create(unit_suite());
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    apr_terminate();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
