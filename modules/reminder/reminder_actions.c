/* reminder_actions.c — what happens to occurrences: complete, snooze, skip;
 * their history (/logs), adherence, and the upcoming occurrences. */
#include "reminder_private.h"
#include "json.h"
#include "validate.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

/* How far ahead an occurrence may be taken or skipped before it fires. */
#define TAKE_AHEAD_SEC (24 * 3600)
#define SKIP_AHEAD_SEC (366 * 24 * 3600)
#define UPCOMING_MAX 1000

/* The JSON body, or an empty object when none was sent. NULL after
 * answering. */
static json_object *optional_body(request_rec *r)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    json_object *empty;

    if (!apr_table_get(r->headers_in, "Transfer-Encoding") && (!cl || !strcmp(cl, "0"))) {
        empty = json_object_new_object();
        apr_pool_cleanup_register(r->pool, empty, (apr_status_t(*)(void *))json_object_put,
                                  apr_pool_cleanup_null);
        return empty;
    }
    return bl_read_json(r);
}

/* occurrence (RFC 3339) and a text field from the body. -1 after answering. */
static int read_occurrence_body(request_rec *r, const char *text_field, const char **occ,
                                const char **text)
{
    const char *allowed[] = {"occurrence", text_field, NULL};
    json_object *body = optional_body(r);
    const char *value = NULL, *err = NULL, *bad;
    apr_time_t t;

    *occ = NULL;
    *text = NULL;
    if (!body)
        return -1;
    if ((bad = bl_json_unknown_field(body, allowed)) != NULL)
        return bl_send_validation_error(r, bad, apr_pstrcat(r->pool, bad,
                                        " is not a known field", NULL)), -1;
    switch (bl_json_get_string(r->pool, body, "occurrence", BL_OPTIONAL, 1, 40, &value, &err)) {
    case BL_FIELD_OK:
        if (bl_time_parse(value, &t) == 0) {
            *occ = bl_time_param(r->pool, apr_time_from_sec(apr_time_sec(t)));
            break;
        }
        /* fall through */
    case BL_FIELD_INVALID:
        return bl_send_validation_error(r, "occurrence", "occurrence must be an RFC 3339 "
                                        "time"), -1;
    default:
        break;
    }
    if (bl_json_get_string(r->pool, body, text_field, BL_OPTIONAL, 0, 2000, text, &err)
        == BL_FIELD_INVALID)
        return bl_send_validation_error(r, text_field, err), -1;
    return 0;
}

/* 1 when occ (timestamptz text) is an occurrence of the reminder no later
 * than now + ahead; 0 when not; -1 after answering. */
static int is_occurrence(request_rec *r, ap_dbd_t *db, const char *id, const char *occ,
                         apr_interval_time_t ahead_sec)
{
    const bl_user *u = bl_current_user(r);
    const char *args[2] = {id, u->id};
    apr_dbd_results_t *res = bl_db_select(r, db, "reminder_schedule_for_update", 2, args);
    apr_dbd_row_t *row;
    bl_schedule *sc;
    apr_time_t t;

    if (!res)
        return -1;
    if (!(row = reminder_first_row(r, db, res)) || bl_time_parse(occ, &t) != 0)
        return 0;
    sc = reminder_stored_schedule(r, bl_db_get(r, db, row, 0), bl_db_get(r, db, row, 1),
                                  bl_db_get(r, db, row, 2), bl_db_get(r, db, row, 3));
    return sc && bl_schedule_next(sc, BL_SEC(t) - 1) == BL_SEC(t)
           && BL_SEC(t) <= BL_SEC(bl_now(r)) + ahead_sec;
}

/* Lowers the supply; the first time it reaches refill_at, one refill
 * notice per channel. -1 after answering. */
