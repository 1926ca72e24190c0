/* CSPRNG wrappers: lengths, alphabet, and that outputs differ. */
#include <string.h>

#include "base64url.h"
#include "random.h"
#include "unit.h"

START_TEST(random_bytes)
{
    unsigned char a[32], b[32];

    ck_assert_int_eq(bl_random_bytes(a, sizeof a), 1);
    ck_assert_int_eq(bl_random_bytes(b, sizeof b), 1);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    ck_assert_int_eq(bl_random_bytes(a, 0), 1);
}
END_TEST

START_TEST(random_token)
{
    const char *t1 = bl_random_token(pool, 32), *t2 = bl_random_token(pool, 32);
    size_t len;

    ck_assert_ptr_nonnull(t1);
    ck_assert_uint_eq(strlen(t1), 43);                 /* 32 bytes, unpadded */
    ck_assert_str_ne(t1, t2);
    ck_assert_ptr_nonnull(bl_base64url_decode(pool, t1, strlen(t1), &len));
    ck_assert_uint_eq(len, 32);
    ck_assert_str_eq(bl_random_token(pool, 0), "");
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("random");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, random_bytes);
    tcase_add_test(tc, random_token);
    suite_add_tcase(s, tc);
    return s;
}
