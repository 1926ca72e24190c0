/* UUID v4: shape, version and variant bits, uniqueness. */
#include <string.h>

#include "uuid.h"
#include "validate.h"
#include "unit.h"

START_TEST(version_and_variant)
{
    int i;

    for (i = 0; i < 1000; i++) {
        const char *u = bl_uuid_v4(pool);
        ck_assert_ptr_nonnull(u);
        ck_assert_uint_eq(strlen(u), 36);
        ck_assert(bl_valid_uuid(u));
        ck_assert_int_eq(u[14], '4');
        ck_assert(strchr("89ab", u[19]) != NULL);
        ck_assert(strspn(u, "0123456789abcdef-") == 36);   /* lower case */
    }
}
END_TEST

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

START_TEST(uniqueness)
{
    enum { N = 10000 };
    const char **all = apr_palloc(pool, N * sizeof *all);
    int i;

    for (i = 0; i < N; i++)
        all[i] = bl_uuid_v4(pool);
    qsort(all, N, sizeof *all, compare_strings);
    for (i = 1; i < N; i++)
        ck_assert_str_ne(all[i - 1], all[i]);
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("uuid");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, version_and_variant);
    tcase_add_test(tc, uniqueness);
    suite_add_tcase(s, tc);
    return s;
}
