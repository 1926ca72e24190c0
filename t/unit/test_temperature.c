/* Body temperatures in free text, for red-flag triage: units, unitless
 * ranges, decimal commas, the highest one wins, and what is no temperature. */
#include "temperature.h"
#include "unit.h"

#define NEAR(text, want) \
    ck_assert_msg(bl_text_temperature_c(text) > (want) - 0.01 \
                  && bl_text_temperature_c(text) < (want) + 0.01, \
                  "%s: got %f, want %f", text, bl_text_temperature_c(text), (double)(want))

START_TEST(celsius)
{
    NEAR("fever of 38.4", 38.4);
    NEAR("temp 39c this morning", 39.0);
    NEAR("38,5 \xC2\xB0" "c", 38.5);
    NEAR("37 degrees celsius", 37.0);
    NEAR("it was 38 deg c", 38.0);
    NEAR("36.6 then 38.9 then 37.2", 38.9);
}
END_TEST

START_TEST(fahrenheit)
{
    NEAR("101 f", 38.33);
    NEAR("100.4\xC2\xB0" "f", 38.0);
    NEAR("102 degrees", 38.89);           /* unitless, in the Fahrenheit range */
    NEAR("99 fahrenheit", 37.22);
}
END_TEST

START_TEST(not_temperatures)
{
    ck_assert(bl_text_temperature_c("500 mg twice a day") < 0);
    ck_assert(bl_text_temperature_c("for 3 days") < 0);
    ck_assert(bl_text_temperature_c("blood pressure 120/80") < 0);
    ck_assert(bl_text_temperature_c("20240105") < 0);
    ck_assert(bl_text_temperature_c("60 c") < 0);          /* not a body temperature */
    ck_assert(bl_text_temperature_c("") < 0);
    ck_assert(bl_text_temperature_c("\xC2") < 0);
    ck_assert(bl_text_temperature_c("38.") > 37.9);         /* a full stop after it */
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("temperature");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, celsius);
    tcase_add_test(tc, fahrenheit);
    tcase_add_test(tc, not_temperatures);
    suite_add_tcase(s, tc);
    return s;
}
