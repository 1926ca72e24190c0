/* Redaction of emails, phone numbers, dates of birth and names before text
 * goes to an outside service; and what must stay (temperatures, doses,
 * ordinary dates, words that merely contain a name). */
#include <string.h>

#include "redact.h"
#include "unit.h"

static const char *const names[] = {"Priya", "Raman-Iyer", "Mary Ann", NULL};

static const char *r(const char *text)
{
    return bl_redact(pool, text, names, "1980-03-05");
}

START_TEST(emails)
{
    ck_assert_str_eq(r("write to priya.r+onc@mail.example.org."),
                     "write to [email].");
    ck_assert_str_eq(r("a@b.co and x_y@host.io"), "[email] and [email]");
    ck_assert_str_eq(r("not an address: a@b, @home, x@y.z"), "not an address: a@b, @home, x@y.z");
}
END_TEST

START_TEST(phones)
{
    ck_assert_str_eq(r("call +91 98765 43210 now"), "call [phone] now");
    ck_assert_str_eq(r("(555) 123-4567"), "[phone]");
    ck_assert_str_eq(r("my number is 020 7946 0958."), "my number is [phone].");
    ck_assert_str_eq(r("+1-202-555-0143"), "[phone]");
    /* Not phones: temperatures, doses, counts, ordinary dates. */
    ck_assert_str_eq(r("fever 38.5 for 3 days, 500 mg twice, on 2024-01-05"),
                     "fever 38.5 for 3 days, 500 mg twice, on 2024-01-05");
    ck_assert_str_eq(r("WBC 1200 cells"), "WBC 1200 cells");
}
END_TEST

START_TEST(dates_of_birth)
{
    ck_assert_str_eq(r("I was born 12/01/1975"), "I was born [date of birth]");
    ck_assert_str_eq(r("DOB: 1975-01-12."), "DOB: [date of birth].");
    /* The user's own date of birth in any common order. */
    ck_assert_str_eq(r("1980-03-05"), "[date of birth]");
    ck_assert_str_eq(r("05/03/1980 and 03/05/1980 and 05.03.80"),
                     "[date of birth] and [date of birth] and [date of birth]");
    /* Other dates stay. */
    ck_assert_str_eq(r("my scan is on 06/03/1980? no, 2026-12-01"),
                     "my scan is on 06/03/1980? no, 2026-12-01");
}
END_TEST

START_TEST(given_names)
{
    ck_assert_str_eq(r("Hi, I'm priya. PRIYA again."), "Hi, I'm [name]. [name] again.");
    ck_assert_str_eq(r("Mrs Raman-Iyer and Ann"), "Mrs [name] and [name]");
    /* Whole words only. */
    ck_assert_str_eq(r("Priyanka and Mary-Kate"), "Priyanka and Mary-Kate");
    ck_assert_str_eq(r("My name is John Smith and I feel sick"),
                     "My name is [name] and I feel sick");
    ck_assert_str_eq(r("call me dave."), "call me [name].");
    ck_assert_str_eq(r("Name: Li Wei"), "Name: [name]");
    /* No names known: only the introduced ones. */
    ck_assert_str_eq(bl_redact(pool, "priya here, my name is Priya", NULL, NULL),
                     "priya here, my name is [name]");
}
END_TEST

START_TEST(nothing_to_do)
{
    const char *text = "I have had a headache since Monday.";

    ck_assert_ptr_eq(r(text), text);
    ck_assert_str_eq(r(""), "");
    ck_assert_ptr_null(bl_redact(pool, NULL, names, NULL));
    /* UTF-8 stays whole. */
    ck_assert_str_eq(r("température 38,5 °C — Priya"), "température 38,5 °C — [name]");
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("redact");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, emails);
    tcase_add_test(tc, phones);
    tcase_add_test(tc, dates_of_birth);
    tcase_add_test(tc, given_names);
    tcase_add_test(tc, nothing_to_do);
    suite_add_tcase(s, tc);
    return s;
}
