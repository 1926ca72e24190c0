/* reminders_crud.c — GET/POST /reminders, GET/PUT/DELETE /reminders/:id.
 *
 * The body is validated into one flat JSON object handed to a single
 * prepared INSERT or UPDATE (a key present means "set"); the schedule is
 * checked with libical and the first next_fire_at computed here. */
#include "reminder_private.h"
#include "json.h"
#include "validate.h"

#include <http_log.h>
#include <apr_strings.h>
#include <string.h>

static const char *const types[] = {"medication", "appointment", "other", NULL};
static const char *const channel_names[] = {"push", "in_app", "sms", "email", NULL};

/* ---------------------------------------------------------------- body */

static int refuse_unknown(request_rec *r, json_object *obj, const char *const *allowed,
                          const char *prefix)
{
    const char *bad = bl_json_unknown_field(obj, allowed);

    if (!bad)
        return 0;
    bad = apr_pstrcat(r->pool, prefix ? prefix : "", bad, NULL);
    return bl_send_validation_error(r, bad, apr_pstrcat(r->pool, bad, " is not a known field",
                                                        NULL)), -1;
}

static int is_null(json_object *obj, const char *field)
{
    json_object *v = NULL;

    return json_object_object_get_ex(obj, field, &v) && v == NULL;
}

/* Copies an optional string (null clears) into flat under key. */
static int take_string(request_rec *r, json_object *src, const char *field, const char *name,
                       const char *key, size_t max_chars, int required, json_object *flat)
{
    const char *value = NULL, *err = NULL;

    if (!required && is_null(src, field)) {
        json_object_object_add(flat, key, NULL);
        return 0;
    }
    switch (bl_json_get_string(r->pool, src, field, required, 1, max_chars, &value, &err)) {
    case BL_FIELD_OK:
        if (required && value[strspn(value, " \t\r\n")] == '\0')
            return bl_send_validation_error(r, name, apr_pstrcat(r->pool, name,
                                                                 " must not be blank", NULL)), -1;
        json_object_object_add(flat, key, json_object_new_string(value));
        return 0;
    case BL_FIELD_ABSENT:
        return 0;
    default:
        if (strncmp(err, field, strlen(field)) == 0)
            err = apr_pstrcat(r->pool, name, err + strlen(field), NULL);
        return bl_send_validation_error(r, name, err), -1;
    }
}

/* An RFC 3339 time; 0 with *out, 1 when absent, -1 after answering. */
static int take_time(request_rec *r, json_object *src, const char *field, const char *name,
                     apr_time_t *out)
{
    const char *value = NULL, *err = NULL;

    switch (bl_json_get_string(r->pool, src, field, BL_OPTIONAL, 1, 40, &value, &err)) {
    case BL_FIELD_ABSENT:
        return 1;
    case BL_FIELD_OK:
        if (bl_time_parse(value, out) == 0)
            return 0;
        /* fall through */
    default:
        return bl_send_validation_error(r, name, apr_pstrcat(r->pool, name,
                                        " must be an RFC 3339 time", NULL)), -1;
    }
}

/* A list of strings (1..max) into a C array; -1 after answering. */
static int take_string_array(request_rec *r, json_object *src, const char *field,
                             const char *name, int max, const char ***out, int *n)
{
    json_object *arr = NULL;
    int i, len;

    *n = 0;
    if (!json_object_object_get_ex(src, field, &arr) || !arr)
        return 0;
    if (!json_object_is_type(arr, json_type_array) || (len = (int)json_object_array_length(arr)) < 1
        || len > max)
        return bl_send_validation_error(r, name, apr_psprintf(r->pool,
                                        "%s must be a list of 1 to %d strings", name, max)), -1;
    *out = apr_pcalloc(r->pool, sizeof(char *) * (len + 1));
    for (i = 0; i < len; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(e, json_type_string))
            return bl_send_validation_error(r, name, apr_pstrcat(r->pool, name,
                                            " must be a list of strings", NULL)), -1;
        (*out)[i] = json_object_get_string(e);
    }
    *n = len;
    return 0;
}

static json_object *string_array(const char *const *items, int n)
{
    json_object *a = json_object_new_array();
    int i;

    for (i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(items[i]));
    return a;
}