static int take_supply(request_rec *r, ap_dbd_t *db, const char *id, const char *now)
{
    const char *args[2] = {id, now};
    apr_dbd_results_t *res = bl_db_select(r, db, "reminder_take_supply", 2, args);
    apr_dbd_row_t *row;
    char *channels, *ch, *last = NULL;
    const char *user, *title, *body, *data;

    if (!res)
        return -1;
    if (!(row = reminder_first_row(r, db, res)) || strcmp(bl_db_get(r, db, row, 0), "1"))
        return 0;
    user = bl_db_get(r, db, row, 1);
    channels = apr_pstrdup(r->pool, bl_db_get(r, db, row, 2));
    title = apr_pstrcat(r->pool, "Time to refill: ", bl_db_get(r, db, row, 4), NULL);
    body = apr_psprintf(r->pool, "%s doses left of %s. Order a refill soon.",
                        bl_db_get(r, db, row, 5), bl_db_get(r, db, row, 4));
    data = apr_psprintf(r->pool, "{\"reminder_id\":\"%s\",\"quantity\":%s}", id,
                        bl_db_get(r, db, row, 5));
    for (ch = apr_strtok(channels, ",", &last); ch; ch = apr_strtok(NULL, ",", &last)) {
        if (bl_outbox_add(r, db, user, ch, "reminder.refill", title, body, data) != 0)
            return bl_send_unavailable(r, "database"), -1;
    }
    return 0;
}

/* An answer for an occurrence that has not fired yet: logged now with
 * status, when occ is one of the reminder's times within window seconds
 * ahead. Returns 0 with *json set (NULL: nothing logged), or -1 after
 * answering (the transaction rolled back on a refusal). */
static int answer_ahead(request_rec *r, ap_dbd_t *db, const char *id, const char *user,
                        const char *occ, const char *now, const char *status,
                        const char *note, apr_interval_time_t window, const char *refusal,
                        const char **json)
{
    const char *args[8];
    int ok = is_occurrence(r, db, id, occ, window);

    if (ok < 0)
        return -1;
    if (!ok) {
        bl_db_rollback(r, db);
        return bl_send_validation_error(r, "occurrence", refusal), -1;
    }
    args[0] = occ;
    args[1] = now;
    args[2] = status;
    args[3] = status;
    args[4] = now;
    args[5] = note;
    args[6] = id;
    args[7] = user;
    return bl_db_value(r, db, "reminder_log_ahead", 8, args, json) == APR_SUCCESS ? 0 : -1;
}

/* 409 when neither the due nor a coming occurrence took the answer. */
static int refuse_unanswered(request_rec *r, ap_dbd_t *db, const char *occ)
{
    bl_db_rollback(r, db);
    return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                         occ ? "this occurrence was already answered"
                             : "no occurrence of this reminder is due", NULL);
}

int reminders_complete(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    const char *id = apr_table_get(params, "id"), *occ, *notes, *args[7], *json = NULL;
    const char *now;
    ap_dbd_t *db;

    if (!(db = bl_db(r)) || reminder_check_access(r, db, id, 1) != 0
        || read_occurrence_body(r, "notes", &occ, &notes) != 0 || bl_db_begin(r, db) != 0)
        return OK;
    now = bl_time_param(r->pool, bl_now(r));
    args[0] = id;
    args[1] = u->id;
    args[2] = occ;
    args[3] = now;
    args[4] = occ;
    args[5] = now;
    args[6] = notes;
    if (bl_db_value(r, db, "reminder_complete", 7, args, &json) != APR_SUCCESS)
        return OK;
    /* Not fired yet: taken ahead of its time, if it is one of its times. */
    if (!json && occ
        && answer_ahead(r, db, id, u->id, occ, now, "taken", notes, TAKE_AHEAD_SEC,
                        "occurrence is not a time of this reminder (or more than a day "
                        "ahead)", &json) != 0)
        return OK;
    if (!json)
        return refuse_unanswered(r, db, occ);
    if (take_supply(r, db, id, now) != 0 || bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_OK, "Dose recorded", json, NULL);
}

