/* Profiles: field validation (shared with registration), GET and PUT
 * /users/profile, and GET /users/profile/:id.
 *
 * Validated fields are flattened into one JSON object handed to a single
 * prepared UPDATE/INSERT: a key present means "set", JSON null "clear". */
#include "auth_private.h"
#include "json.h"
#include "validate.h"

#include <apr_strings.h>
#include <apr_time.h>

#include <string.h>

#define NAME_MAX_CHARS 100
#define BIO_MAX_CHARS 2000
#define EARLIEST_DATE "1900-01-01"

static const char *const text_fields[] = {"first_name", "last_name", "cancer_type", NULL};
static const char *const location_fields[] = {"city", "state", "country", NULL};
static const char *const date_fields[] = {"date_of_birth", "diagnosis_date", NULL};
static const char *const genders[] = {"male", "female", "non_binary", "other",
                                      "prefer_not_to_say", NULL};
static const char *const stages[] = {"newly_diagnosed", "in_treatment", "post_treatment",
                                     "remission", "survivor", "palliative", NULL};

/* 1 when obj has field set to JSON null. */
static int is_null(json_object *obj, const char *field)
{
    json_object *v = NULL;

    return json_object_object_get_ex(obj, field, &v) && v == NULL;
}

static const char *today(request_rec *r)
{
    apr_time_exp_t t;
    char buf[16];
    apr_size_t len;

    apr_time_exp_gmt(&t, r->request_time);
    apr_strftime(buf, &len, sizeof buf, "%Y-%m-%d", &t);
    return apr_pstrdup(r->pool, buf);
}

/* Copies one string field into flat (null copied when clearing is allowed).
 * Returns 0, or -1 after answering 400. */
static int take_string(request_rec *r, json_object *src, const char *field,
                       size_t max_chars, int allow_null, json_object *flat)
{
    const char *value = NULL, *err = NULL;

    if (is_null(src, field)) {
        if (allow_null)
            json_object_object_add(flat, field, NULL);
        return 0;
    }
    switch (bl_json_get_string(r->pool, src, field, BL_OPTIONAL, 1, max_chars, &value, &err)) {
    case BL_FIELD_OK:
        json_object_object_add(flat, field, json_object_new_string(value));
        return 0;
    case BL_FIELD_ABSENT:
        return 0;
    default:
        return bl_send_validation_error(r, field, err), -1;
    }
}

static int take_enum(request_rec *r, json_object *src, const char *field,
                     const char *const *allowed, int allow_null, json_object *flat)
{
    const char *value = NULL, *err = NULL;

    if (is_null(src, field)) {
        if (allow_null)
            json_object_object_add(flat, field, NULL);
        return 0;
    }
    switch (bl_json_get_enum(r->pool, src, field, BL_OPTIONAL, allowed, &value, &err)) {
    case BL_FIELD_OK:
        json_object_object_add(flat, field, json_object_new_string(value));
        return 0;
    case BL_FIELD_ABSENT:
        return 0;
    default:
        return bl_send_validation_error(r, field, err), -1;
    }
}

/* A calendar date between 1900-01-01 and today. */
static int take_date(request_rec *r, json_object *src, const char *field, int allow_null,
                     json_object *flat)
{
    const char *value = NULL, *err = NULL;

    if (is_null(src, field)) {
        if (allow_null)
            json_object_object_add(flat, field, NULL);
        return 0;
    }
    switch (bl_json_get_string(r->pool, src, field, BL_OPTIONAL, 10, 10, &value, &err)) {
    case BL_FIELD_ABSENT:
        return 0;
    case BL_FIELD_OK:
        if (bl_valid_date(value) && strcmp(value, EARLIEST_DATE) >= 0
            && strcmp(value, today(r)) <= 0) {
            json_object_object_add(flat, field, json_object_new_string(value));
            return 0;
        }
        err = apr_pstrcat(r->pool, field, " must be a past date as YYYY-MM-DD", NULL);
        /* fall through */
    default:
        return bl_send_validation_error(r, field,
                                        err ? err : apr_pstrcat(r->pool, field,
                                                                " must be a date", NULL)), -1;
    }
}

static int take_location(request_rec *r, json_object *src, int allow_null, json_object *flat)
{
    json_object *loc = NULL;
    const char *err = NULL;
    int i;

    if (is_null(src, "location")) {
        for (i = 0; allow_null && location_fields[i]; i++)
            json_object_object_add(flat, location_fields[i], NULL);
        return 0;
    }
    switch (bl_json_get_object(r->pool, src, "location", BL_OPTIONAL, &loc, &err)) {
    case BL_FIELD_ABSENT:
        return 0;
    case BL_FIELD_OK:
        break;
    default:
        return bl_send_validation_error(r, "location", err), -1;
    }
    if (auth_refuse_unknown(r, loc, location_fields, "location.") != 0)
        return -1;
    for (i = 0; location_fields[i]; i++)
        if (take_string(r, loc, location_fields[i], NAME_MAX_CHARS, allow_null, flat) != 0)
            return -1;
    return 0;
}

