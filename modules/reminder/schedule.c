/* schedule.c — recurrence with libical (schedule.h says the rules).
 *
 * Rules are expanded in floating local time (no zone on the iterator);
 * each local time is then placed on the time line with the zone's UTC
 * offsets from libical's built-in IANA data. libical's own conversion of a
 * local time in a spring-forward gap goes back an hour, and of an
 * ambiguous one picks either instant: instant_of() decides those cases.
 *
 * libical keeps per-process caches (built-in zones and their expanded
 * changes) without locking of its own in every version: one mutex guards
 * every call into it from httpd's threads. */
#include "schedule.h"

#include <apr_strings.h>
#include <libical/ical.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A schedule with a rule matching nothing for this long is one that never
 * fires; also bounds the work of one lookup. */
#define MAX_STEPS 200000
#define DAY 86400

struct bl_schedule {
    /* ~2.8 KB each: sized to the rules there are */
    struct icalrecurrencetype *rules;
    int nrules, capacity;
    int has_count;
    icaltimezone *zone;
    const char *tzid;
    const char *canonical;
    time_t starts, ends;
};

static pthread_mutex_t ical_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------- zone arithmetic */

/* Wall-clock fields as seconds on a UTC time line. */
static time_t wall_seconds(struct icaltimetype tt)
{
    struct tm tm = {0};

    tm.tm_year = tt.year - 1900;
    tm.tm_mon = tt.month - 1;
    tm.tm_mday = tt.day;
    tm.tm_hour = tt.hour;
    tm.tm_min = tt.minute;
    tm.tm_sec = tt.second;
    return timegm(&tm);
}

static struct icaltimetype wall_of(const bl_schedule *sc, time_t t)
{
    struct icaltimetype tt = icaltime_from_timet_with_zone(t, 0, sc->zone);

    tt.zone = NULL;    /* floating: the fields are what matters */
    tt.is_daylight = 0;
    return tt;
}

static time_t wall_at(const bl_schedule *sc, time_t t)
{
    return wall_seconds(wall_of(sc, t));
}

/* The instant a local time happens: itself when it exists once, its first
 * instant when it exists twice, the end of the gap when it does not exist. */