int reminders_snooze(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"minutes", NULL};
    const bl_user *u = bl_current_user(r);
    const char *id = apr_table_get(params, "id"), *args[4], *json = NULL, *err = NULL, *bad;
    json_object *body;
    int64_t minutes;
    apr_time_t now;
    ap_dbd_t *db;

    if (!(db = bl_db(r)) || reminder_check_access(r, db, id, 1) != 0 || !(body = bl_read_json(r)))
        return OK;
    if ((bad = bl_json_unknown_field(body, allowed)) != NULL)
        return bl_send_validation_error(r, bad, apr_pstrcat(r->pool, bad,
                                        " is not a known field", NULL));
    if (bl_json_get_int(r->pool, body, "minutes", BL_REQUIRED, 1, 240, &minutes, &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "minutes", "minutes must be a whole number from 1 "
                                        "to 240");
    now = bl_now(r);
    args[0] = id;
    args[1] = u->id;
    args[2] = bl_time_param(r->pool, now + apr_time_from_sec(minutes * 60));
    args[3] = bl_time_param(r->pool, now);
    if (bl_db_value(r, db, "reminder_snooze", 4, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                             "no unanswered occurrence of this reminder to snooze", NULL);
    return bl_send_data(r, HTTP_OK, "Reminder snoozed", json, NULL);
}

int reminders_skip(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    const char *id = apr_table_get(params, "id"), *occ, *reason, *args[6], *json = NULL;
    const char *now;
    ap_dbd_t *db;

    if (!(db = bl_db(r)) || reminder_check_access(r, db, id, 1) != 0
        || read_occurrence_body(r, "reason", &occ, &reason) != 0 || bl_db_begin(r, db) != 0)
        return OK;
    now = bl_time_param(r->pool, bl_now(r));
    args[0] = id;
    args[1] = u->id;
    args[2] = occ;
    args[3] = now;
    args[4] = occ;
    args[5] = reason;
    if (bl_db_value(r, db, "reminder_skip", 6, args, &json) != APR_SUCCESS)
        return OK;
    /* A coming occurrence: logged skipped now, so it will not fire. */
    if (!json && occ
        && answer_ahead(r, db, id, u->id, occ, now, "skipped", reason, SKIP_AHEAD_SEC,
                        "occurrence is not a time of this reminder", &json) != 0)
        return OK;
    if (!json)
        return refuse_unanswered(r, db, occ);
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_OK, "Occurrence skipped", json, NULL);
}

int reminders_logs(request_rec *r, apr_table_t *params)
{
    const char *id = apr_table_get(params, "id"), *args[4];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    int page, per_page;
    ap_dbd_t *db;

    if (bl_pagination_args(r, &page, &per_page) != 0 || !(db = bl_db(r))
        || reminder_check_access(r, db, id, 0) != 0)
        return OK;
    args[0] = id;
    args[1] = apr_itoa(r->pool, per_page);
    args[2] = apr_itoa(r->pool, (page - 1) * per_page);
    args[3] = id;
    if (!(res = bl_db_select(r, db, "reminder_logs", 4, args)))
        return OK;
    row = reminder_first_row(r, db, res);
    return bl_send_data(r, HTTP_OK, NULL, row ? bl_db_get(r, db, row, 0) : "[]",
                        bl_pagination_meta(r, page, per_page,
                                           row ? atol(bl_db_get(r, db, row, 1)) : 0));
}