static int take_bool(request_rec *r, json_object *src, const char *field, json_object *flat)
{
    const char *err = NULL;
    int value = 0;

    switch (bl_json_get_bool(r->pool, src, field, BL_OPTIONAL, &value, &err)) {
    case BL_FIELD_OK:
        json_object_object_add(flat, field, json_object_new_boolean(value));
        return 0;
    case BL_FIELD_ABSENT:
        if (!is_null(src, field))
            return 0;
        err = apr_pstrcat(r->pool, field, " must be true or false", NULL);
        /* fall through */
    default:
        return bl_send_validation_error(r, field, err), -1;
    }
}

static apr_status_t release_json(void *obj)
{
    json_object_put(obj);
    return APR_SUCCESS;
}

/* Validates the profile fields of src into a new flat object (*flat, owned
 * by r->pool). for_update: null clears a field. prefix names src in the
 * details of an unknown field ("profile.", or NULL at the top level).
 * Returns 0, or -1 after answering 400. */
static int read_profile(request_rec *r, json_object *src, int for_update,
                        const char *prefix, json_object **flat)
{
    static const char *const allowed[] = {"first_name", "last_name", "date_of_birth",
        "gender", "cancer_type", "diagnosis_date", "treatment_stage", "location", "bio",
        "is_public", NULL};
    json_object *out = json_object_new_object();
    int i;

    apr_pool_cleanup_register(r->pool, out, release_json, apr_pool_cleanup_null);
    *flat = out;
    if (auth_refuse_unknown(r, src, allowed, prefix) != 0)
        return -1;
    for (i = 0; text_fields[i]; i++)
        if (take_string(r, src, text_fields[i], NAME_MAX_CHARS, for_update, out) != 0)
            return -1;
    for (i = 0; date_fields[i]; i++)
        if (take_date(r, src, date_fields[i], for_update, out) != 0)
            return -1;
    if (take_enum(r, src, "gender", genders, for_update, out) != 0
        || take_enum(r, src, "treatment_stage", stages, for_update, out) != 0
        || take_location(r, src, for_update, out) != 0
        || take_string(r, src, "bio", BIO_MAX_CHARS, for_update, out) != 0
        || take_bool(r, src, "is_public", out) != 0)
        return -1;
    return 0;
}

int auth_read_profile(request_rec *r, json_object *src, int for_update, json_object **flat)
{
    return read_profile(r, src, for_update, for_update ? NULL : "profile.", flat);
}

/* PUT takes today's flat fields or the shape GET answers, {"profile":
 * {...}}, so a client can send back what it read: there the read-only
 * avatar_url (set by the upload route) is ignored. Sets *src to the object
 * holding the fields and *prefix for error details. Returns 0, or -1
 * after answering 400. */
static int profile_update_source(request_rec *r, json_object *body, json_object **src,
                                 const char **prefix)
{
    json_object *nested = NULL;
    const char *err = NULL;

    *src = body;
    *prefix = NULL;
    if (!json_object_object_get_ex(body, "profile", NULL))
        return 0;
    if (json_object_object_length(body) != 1)
        return bl_send_validation_error(r, "profile",
                                        "send either the profile object or its fields "
                                        "at the top level, not both"), -1;
    if (bl_json_get_object(r->pool, body, "profile", BL_REQUIRED, &nested, &err)
        != BL_FIELD_OK || !nested)
        return bl_send_validation_error(r, "profile", "profile must be an object"), -1;
    json_object_object_del(nested, "avatar_url");
    *src = nested;
    *prefix = "profile.";
    return 0;
}

/* ---------------------------------------------------------------- routes */

static int send_own_profile(request_rec *r, ap_dbd_t *db, const char *user_id,
                            const char *message)
{
    const char *args[1] = {user_id};
    const char *json = NULL;

    if (bl_db_value(r, db, AUTH_SQL_USER_JSON, 1, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such user", NULL);
    return bl_send_data(r, HTTP_OK, message, json, NULL);
}

int users_get_profile(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    ap_dbd_t *db;

    if (!(user = bl_require_user(r)) || !(db = bl_db(r)))
        return OK;
    return send_own_profile(r, db, user->id, NULL);
}

int users_put_profile(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    json_object *body, *src, *flat;
    const char *args[2], *prefix;
    ap_dbd_t *db;
    int n;

    if (!(user = bl_require_user(r)) || !(body = bl_read_json(r))
        || profile_update_source(r, body, &src, &prefix) != 0
        || read_profile(r, src, 1, prefix, &flat) != 0 || !(db = bl_db(r)))
        return OK;
    args[0] = bl_json_to_string(r->pool, flat);
    args[1] = user->id;
    if ((n = bl_db_exec(r, db, AUTH_SQL_USER_UPDATE_PROFILE, 2, args)) < 0)
        return OK;
    if (n == 0)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such user", NULL);
    return send_own_profile(r, db, user->id, "profile updated");
}

/* Public profiles for anyone (login optional), one's own, or any for an
 * admin; a private or unknown one is the same 404. */
int users_get_public_profile(request_rec *r, apr_table_t *params)
{
    const char *id = apr_table_get(params, "id");
    const bl_user *viewer = bl_current_user(r);
    const char *args[3], *json = NULL;
    ap_dbd_t *db;

    if (!id || !bl_valid_uuid(id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such profile", NULL);
    if (!(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = viewer ? viewer->id : NULL;
    args[2] = viewer ? viewer->role : NULL;
    if (bl_db_value(r, db, AUTH_SQL_USER_PUBLIC_JSON, 3, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such profile", NULL);
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}