static time_t instant_of(const bl_schedule *sc, time_t local)
{
    time_t before = wall_at(sc, local - DAY) - (local - DAY);
    time_t after = wall_at(sc, local + DAY) - (local + DAY);
    time_t ta = local - before, tb = local - after, lo, hi;
    int va = wall_at(sc, ta) == local, vb = wall_at(sc, tb) == local;

    if (va && vb)
        return ta < tb ? ta : tb;
    if (va)
        return ta;
    if (vb)
        return tb;
    /* In a gap: the first instant whose wall time is at or past local. */
    lo = ta < tb ? ta : tb;
    hi = ta < tb ? tb : ta;
    while (lo < hi) {
        time_t mid = lo + (hi - lo) / 2;
        if (wall_at(sc, mid) >= local)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ---------------------------------------------------------------- iteration */

static time_t next_of_rule(const bl_schedule *sc, const struct icalrecurrencetype *rule,
                           time_t after)
{
    struct icaltimetype start = wall_of(sc, sc->starts);
    icalrecur_iterator *it = icalrecur_iterator_new(*rule, start);
    time_t found = 0;
    int steps;

    if (!it)
        return 0;
    /* Skip ahead instead of walking from a start long past (not allowed
     * with COUNT, which counts from the start). A day of margin covers any
     * offset between the wall clock and UTC. */
    if (rule->count == 0 && after - sc->starts > 2 * DAY)
        icalrecur_iterator_set_start(it, wall_of(sc, after - DAY));
    for (steps = 0; steps < MAX_STEPS; steps++) {
        struct icaltimetype n = icalrecur_iterator_next(it);
        time_t t;

        if (icaltime_is_null_time(n))
            break;
        t = instant_of(sc, wall_seconds(n));
        if (sc->ends && t > sc->ends)
            break;
        if (t > after && t >= sc->starts) {
            found = t;
            break;
        }
    }
    icalrecur_iterator_free(it);
    return found;
}

static time_t next_locked(const bl_schedule *sc, time_t after)
{
    time_t best = 0;
    int i;

    for (i = 0; i < sc->nrules; i++) {
        time_t t = next_of_rule(sc, &sc->rules[i], after);
        if (t && (!best || t < best))
            best = t;
    }
    return best;
}

time_t bl_schedule_next(const bl_schedule *sc, time_t after)
{
    time_t t;

    pthread_mutex_lock(&ical_lock);
    t = next_locked(sc, after);
    pthread_mutex_unlock(&ical_lock);
    return t;
}

/* ---------------------------------------------------------------- parsing */

static const char *fail(const char **field, const char **err, const char *f,
                        const char *message)
{
    *field = f;
    *err = message;
    return NULL;
}

#define HAS(list) ((list)[0] != ICAL_RECURRENCE_ARRAY_MAX)

/* 1 when some month of by_month (all when none) has day d (negative: the
 * d-th from its end). */
static int month_day_possible(const struct icalrecurrencetype *rule, int d)
{
    static const int longest[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int i;

    if (d < 0)
        d = -d;
    if (!HAS(rule->by_month))
        return d <= 31;
    for (i = 0; i < ICAL_BY_MONTH_SIZE && rule->by_month[i] != ICAL_RECURRENCE_ARRAY_MAX; i++) {
        int m = icalrecurrencetype_month_month(rule->by_month[i]);
        if (m >= 1 && m <= 12 && d <= longest[m - 1])
            return 1;
    }
    return 0;
}

/* libical looks for the next match by stepping at the rule's frequency, up
 * to the year 2582: a rule whose filters rarely or never match at a fine
 * frequency ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30") would hold a thread
 * for minutes. Reminders need none of that, so such rules are refused:
 * NULL when the rule is bounded, else why not. */
static const char *bounded_rule(const struct icalrecurrencetype *rule)
{
    int i, possible = 0;

    if (rule->freq == ICAL_SECONDLY_RECURRENCE)
        return "schedule.rrule must not repeat more often than every minute";
    if (rule->interval > 1000 || rule->count > 5000)
        return "schedule.rrule: INTERVAL is at most 1000 and COUNT at most 5000";
    if ((rule->freq == ICAL_MINUTELY_RECURRENCE || rule->freq == ICAL_HOURLY_RECURRENCE)
        && (HAS(rule->by_month) || HAS(rule->by_month_day) || HAS(rule->by_year_day)
            || HAS(rule->by_week_no) || HAS(rule->by_set_pos)))
        return "schedule.rrule: an hourly or minutely rule may filter by BYDAY, BYHOUR and "
               "BYMINUTE only";
    if (rule->freq == ICAL_DAILY_RECURRENCE
        && (HAS(rule->by_year_day) || HAS(rule->by_week_no) || HAS(rule->by_set_pos)))
        return "schedule.rrule: a daily rule may not use BYYEARDAY, BYWEEKNO or BYSETPOS";
    if (!HAS(rule->by_month_day))
        return NULL;
    for (i = 0; i < ICAL_BY_MONTHDAY_SIZE
                && rule->by_month_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
        possible |= month_day_possible(rule, rule->by_month_day[i]);
    return possible ? NULL : "schedule.rrule never fires (no such day in those months)";
}

/* One rule (without "RRULE:") into sc; its canonical text, or NULL. */
static const char *parse_rule(apr_pool_t *p, bl_schedule *sc, const char *text,
                              const char **field, const char **err)
{
    struct icalrecurrencetype rule;
    char *canonical;
    const char *copy, *message;

    if (!strncasecmp(text, "RRULE:", 6))
        text += 6;
    if (!*text || strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789=;,:+-") != strlen(text))
        return fail(field, err, "schedule.rrule", "schedule.rrule is not an RFC 5545 rule");
    icalerror_clear_errno();
    rule = icalrecurrencetype_from_string(text);
    if (rule.freq == ICAL_NO_RECURRENCE || icalerrno != ICAL_NO_ERROR) {
        icalerror_clear_errno();
        return fail(field, err, "schedule.rrule", "schedule.rrule is not a valid RFC 5545 rule");
    }
    if ((message = bounded_rule(&rule)) != NULL)
        return fail(field, err, "schedule.rrule", message);
    if (sc->nrules >= sc->capacity)
        return fail(field, err, "schedule.rrule", "schedule.rrule has too many rules");
    canonical = icalrecurrencetype_as_string_r(&rule);
    if (!canonical)
        return fail(field, err, "schedule.rrule", "schedule.rrule is not a valid RFC 5545 rule");
    copy = apr_pstrdup(p, canonical);
    free(canonical);
    sc->rules[sc->nrules++] = rule;
    if (rule.count > 0)
        sc->has_count = 1;
    return copy;
}

static const char *parse_locked(apr_pool_t *p, bl_schedule *sc, const char *rules,
                                const char **field, const char **err)
{
    char *list = apr_pstrdup(p, rules), *last = NULL, *one;
    const char *canonical = NULL, *c;
    int lines = 1;

    for (c = rules; *c; c++)
        lines += *c == '\n';
    sc->capacity = lines < BL_SCHEDULE_MAX_RULES ? lines : BL_SCHEDULE_MAX_RULES;
    sc->rules = apr_palloc(p, sizeof(*sc->rules) * (apr_size_t)sc->capacity);

    for (one = apr_strtok(list, "\n", &last); one; one = apr_strtok(NULL, "\n", &last)) {
        if (!(c = parse_rule(p, sc, one, field, err)))
            return NULL;
        canonical = canonical ? apr_pstrcat(p, canonical, "\n", c, NULL) : c;
    }
    if (!canonical)
        return fail(field, err, "schedule.rrule", "schedule.rrule is empty");
    return canonical;
}

/* "UTC" or Area/Location[/Sub], as the database's is_valid_timezone()
 * wants it: libical also knows legacy names ("EST5EDT") that it refuses. */
static int iana_shaped(const char *tz)
{
    size_t n, i;
    int slashes = 0;

    if (!tz || (n = strlen(tz)) == 0 || n > 64)
        return 0;
    if (!strcmp(tz, "UTC"))
        return 1;
    if (tz[0] < 'A' || tz[0] > 'Z')
        return 0;
    for (i = 1; i < n; i++) {
        char c = tz[i];
        if (c == '/') {
            if (tz[i - 1] == '/' || i + 1 == n)
                return 0;
            slashes++;
        }
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                   || c == '_' || c == '+' || c == '-'))
            return 0;
    }
    return slashes >= 1 && slashes <= 2;
}

static bl_schedule *parse_schedule(apr_pool_t *p, const char *rules, const char *tzid,
                                   time_t starts, time_t ends, int check_fires,
                                   const char **field, const char **err)
{
    bl_schedule *sc = apr_pcalloc(p, sizeof(*sc));
    const char *canonical;

    if (!rules || strlen(rules) > 1000)
        return fail(field, err, "schedule.rrule", "schedule.rrule must be 1 to 1000 characters"),
               NULL;
    if (!iana_shaped(tzid))
        return fail(field, err, "schedule.timezone", "schedule.timezone is not a known IANA zone"),
               NULL;
    if (ends && ends <= starts)
        return fail(field, err, "schedule.ends_at", "schedule.ends_at must be after starts_at"),
               NULL;
    sc->starts = starts;
    sc->ends = ends;
    sc->tzid = apr_pstrdup(p, tzid);

    pthread_mutex_lock(&ical_lock);
    sc->zone = !strcmp(tzid, "UTC") ? icaltimezone_get_utc_timezone()
                                    : icaltimezone_get_builtin_timezone(tzid);
    canonical = sc->zone ? parse_locked(p, sc, rules, field, err) : NULL;
    if (!sc->zone)
        fail(field, err, "schedule.timezone", "schedule.timezone is not a known IANA zone");
    else if (canonical && check_fires && !next_locked(sc, starts - 1)) {
        canonical = NULL;
        fail(field, err, "schedule.rrule", "schedule.rrule never fires between starts_at and "
                                           "ends_at");
    }
    pthread_mutex_unlock(&ical_lock);
    if (!canonical)
        return NULL;
    sc->canonical = canonical;
    return sc;
}

bl_schedule *bl_schedule_parse(apr_pool_t *p, const char *rules, const char *tzid,
                               time_t starts, time_t ends, const char **field,
                               const char **err)
{
    return parse_schedule(p, rules, tzid, starts, ends, 1, field, err);
}

bl_schedule *bl_schedule_load(apr_pool_t *p, const char *rules, const char *tzid,
                              time_t starts, time_t ends, const char **field,
                              const char **err)
{
    return parse_schedule(p, rules, tzid, starts, ends, 0, field, err);
}

bl_schedule *bl_schedule_with_bounds(apr_pool_t *p, const bl_schedule *sc, time_t starts,
                                     time_t ends)
{
    bl_schedule *copy = apr_pmemdup(p, sc, sizeof(*sc));

    copy->starts = starts;
    copy->ends = ends;
    return copy;
}

const char *bl_schedule_rules(const bl_schedule *sc)
{
    return sc->canonical;
}

time_t bl_schedule_starts(const bl_schedule *sc)
{
    return sc->starts;
}

time_t bl_schedule_ends(const bl_schedule *sc)
{
    return sc->ends;
}

const char *bl_schedule_tzid(const bl_schedule *sc)
{
    return sc->tzid;
}

/* ---------------------------------------------------------------- simple form */

static const char *const weekdays[] = {"MO", "TU", "WE", "TH", "FR", "SA", "SU", NULL};

static int parse_hhmm(const char *s, int *hour, int *minute)
{
    if (!s || strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '2' || s[1] < '0'
        || s[1] > '9' || s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9')
        return -1;
    *hour = (s[0] - '0') * 10 + (s[1] - '0');
    *minute = (s[3] - '0') * 10 + (s[4] - '0');
    return *hour < 24 ? 0 : -1;
}

const char *bl_schedule_simple_rules(apr_pool_t *p, const char *const *times, int ntimes,
                                     const char *const *days, int ndays,
                                     const char **field, const char **err)
{
    int hours_by_minute[60][24] = {{0}};
    int seen_day[7] = {0};
    const char *byday = "", *rules = NULL;
    int i, m;

    if (ntimes < 1 || ntimes > BL_SCHEDULE_MAX_TIMES)
        return fail(field, err, "schedule.times", "schedule.times must list 1 to 12 times");
    for (i = 0; i < ntimes; i++) {
        int h, mi;
        if (parse_hhmm(times[i], &h, &mi) != 0)
            return fail(field, err, "schedule.times", "schedule.times must be HH:MM (00:00-23:59)");
        if (hours_by_minute[mi][h])
            return fail(field, err, "schedule.times", "schedule.times lists a time twice");
        hours_by_minute[mi][h] = 1;
    }
    if (ndays > 7)
        return fail(field, err, "schedule.days", "schedule.days lists a day twice");
    for (i = 0; i < ndays; i++) {
        int d;
        for (d = 0; weekdays[d] && (!days[i] || strcmp(days[i], weekdays[d])); d++)
            ;
        if (!weekdays[d])
            return fail(field, err, "schedule.days", "schedule.days must be MO, TU, WE, TH, FR, "
                                                     "SA or SU");
        if (seen_day[d]++)
            return fail(field, err, "schedule.days", "schedule.days lists a day twice");
    }
    for (i = 0; i < 7; i++) {
        if (seen_day[i])
            byday = apr_pstrcat(p, byday, *byday ? "," : ";BYDAY=", weekdays[i], NULL);
    }
    /* One rule per distinct minute: BYHOUR x BYMINUTE is a cross product,
     * and libical does not apply BYSETPOS to daily rules. */
    for (m = 0; m < 60; m++) {
        const char *hours = "";
        int h;
        for (h = 0; h < 24; h++) {
            if (hours_by_minute[m][h])
                hours = apr_psprintf(p, "%s%s%d", hours, *hours ? "," : "", h);
        }
        if (*hours) {
            const char *rule = apr_psprintf(p, "FREQ=%s;BYHOUR=%s;BYMINUTE=%d;BYSECOND=0%s",
                                            ndays ? "WEEKLY" : "DAILY", hours, m, byday);
            rules = rules ? apr_pstrcat(p, rules, "\n", rule, NULL) : rule;
        }
    }
    return rules;
}

/* ---------------------------------------------------------------- output */

const char *bl_schedule_local_text(apr_pool_t *p, const bl_schedule *sc, time_t t)
{
    struct icaltimetype w;
    long off;

    pthread_mutex_lock(&ical_lock);
    w = wall_of(sc, t);
    pthread_mutex_unlock(&ical_lock);
    off = (long)(wall_seconds(w) - t);
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", w.year, w.month,
                        w.day, w.hour, w.minute, w.second, off < 0 ? '-' : '+',
                        labs(off) / 3600, (labs(off) % 3600) / 60);
}

const char *bl_schedule_ical_local(apr_pool_t *p, const bl_schedule *sc, time_t t)
{
    struct icaltimetype w;

    pthread_mutex_lock(&ical_lock);
    w = wall_of(sc, t);
    pthread_mutex_unlock(&ical_lock);
    return apr_psprintf(p, "%04d%02d%02dT%02d%02d%02d", w.year, w.month, w.day, w.hour,
                        w.minute, w.second);
}

const char *bl_schedule_vtimezone(apr_pool_t *p, const bl_schedule *sc)
{
    icalcomponent *vtz, *copy;
    icalproperty *tzid;
    const char *text = NULL;
    char *s;

    if (sc->zone == icaltimezone_get_utc_timezone())
        return NULL;
    pthread_mutex_lock(&ical_lock);
    vtz = icaltimezone_get_component(sc->zone);
    copy = vtz ? icalcomponent_new_clone(vtz) : NULL;
    if (copy) {
        /* libical names its zones "/freeassociation.sourceforge.net/..."; a
         * feed names them as its events do. */
        tzid = icalcomponent_get_first_property(copy, ICAL_TZID_PROPERTY);
        if (tzid)
            icalproperty_set_tzid(tzid, sc->tzid);
        s = icalcomponent_as_ical_string_r(copy);
        if (s) {
            text = apr_pstrdup(p, s);
            free(s);
        }
        icalcomponent_free(copy);
    }
    pthread_mutex_unlock(&ical_lock);
    return text;
}
