/* Reminder schedules: RFC 5545 recurrence rules read in an IANA time zone,
 * parsed and expanded by libical with its zone data. Pure C (APR and
 * libical), no request: the handlers and the scheduler both use it.
 *
 * Wall-clock rules: occurrences are local times in the zone. A local time
 * that does not exist (02:30 on a spring-forward day) happens at the first
 * instant after it (03:00 new time); one that exists twice (01:30 on a
 * fall-back day) happens once, at its first instant. */
#ifndef BL_REMINDER_SCHEDULE_H
#define BL_REMINDER_SCHEDULE_H

#include <apr_pools.h>
#include <time.h>

#define BL_SCHEDULE_MAX_RULES 12
#define BL_SCHEDULE_MAX_TIMES 12

typedef struct bl_schedule bl_schedule;

/* Parses a stored schedule: rules is one RRULE, or several separated by
 * "\n" (the simple form with times of different minutes), each optionally
 * prefixed "RRULE:". ends is 0 for none. On failure returns NULL with
 * *field ("schedule.rrule", "schedule.timezone", "schedule.ends_at") and
 * *err (a message naming it) set. A schedule that never fires between
 * starts and ends is refused as well. */
bl_schedule *bl_schedule_parse(apr_pool_t *p, const char *rules, const char *tzid,
                               time_t starts, time_t ends, const char **field,
                               const char **err);

/* The same for a schedule parse accepted before (stored): without the
 * never-fires check, which costs a second expansion. */
bl_schedule *bl_schedule_load(apr_pool_t *p, const char *rules, const char *tzid,
                              time_t starts, time_t ends, const char **field,
                              const char **err);

/* The same rules and zone between other bounds (ends 0: none), sharing
 * sc's parsed rules: a stored schedule parsed once serves every reminder
 * with its text. */
bl_schedule *bl_schedule_with_bounds(apr_pool_t *p, const bl_schedule *sc, time_t starts,
                                     time_t ends);

/* The rules in canonical form ("FREQ=DAILY;BYHOUR=8;...", "\n"-separated),
 * as stored. */
const char *bl_schedule_rules(const bl_schedule *sc);

/* The first occurrence strictly after `after` within [starts, ends], or 0
 * when there is none. */
time_t bl_schedule_next(const bl_schedule *sc, time_t after);

/* The rules of the simple form: times "HH:MM" (1..12, distinct) on days
 * ("MO".."SU", none: every day). NULL with *field and *err on bad input. */
const char *bl_schedule_simple_rules(apr_pool_t *p, const char *const *times, int ntimes,
                                     const char *const *days, int ndays,
                                     const char **field, const char **err);

/* t as local RFC 3339 time with the zone's offset then
 * ("2026-03-08T08:00:00-04:00"). */
const char *bl_schedule_local_text(apr_pool_t *p, const bl_schedule *sc, time_t t);

/* The bounds (ends 0: none). */
time_t bl_schedule_starts(const bl_schedule *sc);
time_t bl_schedule_ends(const bl_schedule *sc);

/* The zone's IANA name. */
const char *bl_schedule_tzid(const bl_schedule *sc);

/* An iCalendar VTIMEZONE for the zone, with TZID the IANA name, as text
 * (CRLF lines, folded), or NULL for UTC (which needs none). */
const char *bl_schedule_vtimezone(apr_pool_t *p, const bl_schedule *sc);

/* Local wall time of t in the zone as iCalendar text ("20260308T080000"). */
const char *bl_schedule_ical_local(apr_pool_t *p, const bl_schedule *sc, time_t t);

#endif
