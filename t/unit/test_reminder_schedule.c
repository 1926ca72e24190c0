/* Reminder schedules (modules/reminder/schedule.c): libical rules in IANA
 * zones across DST changes, the simple form, refusals naming the field. */
#include <string.h>
#include <time.h>

#include "schedule.h"
#include "unit.h"

/* "2026-03-08T12:00:00Z" as time_t */
static time_t utc(const char *s)
{
    struct tm tm = {0};

    ck_assert_ptr_nonnull(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return timegm(&tm);
}

static const char *text(time_t t)
{
    static char buf[32];
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static bl_schedule *must_parse(const char *rules, const char *tz, const char *starts)
{
    const char *field = NULL, *err = NULL;
    bl_schedule *sc = bl_schedule_parse(pool, rules, tz, utc(starts), 0, &field, &err);

    ck_assert_msg(sc != NULL, "%s: %s", field, err);
    return sc;
}

START_TEST(daily_eight_across_spring_and_fall)
{
    bl_schedule *sc = must_parse("FREQ=DAILY;BYHOUR=8;BYMINUTE=0;BYSECOND=0",
                                 "America/New_York", "2026-03-01T00:00:00Z");

    /* EST (-5) before 8 March, EDT (-4) after; EST again after 1 November */
    ck_assert_str_eq(text(bl_schedule_next(sc, utc("2026-03-07T00:00:00Z"))), "2026-03-07T13:00:00Z");
    ck_assert_str_eq(text(bl_schedule_next(sc, utc("2026-03-07T13:00:00Z"))), "2026-03-08T12:00:00Z");
    ck_assert_str_eq(text(bl_schedule_next(sc, utc("2026-03-08T12:00:00Z"))), "2026-03-09T12:00:00Z");
    ck_assert_str_eq(text(bl_schedule_next(sc, utc("2026-10-31T13:00:00Z"))), "2026-11-01T13:00:00Z");
    ck_assert_str_eq(text(bl_schedule_next(sc, utc("2026-10-30T23:00:00Z"))), "2026-10-31T12:00:00Z");
    ck_assert_str_eq(bl_schedule_local_text(pool, sc, utc("2026-03-08T12:00:00Z")),
                     "2026-03-08T08:00:00-04:00");
    ck_assert_str_eq(bl_schedule_local_text(pool, sc, utc("2026-03-07T13:00:00Z")),
                     "2026-03-07T08:00:00-05:00");
}
END_TEST

START_TEST(gap_fires_at_first_valid_instant)
{
    bl_schedule *sc = must_parse("FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0",
                                 "America/New_York", "2026-03-01T00:00:00Z");

    ck_assert_str_eq(text(bl_schedule_next(sc, utc("2026-03-07T08:00:00Z"))), "2026-03-08T07:00:00Z");
    ck_assert_str_eq(bl_schedule_local_text(pool, sc, utc("2026-03-08T07:00:00Z")),
                     "2026-03-08T03:00:00-04:00");
    ck_assert_str_eq(text(bl_schedule_next(sc, utc("2026-03-08T07:00:00Z"))), "2026-03-09T06:30:00Z");
}
END_TEST

START_TEST(ambiguous_fires_once)
{
    bl_schedule *sc = must_parse("FREQ=DAILY;BYHOUR=1;BYMINUTE=30;BYSECOND=0",
                                 "America/New_York", "2026-10-01T00:00:00Z");
    time_t first = bl_schedule_next(sc, utc("2026-10-31T12:00:00Z"));

    ck_assert_str_eq(text(first), "2026-11-01T05:30:00Z");     /* 01:30 EDT */
    ck_assert_str_eq(text(bl_schedule_next(sc, first)), "2026-11-02T06:30:00Z");
}
END_TEST

START_TEST(simple_form)
{
    const char *times[] = {"20:30", "08:00", "12:00"};
    const char *days[] = {"WE", "MO"};
    const char *field = NULL, *err = NULL;
    const char *rules = bl_schedule_simple_rules(pool, times, 3, days, 2, &field, &err);
    bl_schedule *sc;
    time_t t;

    ck_assert_ptr_nonnull(rules);
    ck_assert_str_eq(rules, "FREQ=WEEKLY;BYHOUR=8,12;BYMINUTE=0;BYSECOND=0;BYDAY=MO,WE\n"
                            "FREQ=WEEKLY;BYHOUR=20;BYMINUTE=30;BYSECOND=0;BYDAY=MO,WE");
    sc = must_parse(rules, "Europe/Berlin", "2026-12-01T00:00:00Z");   /* a Tuesday */
    t = bl_schedule_next(sc, utc("2026-12-01T00:00:00Z"));
    ck_assert_str_eq(text(t), "2026-12-02T07:00:00Z");
    t = bl_schedule_next(sc, t);
    ck_assert_str_eq(text(t), "2026-12-02T11:00:00Z");
    t = bl_schedule_next(sc, t);
    ck_assert_str_eq(text(t), "2026-12-02T19:30:00Z");
    t = bl_schedule_next(sc, t);
    ck_assert_str_eq(text(t), "2026-12-07T07:00:00Z");

    times[0] = "24:00";
    ck_assert_ptr_null(bl_schedule_simple_rules(pool, times, 1, NULL, 0, &field, &err));
    ck_assert_str_eq(field, "schedule.times");
    times[0] = "08:00";
    days[0] = "XX";
    ck_assert_ptr_null(bl_schedule_simple_rules(pool, times, 1, days, 1, &field, &err));
    ck_assert_str_eq(field, "schedule.days");
}
END_TEST

START_TEST(refusals_name_the_field)
{
    const char *field = NULL, *err = NULL;
    time_t s = utc("2026-12-01T00:00:00Z");

    ck_assert_ptr_null(bl_schedule_parse(pool, "FREQ=SOMETIMES", "UTC", s, 0, &field, &err));
    ck_assert_str_eq(field, "schedule.rrule");
    ck_assert_ptr_null(bl_schedule_parse(pool, "FREQ=DAILY;BYHOUR=25", "UTC", s, 0, &field, &err));
    ck_assert_str_eq(field, "schedule.rrule");
    ck_assert_ptr_null(bl_schedule_parse(pool, "FREQ=DAILY", "Mars/Olympus_Mons", s, 0, &field,
                                         &err));
    ck_assert_str_eq(field, "schedule.timezone");
    ck_assert_ptr_null(bl_schedule_parse(pool, "FREQ=DAILY", "EST5EDT", s, 0, &field, &err));
    ck_assert_str_eq(field, "schedule.timezone");
    ck_assert_ptr_null(bl_schedule_parse(pool, "FREQ=DAILY", "UTC", s, s - 60, &field, &err));
    ck_assert_str_eq(field, "schedule.ends_at");
    ck_assert_ptr_null(bl_schedule_parse(pool, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "UTC", s,
                                         0, &field, &err));
    ck_assert_str_eq(field, "schedule.rrule");
    ck_assert(strstr(err, "never fires") != NULL);
    ck_assert_ptr_null(bl_schedule_parse(pool, "FREQ=DAILY;BYHOUR=8", "UTC", s,
                                         s + 3600, &field, &err));
    ck_assert_str_eq(field, "schedule.rrule");
    ck_assert_ptr_null(bl_schedule_parse(pool, "FREQ=SECONDLY", "UTC", s, 0, &field, &err));
}
END_TEST

/* Rules libical would scan for centuries at a fine frequency are refused
 * at once instead of holding a thread. */
START_TEST(costly_rules_refused)
{
    static const char *const rules[] = {
        "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=MINUTELY;BYYEARDAY=366",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=-30",
        "FREQ=DAILY;BYWEEKNO=53", "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=4,6",
        "FREQ=DAILY;INTERVAL=5000", "FREQ=DAILY;COUNT=100000", NULL};
    const char *field = NULL, *err = NULL;
    time_t s = utc("2026-12-01T00:00:00Z");
    int i;

    for (i = 0; rules[i]; i++) {
        ck_assert_msg(bl_schedule_parse(pool, rules[i], "UTC", s, 0, &field, &err) == NULL,
                      "%s accepted", rules[i]);
        ck_assert_str_eq(field, "schedule.rrule");
    }
    /* rare but real: 29 February on a Monday */
    ck_assert_ptr_nonnull(bl_schedule_parse(pool, "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
                                            "UTC", s, 0, &field, &err));
}
END_TEST

START_TEST(count_and_long_past_start)
{
    bl_schedule *sc = must_parse("FREQ=DAILY;COUNT=2;BYHOUR=9;BYMINUTE=0;BYSECOND=0", "UTC",
                                 "2026-12-01T00:00:00Z");
    time_t t = bl_schedule_next(sc, utc("2026-12-01T00:00:00Z"));

    ck_assert_str_eq(text(t), "2026-12-01T09:00:00Z");
    t = bl_schedule_next(sc, t);
    ck_assert_str_eq(text(t), "2026-12-02T09:00:00Z");
    ck_assert_int_eq(bl_schedule_next(sc, t), 0);

    sc = must_parse("FREQ=DAILY;INTERVAL=3;BYHOUR=9;BYMINUTE=0;BYSECOND=0", "UTC",
                    "2020-01-01T00:00:00Z");
    /* 2020-01-01 + 3k days: 2026-12-01 is day 2526 = 3 x 842 */
    ck_assert_str_eq(text(bl_schedule_next(sc, utc("2026-11-30T12:00:00Z"))),
                     "2026-12-01T09:00:00Z");
}
END_TEST

START_TEST(shared_parse_with_other_bounds)
{
    bl_schedule *sc = must_parse("FREQ=DAILY;INTERVAL=2;BYHOUR=9;BYMINUTE=0;BYSECOND=0", "UTC",
                                 "2026-12-01T00:00:00Z");
    bl_schedule *later = bl_schedule_with_bounds(pool, sc, utc("2026-12-02T00:00:00Z"),
                                                 utc("2026-12-05T00:00:00Z"));

    /* the same rule, counted from the other start and stopped at its end */
    ck_assert_str_eq(text(bl_schedule_next(later, utc("2026-12-01T00:00:00Z"))),
                     "2026-12-02T09:00:00Z");
    ck_assert_str_eq(text(bl_schedule_next(later, utc("2026-12-02T09:00:00Z"))),
                     "2026-12-04T09:00:00Z");
    ck_assert_int_eq(bl_schedule_next(later, utc("2026-12-04T09:00:00Z")), 0);
    /* the original keeps its own bounds */
    ck_assert_str_eq(text(bl_schedule_next(sc, utc("2026-12-01T00:00:00Z"))),
                     "2026-12-01T09:00:00Z");
    ck_assert_str_eq(bl_schedule_rules(later), bl_schedule_rules(sc));
}
END_TEST

START_TEST(vtimezone_named_by_iana)
{
    bl_schedule *sc = must_parse("FREQ=DAILY", "America/New_York", "2026-12-01T00:00:00Z");
    const char *vtz = bl_schedule_vtimezone(pool, sc);

    ck_assert_ptr_nonnull(vtz);
    ck_assert(strstr(vtz, "BEGIN:VTIMEZONE") != NULL);
    ck_assert(strstr(vtz, "TZID:America/New_York") != NULL);
    ck_assert_ptr_null(bl_schedule_vtimezone(pool, must_parse("FREQ=DAILY", "UTC",
                                                              "2026-12-01T00:00:00Z")));
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("reminder_schedule");
    TCase *tc = unit_tcase("schedule");

    tcase_add_test(tc, daily_eight_across_spring_and_fall);
    tcase_add_test(tc, gap_fires_at_first_valid_instant);
    tcase_add_test(tc, ambiguous_fires_once);
    tcase_add_test(tc, simple_form);
    tcase_add_test(tc, refusals_name_the_field);
    tcase_add_test(tc, costly_rules_refused);
    tcase_add_test(tc, count_and_long_past_start);
    tcase_add_test(tc, shared_parse_with_other_bounds);
    tcase_add_test(tc, vtimezone_named_by_iana);
    suite_add_tcase(s, tc);
    return s;
}