static int take_channels(request_rec *r, json_object *src, json_object *flat)
{
    const char **items = NULL;
    int n, i, j;

    if (take_string_array(r, src, "channels", "channels", 4, &items, &n) != 0)
        return -1;
    if (!n)
        return 0;
    for (i = 0; i < n; i++) {
        if (!bl_valid_enum(items[i], channel_names))
            return bl_send_validation_error(r, "channels",
                                            "channels must be push, in_app, sms or email"), -1;
        for (j = 0; j < i; j++) {
            if (!strcmp(items[i], items[j]))
                return bl_send_validation_error(r, "channels", "channels lists one twice"), -1;
        }
    }
    json_object_object_add(flat, "channels", string_array(items, n));
    return 0;
}

/* A number >= min (> min when strict) as text into flat. */
static int take_number(request_rec *r, json_object *obj, const char *field, const char *name,
                       int required, double min, int strict, double max, json_object *flat,
                       const char *key)
{
    json_object *v = NULL;
    double d;

    if (!json_object_object_get_ex(obj, field, &v) || !v) {
        if (required)
            return bl_send_validation_error(r, name, apr_pstrcat(r->pool, name, " is required",
                                                                 NULL)), -1;
        return 0;
    }
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return bl_send_validation_error(r, name, apr_pstrcat(r->pool, name,
                                                             " must be a number", NULL)), -1;
    d = json_object_get_double(v);
    if (d < min || (strict && d <= min) || d > max)
        return bl_send_validation_error(r, name, apr_psprintf(r->pool,
                                        "%s must be %s %g and at most %g", name,
                                        strict ? "more than" : "at least", min, max)), -1;
    json_object_object_add(flat, key, json_object_new_string(apr_psprintf(r->pool, "%.3f", d)));
    return 0;
}

