/* clock.c — the time domain logic runs on (bl_now), and the test clock.
 *
 * Production builds: bl_now is apr_time_now() and BeautifulTestClock is
 * refused at start-up, so no configuration can move a production clock.
 * Builds configured with --enable-test-clock (BL_TEST_CLOCK, scripts/check)
 * read the time from the file BeautifulTestClock names, written by a test,
 * so that requests and background tasks in every child, and in a second
 * httpd on the same machine, see one time; a request may also carry
 * X-BL-Test-Now. Why a build flag rather than a Define: see README.md. */
#include "core_hooks.h"

#include <http_log.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_file_io.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_TEST_NOW_HEADER "X-BL-Test-Now"
#define BL_NOW_KEY "bl-now"

/* ---------------------------------------------------------------- text */

static int digits(const char *s, int n, int *out)
{
    int i, v = 0;

    for (i = 0; i < n; i++) {
        if (!apr_isdigit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

int bl_time_parse(const char *text, apr_time_t *out)
{
    apr_time_exp_t tm = {0};
    int year, month, day, hour, min, sec, usec = 0, scale = 100000, off = 0;
    const char *p = text;
    apr_time_t t;

    if (!text || strlen(text) < 20 || digits(p, 4, &year) || p[4] != '-'
        || digits(p + 5, 2, &month) || p[7] != '-' || digits(p + 8, 2, &day)
        || (p[10] != 'T' && p[10] != 't') || digits(p + 11, 2, &hour) || p[13] != ':'
        || digits(p + 14, 2, &min) || p[16] != ':' || digits(p + 17, 2, &sec))
        return -1;
    p += 19;
    if (*p == '.') {
        if (!apr_isdigit(p[1]))
            return -1;
        for (p++; apr_isdigit(*p); p++) {
            usec += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (*p == 'Z' || *p == 'z')
        p++;
    else if ((*p == '+' || *p == '-') && p[3] == ':') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    }
    else
        return -1;
    if (*p || year < 1900 || month < 1 || month > 12 || day < 1
        || day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 59)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    if (apr_time_exp_gmt_get(&t, &tm) != APR_SUCCESS)
        return -1;
    *out = t + usec - apr_time_from_sec(off);
    return 0;
}

const char *bl_time_param(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t tm;

    apr_time_exp_gmt(&tm, t);
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        tm.tm_usec);
}

/* ---------------------------------------------------------------- the clock */

#ifdef BL_TEST_CLOCK

/* Set at configuration time only (pconf); read-only in the children. */
static const char *clock_file;

static apr_status_t forget_clock_file(void *unused)
{
    clock_file = NULL;
    return APR_SUCCESS;
}

const char *bl_cmd_test_clock(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err)
        return err;
    clock_file = ap_server_root_relative(cmd->pool, arg);
    if (!clock_file)
        return "BeautifulTestClock: invalid path";
    apr_pool_cleanup_register(cmd->pool, NULL, forget_clock_file, apr_pool_cleanup_null);
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server,
                 "BeautifulTestClock is on: the time comes from %s (test builds only)",
                 clock_file);
    return NULL;
}

/* The time in the clock file, or 0 when it is absent, empty or unreadable. */
static apr_time_t file_time(apr_pool_t *p)
{
    apr_file_t *f;
    char buf[64];
    apr_size_t n = sizeof(buf) - 1;
    apr_time_t t;

    if (!clock_file || apr_file_open(&f, clock_file, APR_FOPEN_READ, 0, p) != APR_SUCCESS)
        return 0;
    if (apr_file_read(f, buf, &n) != APR_SUCCESS)
        n = 0;
    apr_file_close(f);
    while (n > 0 && apr_isspace(buf[n - 1]))
        n--;
    buf[n] = '\0';
    return n && bl_time_parse(buf, &t) == 0 ? t : 0;
}

apr_time_t bl_server_now(server_rec *s)
{
    apr_pool_t *p;
    apr_time_t t;

    if (!clock_file)
        return apr_time_now();
    if (apr_pool_create(&p, NULL) != APR_SUCCESS)
        return apr_time_now();
    t = file_time(p);
    apr_pool_destroy(p);
    return t ? t : apr_time_now();
}

apr_time_t bl_now(request_rec *r)
{
    apr_time_t *cached = NULL, t = 0;
    const char *header;

    if (!clock_file)
        return apr_time_now();
    /* One time for the whole request, as with a frozen file. */
    apr_pool_userdata_get((void **)&cached, BL_NOW_KEY, r->pool);
    if (cached)
        return *cached;
    header = apr_table_get(r->headers_in, BL_TEST_NOW_HEADER);
    if (!header || bl_time_parse(header, &t) != 0)
        t = file_time(r->pool);
    if (!t)
        return apr_time_now();
    cached = apr_palloc(r->pool, sizeof(*cached));
    *cached = t;
    apr_pool_userdata_setn(cached, BL_NOW_KEY, NULL, r->pool);
    return t;
}

#else /* production build */

const char *bl_cmd_test_clock(cmd_parms *cmd, void *dc, const char *arg)
{
    return "BeautifulTestClock exists only in test builds (configure --enable-test-clock)";
}

apr_time_t bl_server_now(server_rec *s)
{
    return apr_time_now();
}

apr_time_t bl_now(request_rec *r)
{
    return apr_time_now();
}

#endif
