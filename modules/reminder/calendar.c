/* calendar.c — POST /reminders/calendar-token and the RFC 5545 feed
 * GET /reminders/calendar.ics?token=..., which calendar apps subscribe to
 * without a login: the token (256 random bits, stored hashed) is the key,
 * and a new one replaces the old. */
#include "reminder_private.h"
#include "hmac.h"
#include "random.h"

#include <http_protocol.h>
#include <apr_strings.h>
#include <string.h>

#define TOKEN_BYTES 32
#define EVENT_DURATION "PT15M"

int reminders_calendar_token(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    const char *token = bl_random_token(r->pool, TOKEN_BYTES), *args[2], *url;
    json_object *data;
    ap_dbd_t *db;

    if (!token)
        return bl_send_unavailable(r, "random");
    if (!(db = bl_db(r)))
        return OK;
    args[0] = u->id;
    args[1] = bl_sha256_hex(r->pool, token, strlen(token));
    if (bl_db_exec(r, db, "reminder_calendar_token_set", 2, args) < 0)
        return OK;
    url = apr_pstrcat(r->pool, bl_public_base_url(r) ? bl_public_base_url(r) : "",
                      BL_API_PREFIX "/reminders/calendar.ics?token=", token, NULL);
    data = json_object_new_object();
    json_object_object_add(data, "token", json_object_new_string(token));
    json_object_object_add(data, "url", json_object_new_string(url));
    bl_send_object(r, HTTP_CREATED, "Calendar feed token created; the previous one no longer "
                   "works", data);
    json_object_put(data);
    return OK;
}

/* ---------------------------------------------------------------- iCalendar text */

/* TEXT value escaping (RFC 5545 3.3.11). */
static const char *ical_escape(apr_pool_t *p, const char *s)
{
    apr_size_t n = strlen(s), i, o = 0;
    char *out = apr_palloc(p, 2 * n + 1);

    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\\' || ch == ';' || ch == ',') {
            out[o++] = '\\';
            out[o++] = ch;
        }
        else if (ch == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        }
        else if (ch != '\r')
            out[o++] = ch;
    }
    out[o] = '\0';
    return out;
}

/* One content line, folded at 75 octets without splitting a UTF-8 character. */
static void add_line(apr_pool_t *p, apr_array_header_t *out, const char *line)
{
    apr_size_t n = strlen(line), start = 0, width = 75;

    while (n - start > width) {
        apr_size_t cut = start + width;
        while (cut > start && ((unsigned char)line[cut] & 0xC0) == 0x80)
            cut--;
        *(const char **)apr_array_push(out) =
            apr_pstrcat(p, start ? " " : "", apr_pstrmemdup(p, line + start, cut - start),
                        "\r\n", NULL);
        start = cut;
        width = 74;    /* the leading space counts */
    }
    *(const char **)apr_array_push(out) =
        apr_pstrcat(p, start ? " " : "", line + start, "\r\n", NULL);
}

static const char *utc_stamp(apr_pool_t *p, time_t t)
{
    struct tm tm;
    char buf[20];

    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return apr_pstrdup(p, buf);
}