/* ?from=&to= (RFC 3339; default the last 30 days), ?patient_id= */
int reminders_adherence(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    apr_table_t *q = reminder_query_args(r);
    const char *from_s = apr_table_get(q, "from"), *to_s = apr_table_get(q, "to");
    const char *patient = apr_table_get(q, "patient_id"), *args[9], *json = NULL;
    const reminder_conf *c = reminder_config(r->server);
    apr_time_t from, to = bl_now(r);
    ap_dbd_t *db;

    if (to_s && bl_time_parse(to_s, &to) != 0)
        return bl_send_validation_error(r, "to", "to must be an RFC 3339 time");
    from = to - apr_time_from_sec(30 * 86400);
    if (from_s && bl_time_parse(from_s, &from) != 0)
        return bl_send_validation_error(r, "from", "from must be an RFC 3339 time");
    if (to <= from || to - from > apr_time_from_sec(400 * 86400))
        return bl_send_validation_error(r, "to", "to must be after from, at most 400 days");
    if (patient && !bl_valid_uuid(patient))
        return bl_send_validation_error(r, "patient_id", "patient_id must be a UUID");
    if (!(db = bl_db(r)))
        return OK;
    args[0] = patient;
    args[1] = u->id;
    args[2] = u->id;
    args[3] = u->id;
    args[4] = apr_itoa(r->pool, c->on_time_min);
    args[5] = bl_time_param(r->pool, from);
    args[6] = bl_time_param(r->pool, to);
    args[7] = args[5];
    args[8] = args[6];
    if (bl_db_value(r, db, "reminder_adherence", 9, args, &json) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}

/* ---------------------------------------------------------------- upcoming */

typedef struct {
    time_t at;
    json_object *item;
} upcoming_item;

static int by_time(const void *a, const void *b)
{
    const upcoming_item *x = a, *y = b;

    return x->at < y->at ? -1 : x->at > y->at;
}

int reminders_upcoming(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    apr_table_t *q = reminder_query_args(r);
    const char *hours_s = apr_table_get(q, "hours");
    apr_array_header_t *items = apr_array_make(r->pool, 32, sizeof(upcoming_item));
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    json_object *list;
    time_t now = BL_SEC(bl_now(r)), until;
    long hours = 24;
    ap_dbd_t *db;
    int i;

    if (hours_s) {
        char *end;
        hours = strtol(hours_s, &end, 10);
        if (!*hours_s || *end || hours < 1 || hours > 168)
            return bl_send_validation_error(r, "hours", "hours must be a whole number from 1 "
                                            "to 168");
    }
    until = now + hours * 3600;
    if (!(db = bl_db(r)) || !(res = bl_db_select(r, db, "reminder_active_of", 1, &u->id)))
        return OK;
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        bl_schedule *sc = reminder_stored_schedule(r, bl_db_get(r, db, row, 3),
                                                   bl_db_get(r, db, row, 4),
                                                   bl_db_get(r, db, row, 5),
                                                   bl_db_get(r, db, row, 6));
        time_t t = now - 1;

        while (sc && items->nelts < UPCOMING_MAX && (t = bl_schedule_next(sc, t)) && t <= until) {
            upcoming_item *it = apr_array_push(items);
            it->at = t;
            it->item = json_object_new_object();
            json_object_object_add(it->item, "reminder_id",
                                   json_object_new_string(bl_db_get(r, db, row, 0)));
            json_object_object_add(it->item, "title",
                                   json_object_new_string(bl_db_get(r, db, row, 1)));
            json_object_object_add(it->item, "type",
                                   json_object_new_string(bl_db_get(r, db, row, 2)));
            json_object_object_add(it->item, "occurrence", json_object_new_string(
                                       bl_time_param(r->pool, apr_time_from_sec(t))));
            json_object_object_add(it->item, "at_utc", json_object_new_string(
                                       apr_psprintf(r->pool, "%.19sZ",
                                                    bl_time_param(r->pool,
                                                                  apr_time_from_sec(t)))));
            json_object_object_add(it->item, "at_local", json_object_new_string(
                                       bl_schedule_local_text(r->pool, sc, t)));
            json_object_object_add(it->item, "timezone",
                                   json_object_new_string(bl_schedule_tzid(sc)));
        }
    }
    qsort(items->elts, (size_t)items->nelts, sizeof(upcoming_item), by_time);
    list = json_object_new_array();
    for (i = 0; i < items->nelts; i++)
        json_object_array_add(list, APR_ARRAY_IDX(items, i, upcoming_item).item);
    apr_pool_cleanup_register(r->pool, list, (apr_status_t(*)(void *))json_object_put,
                              apr_pool_cleanup_null);
    return bl_send_data(r, HTTP_OK, NULL, bl_json_to_string(r->pool, list), NULL);
}
