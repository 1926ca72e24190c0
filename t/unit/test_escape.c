/* Log escaping: a CR/LF or ESC in user input cannot forge or colour a log line. */
#include <stdint.h>
#include <string.h>

#include "escape.h"
#include "unit.h"

START_TEST(control_characters)
{
    ck_assert_str_eq(bl_escape_log(pool, "evil@x.com\r\n[error] forged", 100),
                     "evil@x.com\\x0d\\x0a[error] forged");
    ck_assert_str_eq(bl_escape_log(pool, "\x1b[31mred", 100), "\\x1b[31mred");
    ck_assert_str_eq(bl_escape_log(pool, "tab\there", 100), "tab\\x09here");
    ck_assert_str_eq(bl_escape_log(pool, "del\x7f", 100), "del\\x7f");
    ck_assert_str_eq(bl_escape_log(pool, "q\"b\\", 100), "q\\x22b\\x5c");
}
END_TEST

START_TEST(plain_and_utf8_kept)
{
    ck_assert_str_eq(bl_escape_log(pool, "user@example.com", 100), "user@example.com");
    ck_assert_str_eq(bl_escape_log(pool, "Ren\xc3\xa9", 100), "Ren\xc3\xa9");
    ck_assert_str_eq(bl_escape_log(pool, "", 100), "");
    ck_assert_str_eq(bl_escape_log(pool, NULL, 100), "-");
}
END_TEST

START_TEST(truncation)
{
    ck_assert_str_eq(bl_escape_log(pool, "abcdef", 3), "abc...");
    ck_assert_str_eq(bl_escape_log(pool, "abc", 3), "abc");
    ck_assert_str_eq(bl_escape_log(pool, "\n\n\n\n", 2), "\\x0a\\x0a...");
    ck_assert_str_eq(bl_escape_log(pool, "abc", 0), "...");
    ck_assert_str_eq(bl_escape_log(pool, "abc\n", SIZE_MAX), "abc\\x0a");
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("escape");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, control_characters);
    tcase_add_test(tc, plain_and_utf8_kept);
    tcase_add_test(tc, truncation);
    suite_add_tcase(s, tc);
    return s;
}