/* Appends one VEVENT for a stored reminder row. */
static void add_event(request_rec *r, apr_array_header_t *out, apr_hash_t *zones,
                      ap_dbd_t *db, apr_dbd_row_t *row, time_t now)
{
    const char *id = bl_db_get(r, db, row, 0), *rules = bl_db_get(r, db, row, 3);
    const char *ends = bl_db_get(r, db, row, 6), *notes = bl_db_get(r, db, row, 7);
    const char *location = bl_db_get(r, db, row, 8), *tz;
    bl_schedule *sc = reminder_stored_schedule(r, rules, bl_db_get(r, db, row, 4),
                                               bl_db_get(r, db, row, 5), ends);
    char *list, *one, *last = NULL;
    time_t first;

    if (!sc || !(first = bl_schedule_next(sc, (time_t)apr_atoi64(bl_db_get(r, db, row, 5)) - 1)))
        return;
    tz = bl_schedule_tzid(sc);
    if (strcmp(tz, "UTC") && !apr_hash_get(zones, tz, APR_HASH_KEY_STRING)) {
        const char *vtz = bl_schedule_vtimezone(r->pool, sc);
        if (vtz)
            apr_hash_set(zones, tz, APR_HASH_KEY_STRING, vtz);
    }
    add_line(r->pool, out, "BEGIN:VEVENT");
    add_line(r->pool, out, apr_pstrcat(r->pool, "UID:", id, "@reminders.beautiful-life", NULL));
    add_line(r->pool, out, apr_pstrcat(r->pool, "DTSTAMP:", utc_stamp(r->pool, now), NULL));
    if (!strcmp(tz, "UTC"))
        add_line(r->pool, out, apr_pstrcat(r->pool, "DTSTART:", utc_stamp(r->pool, first), NULL));
    else
        add_line(r->pool, out, apr_pstrcat(r->pool, "DTSTART;TZID=", tz, ":",
                                           bl_schedule_ical_local(r->pool, sc, first), NULL));
    add_line(r->pool, out, "DURATION:" EVENT_DURATION);
    list = apr_pstrdup(r->pool, bl_schedule_rules(sc));
    for (one = apr_strtok(list, "\n", &last); one; one = apr_strtok(NULL, "\n", &last)) {
        /* ends_at bounds the scheduler; the feed says it as UNTIL */
        if (ends && *ends && !strstr(one, "UNTIL=") && !strstr(one, "COUNT="))
            one = apr_pstrcat(r->pool, one, ";UNTIL=",
                              utc_stamp(r->pool, (time_t)apr_atoi64(ends)), NULL);
        add_line(r->pool, out, apr_pstrcat(r->pool, "RRULE:", one, NULL));
    }
    add_line(r->pool, out, apr_pstrcat(r->pool, "SUMMARY:",
                                       ical_escape(r->pool, bl_db_get(r, db, row, 1)), NULL));
    if (*notes)
        add_line(r->pool, out, apr_pstrcat(r->pool, "DESCRIPTION:",
                                           ical_escape(r->pool, notes), NULL));
    if (*location)
        add_line(r->pool, out, apr_pstrcat(r->pool, "LOCATION:",
                                           ical_escape(r->pool, location), NULL));
    add_line(r->pool, out, apr_pstrcat(r->pool, "CATEGORIES:",
                                       apr_pstrdup(r->pool, bl_db_get(r, db, row, 2)), NULL));
    add_line(r->pool, out, "END:VEVENT");
}

int reminders_calendar_feed(request_rec *r, apr_table_t *params)
{
    const char *token = apr_table_get(reminder_query_args(r), "token"), *hash, *user = NULL;
    apr_array_header_t *events = apr_array_make(r->pool, 64, sizeof(char *));
    apr_array_header_t *head = apr_array_make(r->pool, 16, sizeof(char *));
    apr_hash_t *zones = apr_hash_make(r->pool);
    apr_hash_index_t *hi;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    const char *body;
    ap_dbd_t *db;

    if (!token || strlen(token) < 16 || strlen(token) > 128)
        return bl_send_error(r, HTTP_UNAUTHORIZED, BL_ERR_UNAUTHORIZED,
                             "a valid calendar token is required", NULL);
    if (!(db = bl_db(r)))
        return OK;
    hash = bl_sha256_hex(r->pool, token, strlen(token));
    if (bl_db_value(r, db, "reminder_calendar_token_user", 1, &hash, &user) != APR_SUCCESS)
        return OK;
    if (!user)
        return bl_send_error(r, HTTP_UNAUTHORIZED, BL_ERR_UNAUTHORIZED,
                             "a valid calendar token is required", NULL);
    if (!(res = bl_db_select(r, db, "reminder_active_of", 1, &user)))
        return OK;
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0)
        add_event(r, events, zones, db, row, BL_SEC(bl_now(r)));

    add_line(r->pool, head, "BEGIN:VCALENDAR");
    add_line(r->pool, head, "VERSION:2.0");
    add_line(r->pool, head, "PRODID:-//Beautiful Life//Reminders//EN");
    add_line(r->pool, head, "CALSCALE:GREGORIAN");
    add_line(r->pool, head, "METHOD:PUBLISH");
    add_line(r->pool, head, "X-WR-CALNAME:Beautiful Life reminders");
    body = apr_array_pstrcat(r->pool, head, 0);
    for (hi = apr_hash_first(r->pool, zones); hi; hi = apr_hash_next(hi)) {
        const void *k;
        void *v;
        apr_hash_this(hi, &k, NULL, &v);
        body = apr_pstrcat(r->pool, body, (const char *)v, NULL);
    }
    body = apr_pstrcat(r->pool, body, apr_array_pstrcat(r->pool, events, 0),
                       "END:VCALENDAR\r\n", NULL);
    ap_set_content_type(r, "text/calendar; charset=utf-8");
    apr_table_setn(r->headers_out, "Content-Disposition", "inline; filename=\"reminders.ics\"");
    ap_set_content_length(r, (apr_off_t)strlen(body));
    ap_rwrite(body, (int)strlen(body), r);
    return OK;
}
