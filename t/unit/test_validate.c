/* Validation: UTF-8, emails, UUIDs, calendar dates, RFC 3339 date-times
 * (offsets, leap days), enums and lengths. */
#include <string.h>

#include "validate.h"
#include "unit.h"

START_TEST(utf8)
{
    ck_assert_int_eq(bl_valid_utf8("plain", 5), 1);
    ck_assert_int_eq(bl_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\x97", 9), 1);
    ck_assert_int_eq(bl_valid_utf8("\xc0\x80", 2), 0);             /* overlong NUL */
    ck_assert_int_eq(bl_valid_utf8("\xe0\x9f\xbf", 3), 0);         /* overlong */
    ck_assert_int_eq(bl_valid_utf8("\xed\xa0\x80", 3), 0);         /* surrogate */
    ck_assert_int_eq(bl_valid_utf8("\xf4\x90\x80\x80", 4), 0);     /* past U+10FFFF */
    ck_assert_int_eq(bl_valid_utf8("\x80", 1), 0);
    ck_assert_int_eq(bl_valid_utf8("\xe2\x82", 2), 0);             /* truncated */
    ck_assert_int_eq(bl_valid_utf8("", 0), 1);
    ck_assert_uint_eq(bl_utf8_chars("\xc3\xa9t\xc3\xa9", 5), 3);
    ck_assert_uint_eq(bl_utf8_chars("\xf0\x9f\x8e\x97", 4), 1);
}
END_TEST

START_TEST(emails)
{
    static const char *const good[] = {
        "a@b.co", "first.last+tag@example.org", "x_y-z@sub.domain-name.example",
        "o'brien@example.ie", "UPPER@EXAMPLE.COM", NULL
    };
    static const char *const bad[] = {
        "", "plain", "@example.com", "a@", "a@b", "a@@b.com", "a@b@c.com", "a b@c.com",
        "a@b .com", ".a@b.com", "a.@b.com", "a..b@c.com", "a@-b.com", "a@b-.com", "a@b..com",
        "a@.b.com", "a@b.com.", "a@b_c.com", "a\r\n@b.com", "\xc3\xa9@b.com", "a@b.com\n", NULL
    };
    const char *const *e;
    char local65[80], long_domain[300];

    for (e = good; *e; e++)
        ck_assert_msg(bl_valid_email(*e), "refused %s", *e);
    for (e = bad; *e; e++)
        ck_assert_msg(!bl_valid_email(*e), "accepted %s", *e);
    ck_assert_int_eq(bl_valid_email(NULL), 0);
    memset(local65, 'a', 65);
    strcpy(local65 + 65, "@b.com");
    ck_assert_int_eq(bl_valid_email(local65), 0);
    strcpy(local65 + 64, "@b.com");
    ck_assert_int_eq(bl_valid_email(local65), 1);
    /* 255 characters in all: over the 254 limit. */
    strcpy(long_domain, "a@");
    while (strlen(long_domain) < 240)
        strcat(long_domain, "abcdefghi.");
    strcat(long_domain, "abcdefghijkcom");
    ck_assert_uint_gt(strlen(long_domain), 254);
    ck_assert_int_eq(bl_valid_email(long_domain), 0);
}
END_TEST

START_TEST(uuids)
{
    ck_assert_int_eq(bl_valid_uuid("6f1c2d9e-1b7a-4c8e-9f00-0a1b2c3d4e5f"), 1);
    ck_assert_int_eq(bl_valid_uuid("6F1C2D9E-1B7A-4C8E-9F00-0A1B2C3D4E5F"), 1);
    ck_assert_int_eq(bl_valid_uuid("6f1c2d9e1b7a4c8e9f000a1b2c3d4e5f"), 0);
    ck_assert_int_eq(bl_valid_uuid("6f1c2d9e-1b7a-4c8e-9f00-0a1b2c3d4e5"), 0);
    ck_assert_int_eq(bl_valid_uuid("6f1c2d9e-1b7a-4c8e-9f00-0a1b2c3d4e5f0"), 0);
    ck_assert_int_eq(bl_valid_uuid("6f1c2d9e-1b7a-4c8e-9f00-0a1b2c3d4e5g"), 0);
    ck_assert_int_eq(bl_valid_uuid("{6f1c2d9e-1b7a-4c8e-9f00-0a1b2c3d4e5f}"), 0);
    ck_assert_int_eq(bl_valid_uuid("' OR 1=1 --"), 0);
    ck_assert_int_eq(bl_valid_uuid(""), 0);
    ck_assert_int_eq(bl_valid_uuid(NULL), 0);
}
END_TEST

START_TEST(dates)
{
    ck_assert_int_eq(bl_valid_date("2024-02-29"), 1);   /* leap year */
    ck_assert_int_eq(bl_valid_date("2000-02-29"), 1);   /* divisible by 400 */
    ck_assert_int_eq(bl_valid_date("1900-02-29"), 0);   /* divisible by 100 */
    ck_assert_int_eq(bl_valid_date("2023-02-29"), 0);
    ck_assert_int_eq(bl_valid_date("2026-04-31"), 0);
    ck_assert_int_eq(bl_valid_date("2026-12-31"), 1);
    ck_assert_int_eq(bl_valid_date("2026-13-01"), 0);
    ck_assert_int_eq(bl_valid_date("2026-00-10"), 0);
    ck_assert_int_eq(bl_valid_date("2026-01-00"), 0);
    ck_assert_int_eq(bl_valid_date("2026-1-01"), 0);
    ck_assert_int_eq(bl_valid_date("2026-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(bl_valid_date(NULL), 0);
}
END_TEST

START_TEST(rfc3339)
{
    static const char *const good[] = {
        "2026-11-24T02:20:28Z", "2026-11-24t02:20:28z", "2026-11-24T02:20:28.123Z",
        "2026-11-24T02:20:28.123456789+05:30", "2026-11-24T02:20:28-08:00",
        "2024-02-29T23:59:59+14:00", "1985-04-12T23:20:50.52Z", NULL
    };
    static const char *const bad[] = {
        "2026-11-24", "2026-11-24T02:20Z", "2026-11-24 02:20:28Z", "2026-11-24T02:20:28",
        "2026-11-24T24:00:00Z", "2026-11-24T02:60:00Z", "2026-11-24T02:20:60Z",
        "2023-02-29T00:00:00Z", "2026-11-24T02:20:28+5:30", "2026-11-24T02:20:28+05:60",
        "2026-11-24T02:20:28+24:00", "2026-11-24T02:20:28.Z", "2026-11-24T02:20:28.1234567890Z",
        "2026-11-24T02:20:28Zjunk", "2026-11-24T02:20:28+05:30x", "", NULL
    };
    const char *const *t;

    for (t = good; *t; t++)
        ck_assert_msg(bl_valid_rfc3339(*t), "refused %s", *t);
    for (t = bad; *t; t++)
        ck_assert_msg(!bl_valid_rfc3339(*t), "accepted %s", *t);
    ck_assert_int_eq(bl_valid_rfc3339(NULL), 0);
}
END_TEST

START_TEST(enums_and_lengths)
{
    static const char *const roles[] = {"patient", "caregiver", "doctor", NULL};

    ck_assert_int_eq(bl_valid_enum("doctor", roles), 1);
    ck_assert_int_eq(bl_valid_enum("Doctor", roles), 0);
    ck_assert_int_eq(bl_valid_enum("admin", roles), 0);
    ck_assert_int_eq(bl_valid_enum(NULL, roles), 0);
    ck_assert_int_eq(bl_valid_length("\xc3\xa9t\xc3\xa9", 3, 3), 1);
    ck_assert_int_eq(bl_valid_length("abcd", 1, 3), 0);
    ck_assert_int_eq(bl_valid_length("", 1, 3), 0);
    ck_assert_int_eq(bl_valid_length("\xff", 0, 3), 0);
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("validate");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, utf8);
    tcase_add_test(tc, emails);
    tcase_add_test(tc, uuids);
    tcase_add_test(tc, dates);
    tcase_add_test(tc, rfc3339);
    tcase_add_test(tc, enums_and_lengths);
    suite_add_tcase(s, tc);
    return s;
}