static int take_int(request_rec *r, json_object *obj, const char *field, const char *name,
                    int64_t min, int64_t max, json_object *flat, const char *key)
{
    int64_t v;
    const char *err = NULL;

    if (bl_json_get_int(r->pool, obj, field, BL_REQUIRED, min, max, &v, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, name, apr_pstrcat(r->pool, name,
                                        strstr(err, " ") ? strstr(err, " ") : "", NULL)), -1;
    json_object_object_add(flat, key, json_object_new_int64(v));
    return 0;
}

static int take_nag(request_rec *r, json_object *src, json_object *flat)
{
    static const char *const allowed[] = {"after_minutes", "max_times", NULL};
    json_object *nag = NULL;
    const char *err = NULL;

    if (is_null(src, "nag")) {
        json_object_object_add(flat, "nag", json_object_new_boolean(0));
        return 0;
    }
    switch (bl_json_get_object(r->pool, src, "nag", BL_OPTIONAL, &nag, &err)) {
    case BL_FIELD_ABSENT:
        return 0;
    case BL_FIELD_OK:
        break;
    default:
        return bl_send_validation_error(r, "nag", err), -1;
    }
    if (refuse_unknown(r, nag, allowed, "nag.") != 0
        || take_int(r, nag, "after_minutes", "nag.after_minutes", 1, 1440, flat,
                    "nag_after_minutes") != 0
        || take_int(r, nag, "max_times", "nag.max_times", 1, 20, flat, "nag_max_times") != 0)
        return -1;
    json_object_object_add(flat, "nag", json_object_new_boolean(1));
    return 0;
}

static int take_supply(request_rec *r, json_object *src, json_object *flat)
{
    static const char *const allowed[] = {"quantity", "per_dose", "refill_at", NULL};
    json_object *supply = NULL;
    const char *err = NULL;

    if (is_null(src, "supply")) {
        json_object_object_add(flat, "supply", json_object_new_boolean(0));
        return 0;
    }
    switch (bl_json_get_object(r->pool, src, "supply", BL_OPTIONAL, &supply, &err)) {
    case BL_FIELD_ABSENT:
        return 0;
    case BL_FIELD_OK:
        break;
    default:
        return bl_send_validation_error(r, "supply", err), -1;
    }
    if (refuse_unknown(r, supply, allowed, "supply.") != 0
        || take_number(r, supply, "quantity", "supply.quantity", 1, 0, 0, 1e6, flat,
                       "supply_quantity") != 0
        || take_number(r, supply, "per_dose", "supply.per_dose", 1, 0, 1, 1e4, flat,
                       "supply_per_dose") != 0
        || take_number(r, supply, "refill_at", "supply.refill_at", 0, 0, 0, 1e6, flat,
                       "supply_refill_at") != 0)
        return -1;
    json_object_object_add(flat, "supply", json_object_new_boolean(1));
    return 0;
}

static int take_medication(request_rec *r, json_object *src, json_object *flat)
{
    static const char *const allowed[] = {"name", "dosage", NULL};
    json_object *med = NULL;
    const char *err = NULL;

    if (is_null(src, "medication")) {
        json_object_object_add(flat, "medication_name", NULL);
        json_object_object_add(flat, "dosage", NULL);
        return 0;
    }
    switch (bl_json_get_object(r->pool, src, "medication", BL_OPTIONAL, &med, &err)) {
    case BL_FIELD_ABSENT:
        return 0;
    case BL_FIELD_OK:
        break;
    default:
        return bl_send_validation_error(r, "medication", err), -1;
    }
    if (refuse_unknown(r, med, allowed, "medication.") != 0
        || take_string(r, med, "name", "medication.name", "medication_name", 200, BL_OPTIONAL,
                       flat) != 0
        || take_string(r, med, "dosage", "medication.dosage", "dosage", 200, BL_OPTIONAL,
                       flat) != 0)
        return -1;
    return 0;
}

/* The schedule object: rules checked with libical, the first occurrence
 * from now on put in flat as next_fire_at (NULL: none left). */
static int take_schedule(request_rec *r, json_object *src, int required, json_object *flat)
{
    static const char *const allowed[] = {"rrule", "times", "days", "timezone", "starts_at",
                                          "ends_at", NULL};
    json_object *sch = NULL;
    const char *err = NULL, *field = NULL, *rrule = NULL, *tz = NULL, *rules;
    const char **times = NULL, **days = NULL;
    int ntimes = 0, ndays = 0, rc;
    apr_time_t now = bl_now(r), starts = now, ends = 0;
    bl_schedule *sc;
    time_t next;

    switch (bl_json_get_object(r->pool, src, "schedule", required, &sch, &err)) {
    case BL_FIELD_ABSENT:
        return 0;
    case BL_FIELD_OK:
        break;
    default:
        return bl_send_validation_error(r, "schedule", err), -1;
    }
    if (refuse_unknown(r, sch, allowed, "schedule.") != 0)
        return -1;
    if (bl_json_get_string(r->pool, sch, "timezone", BL_REQUIRED, 1, 64, &tz, &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "schedule.timezone",
                                        "schedule.timezone is required (an IANA zone)"), -1;
    if (bl_json_get_string(r->pool, sch, "rrule", BL_OPTIONAL, 1, 1000, &rrule, &err)
        == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "schedule.rrule", "schedule.rrule must be a string "
                                        "of 1 to 1000 characters"), -1;
    if (take_string_array(r, sch, "times", "schedule.times", BL_SCHEDULE_MAX_TIMES, &times,
                          &ntimes) != 0
        || take_string_array(r, sch, "days", "schedule.days", 7, &days, &ndays) != 0)
        return -1;
    if ((rc = take_time(r, sch, "starts_at", "schedule.starts_at", &starts)) < 0
        || (rc = take_time(r, sch, "ends_at", "schedule.ends_at", &ends)) < 0)
        return -1;
    if (rrule && (ntimes || ndays))
        return bl_send_validation_error(r, "schedule.rrule", "give schedule.rrule or "
                                        "schedule.times, not both"), -1;
    if (!rrule && !ntimes)
        return bl_send_validation_error(r, "schedule.rrule", "schedule.rrule or "
                                        "schedule.times is required"), -1;
    if (rrule && strchr(rrule, '\n'))
        return bl_send_validation_error(r, "schedule.rrule", "schedule.rrule is one rule"), -1;
    rules = rrule ? rrule
                  : bl_schedule_simple_rules(r->pool, times, ntimes, days, ndays, &field, &err);
    if (!rules)
        return bl_send_validation_error(r, field, err), -1;
    sc = bl_schedule_parse(r->pool, rules, tz, BL_SEC(starts), ends ? BL_SEC(ends) : 0,
                           &field, &err);
    if (!sc)
        return bl_send_validation_error(r, field, err), -1;
    next = bl_schedule_next(sc, BL_SEC(now) - 1);
    json_object_object_add(flat, "rrule", json_object_new_string(bl_schedule_rules(sc)));
    json_object_object_add(flat, "timezone", json_object_new_string(tz));
    json_object_object_add(flat, "starts_at",
                           json_object_new_string(bl_time_param(r->pool, starts)));
    json_object_object_add(flat, "ends_at", ends ? json_object_new_string(
                                                       bl_time_param(r->pool, ends)) : NULL);
    if (ntimes)
        json_object_object_add(flat, "times", string_array(times, ntimes));
    json_object_object_add(flat, "days", ndays ? string_array(days, ndays) : NULL);
    json_object_object_add(flat, "next_fire_at",
                           next ? json_object_new_string(bl_time_param(
                                      r->pool, apr_time_from_sec(next))) : NULL);
    return 0;
}

/* Validates a create (required fields) or an update (any subset) body
 * into flat. Returns 0, or -1 after answering. */
static int read_body(request_rec *r, int creating, json_object **flat_out)
{
    static const char *const allowed[] = {"type", "title", "notes", "medication", "location",
                                          "schedule", "channels", "nag", "supply", "is_active",
                                          NULL};
    json_object *body = bl_read_json(r), *flat;
    const char *type = NULL, *err = NULL;
    int active;
    bl_field_status st;

    if (!body || refuse_unknown(r, body, allowed, NULL) != 0)
        return -1;
    flat = json_object_new_object();
    apr_pool_cleanup_register(r->pool, flat, (apr_status_t(*)(void *))json_object_put,
                              apr_pool_cleanup_null);
    *flat_out = flat;
    st = bl_json_get_enum(r->pool, body, "type", creating, types, &type, &err);
    if (st == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "type", err), -1;
    if (type)
        json_object_object_add(flat, "type", json_object_new_string(type));
    if (take_string(r, body, "title", "title", "title", 200, creating, flat) != 0
        || (!creating && is_null(body, "title")
            && (bl_send_validation_error(r, "title", "title must not be null"), 1))
        || take_string(r, body, "notes", "notes", "notes", 2000, BL_OPTIONAL, flat) != 0
        || take_string(r, body, "location", "location", "location", 500, BL_OPTIONAL, flat) != 0
        || take_medication(r, body, flat) != 0 || take_channels(r, body, flat) != 0
        || take_nag(r, body, flat) != 0 || take_supply(r, body, flat) != 0
        || take_schedule(r, body, creating, flat) != 0)
        return -1;
    st = bl_json_get_bool(r->pool, body, "is_active", BL_OPTIONAL, &active, &err);
    if (st == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "is_active", err), -1;
    if (st == BL_FIELD_OK)
        json_object_object_add(flat, "is_active", json_object_new_boolean(active));
    return 0;
}

/* ---------------------------------------------------------------- routes */

int reminders_create(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    json_object *flat = NULL;
    ap_dbd_t *db;
    const char *args[2], *json = NULL;

    if (read_body(r, 1, &flat) != 0 || !(db = bl_db(r)))
        return OK;
    args[0] = bl_json_to_string(r->pool, flat);
    args[1] = u->id;
    if (bl_db_value(r, db, "reminder_insert", 2, args, &json) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_CREATED, "Reminder created", json, NULL);
}

int reminders_get(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    const char *id = apr_table_get(params, "id"), *args[3], *json = NULL;
    ap_dbd_t *db;

    if (!bl_valid_uuid(id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "reminder not found", NULL);
    if (!(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = u->id;
    args[2] = u->id;
    if (bl_db_value(r, db, "reminder_get", 3, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "reminder not found", NULL);
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}

/* Recomputes next_fire_at when the schedule changes or a paused reminder
 * comes back: from now, never the occurrences of the pause. */
static int next_fire_for_update(request_rec *r, ap_dbd_t *db, const char *id,
                                json_object *flat, const char **next, int *recompute)
{
    const bl_user *u = bl_current_user(r);
    const char *args[2] = {id, u->id};
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    json_object *v = NULL;
    int resuming;
    bl_schedule *sc;
    time_t t;

    *recompute = 0;
    *next = NULL;
    if (json_object_object_get_ex(flat, "rrule", &v)) {
        json_object_object_get_ex(flat, "next_fire_at", &v);
        *next = v ? json_object_get_string(v) : NULL;
        *recompute = 1;
        return 0;
    }
    resuming = json_object_object_get_ex(flat, "is_active", &v) && json_object_get_boolean(v);
    if (!resuming)
        return 0;
    if (!(res = bl_db_select(r, db, "reminder_schedule_for_update", 2, args)))
        return -1;
    if (!(row = reminder_first_row(r, db, res)))
        return 0;    /* the UPDATE finds nothing either: 404 there */
    if (!strcmp(bl_db_get(r, db, row, 4), "1"))
        return 0;    /* already active: keep its place */
    sc = reminder_stored_schedule(r, bl_db_get(r, db, row, 0), bl_db_get(r, db, row, 1),
                                  bl_db_get(r, db, row, 2), bl_db_get(r, db, row, 3));
    t = sc ? bl_schedule_next(sc, BL_SEC(bl_now(r)) - 1) : 0;
    *next = t ? bl_time_param(r->pool, apr_time_from_sec(t)) : NULL;
    *recompute = 1;
    return 0;
}

int reminders_update(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    const char *id = apr_table_get(params, "id"), *args[5], *json = NULL, *next = NULL;
    json_object *flat = NULL, *v = NULL;
    int recompute = 0;
    ap_dbd_t *db;

    if (!(db = bl_db(r)) || reminder_check_access(r, db, id, 1) != 0
        || read_body(r, 0, &flat) != 0 || bl_db_begin(r, db) != 0)
        return OK;
    if (next_fire_for_update(r, db, id, flat, &next, &recompute) != 0)
        return OK;
    args[0] = bl_json_to_string(r->pool, flat);
    args[1] = recompute ? "1" : "0";
    args[2] = next;
    args[3] = id;
    args[4] = u->id;
    if (bl_db_value(r, db, "reminder_update", 5, args, &json) != APR_SUCCESS)
        return OK;
    if (!json) {
        bl_db_rollback(r, db);
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "reminder not found", NULL);
    }
    /* Paused or rescheduled: the nags of past occurrences stop too. */
    if ((recompute || (json_object_object_get_ex(flat, "is_active", &v)
                       && !json_object_get_boolean(v)))
        && bl_db_exec(r, db, "reminder_stop_nags", 1, &id) < 0)
        return OK;
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_OK, "Reminder updated", json, NULL);
}

int reminders_delete(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    const char *id = apr_table_get(params, "id"), *args[2];
    ap_dbd_t *db;

    if (!(db = bl_db(r)) || reminder_check_access(r, db, id, 1) != 0)
        return OK;
    args[0] = id;
    args[1] = u->id;
    /* Its logs go with it (ON DELETE CASCADE): no nag can follow. */
    if (bl_db_exec(r, db, "reminder_delete", 2, args) < 0)
        return OK;
    return bl_send_no_content(r);
}

/* ?patient_id= (a caregiver's view), ?type=, ?active=true|false */
int reminders_list(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    apr_table_t *q;
    const char *patient, *type, *active, *args[10], *offset;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    int page, per_page;
    ap_dbd_t *db;

    if (bl_pagination_args(r, &page, &per_page) != 0)
        return OK;
    q = reminder_query_args(r);
    patient = apr_table_get(q, "patient_id");
    type = apr_table_get(q, "type");
    active = apr_table_get(q, "active");
    if (patient && !bl_valid_uuid(patient))
        return bl_send_validation_error(r, "patient_id", "patient_id must be a UUID");
    if (type && !bl_valid_enum(type, types))
        return bl_send_validation_error(r, "type", "type must be medication, appointment or "
                                        "other");
    if (active && strcmp(active, "true") && strcmp(active, "false"))
        return bl_send_validation_error(r, "active", "active must be true or false");
    if (!(db = bl_db(r)))
        return OK;
    offset = apr_itoa(r->pool, (page - 1) * per_page);
    args[0] = patient;
    args[1] = u->id;
    args[2] = u->id;
    args[3] = u->id;
    args[4] = type;
    args[5] = type;
    args[6] = active;
    args[7] = active;
    args[8] = apr_itoa(r->pool, per_page);
    args[9] = offset;
    if (!(res = bl_db_select(r, db, "reminder_list", 10, args)))
        return OK;
    row = reminder_first_row(r, db, res);
    return bl_send_data(r, HTTP_OK, NULL, row ? bl_db_get(r, db, row, 0) : "[]",
                        bl_pagination_meta(r, page, per_page,
                                           row ? atol(bl_db_get(r, db, row, 1)) : 0));
}
