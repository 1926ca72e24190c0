/* GET /medical-records (mine and shared with me), GET, PUT and DELETE
 * /medical-records/:id, and the owner's GET /medical-records/:id/access-log. */
#include "medical_private.h"
#include "json.h"
#include "validate.h"

#include <util_script.h>
#include <apr_strings.h>

#include <stdlib.h>
#include <string.h>

#define TITLE_MAX_CHARS 200
#define DESCRIPTION_MAX_CHARS 5000

/* ---------------------------------------------------------------- list */

/* Reads an optional date query parameter; 0, or -1 after answering. */
static int query_date(request_rec *r, apr_table_t *q, const char *name, const char **out)
{
    const char *v = apr_table_get(q, name);

    *out = NULL;
    if (!v || !*v)
        return 0;
    if (!bl_valid_date(v))
        return bl_send_validation_error(r, name, apr_pstrcat(r->pool, name,
                                        " must be a date (YYYY-MM-DD)", NULL)), -1;
    *out = v;
    return 0;
}

int medical_list(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    apr_table_t *q = NULL;
    const char *type, *shared, *args[7], *items, *total;
    int page, per_page;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    (void)params;
    if (!user || bl_pagination_args(r, &page, &per_page) != 0)
        return OK;
    ap_args_to_table(r, &q);
    type = apr_table_get(q, "record_type");
    if (type && *type && !bl_valid_enum(type, medical_record_types))
        return bl_send_validation_error(r, "record_type", "record_type is not a known type");
    shared = apr_table_get(q, "shared");
    if (shared && strcmp(shared, "true") != 0 && strcmp(shared, "false") != 0)
        return bl_send_validation_error(r, "shared", "shared must be true or false");
    args[0] = user->id;
    args[1] = type && *type ? type : NULL;
    if (query_date(r, q, "from", &args[2]) || query_date(r, q, "to", &args[3]))
        return OK;
    args[4] = shared;
    args[5] = apr_itoa(r->pool, per_page);
    args[6] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(db = bl_db(r)) || !(res = bl_db_select(r, db, MEDICAL_SQL_LIST, 7, args)))
        return OK;
    row = medical_first_row(r, db, res);
    items = row ? bl_db_get(r, db, row, 0) : "[]";
    total = row ? bl_db_get(r, db, row, 1) : "0";
    return bl_send_data(r, HTTP_OK, NULL, items,
                        bl_pagination_meta(r, page, per_page, atol(total)));
}

/* ---------------------------------------------------------------- one */

int medical_get(request_rec *r, apr_table_t *params)
{
    const char *id, *access, *json;
    ap_dbd_t *db;

    if (!bl_require_user(r) || !(id = medical_record_id(r, params)) || !(db = bl_db(r)))
        return OK;
    if (medical_access(r, db, id, &access, &json) != 0)
        return OK;
    if (!access)
        return medical_refuse(r, NULL, "reading");
    if (medical_audit(r, db, "medical.record.read", id, "success",
                      apr_psprintf(r->pool, "{\"access\":%s}", bl_json_quote(r->pool, access))))
        return OK;
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}

/* The fields of a PUT body, validated, as one flat JSON object. */
static const char *update_fields(request_rec *r, json_object *body)
{
    static const char *const allowed[] = {"title", "description", "record_type",
                                          "record_date", NULL};
    json_object *flat = json_object_new_object(), *v;
    const char *unknown = bl_json_unknown_field(body, allowed), *s, *err = NULL, *out;

    if (unknown) {
        json_object_put(flat);
        return bl_send_validation_error(r, unknown, apr_pstrcat(r->pool, "unknown field ",
                                        unknown, NULL)), NULL;
    }
    switch (bl_json_get_string(r->pool, body, "title", BL_OPTIONAL, 1, TITLE_MAX_CHARS, &s, &err)) {
    case BL_FIELD_OK:
        json_object_object_add(flat, "title", json_object_new_string(s));
        break;
    case BL_FIELD_INVALID:
        goto invalid_title;
    default:
        break;
    }
    if (json_object_object_get_ex(body, "description", &v) && v == NULL) {
        json_object_object_add(flat, "description", NULL);
    } else {
        switch (bl_json_get_string(r->pool, body, "description", BL_OPTIONAL, 0,
                                   DESCRIPTION_MAX_CHARS, &s, &err)) {
        case BL_FIELD_OK:
            json_object_object_add(flat, "description", json_object_new_string(s));
            break;
        case BL_FIELD_INVALID:
            json_object_put(flat);
            return bl_send_validation_error(r, "description", err), NULL;
        default:
            break;
        }
    }
    switch (bl_json_get_enum(r->pool, body, "record_type", BL_OPTIONAL, medical_record_types,
                             &s, &err)) {
    case BL_FIELD_OK:
        json_object_object_add(flat, "record_type", json_object_new_string(s));
        break;
    case BL_FIELD_INVALID:
        json_object_put(flat);
        return bl_send_validation_error(r, "record_type", err), NULL;
    default:
        break;
    }
    if (json_object_object_get_ex(body, "record_date", &v) && v == NULL) {
        json_object_object_add(flat, "record_date", NULL);
    } else {
        switch (bl_json_get_string(r->pool, body, "record_date", BL_OPTIONAL, 10, 10, &s, &err)) {
        case BL_FIELD_OK:
            if (!bl_valid_date(s) || strcmp(s, "1900-01-01") < 0) {
                json_object_put(flat);
                return bl_send_validation_error(r, "record_date",
                       "record_date must be a date (YYYY-MM-DD) from 1900 on"), NULL;
            }
            json_object_object_add(flat, "record_date", json_object_new_string(s));
            break;
        case BL_FIELD_INVALID:
            json_object_put(flat);
            return bl_send_validation_error(r, "record_date", err), NULL;
        default:
            break;
        }
    }
    out = bl_json_to_string(r->pool, flat);
    json_object_put(flat);
    return out;
invalid_title:
    json_object_put(flat);
    return bl_send_validation_error(r, "title", err), NULL;
}

int medical_update(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    const char *id, *fields, *args[3], *access, *json;
    json_object *body;
    ap_dbd_t *db;
    int n;

    if (!user || !(id = medical_record_id(r, params)) || !(body = bl_read_json(r)))
        return OK;
    /* body is released with the pool (bl_read_json). */
    fields = update_fields(r, body);
    if (!fields || !(db = bl_db(r)))
        return OK;
    args[0] = fields;
    args[1] = id;
    args[2] = user->id;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if ((n = bl_db_exec(r, db, MEDICAL_SQL_UPDATE, 3, args)) < 0)
        return OK;
    if (n == 0) {
        bl_db_rollback(r, db);
        if (medical_access(r, db, id, &access, NULL) != 0)
            return OK;
        if (access)
            bl_audit(r, db, NULL, "medical.record.update", "medical_record", id, "denied", NULL);
        return medical_refuse(r, access, "changing it");
    }
    if (medical_audit(r, db, "medical.record.update", id, "success",
                      apr_psprintf(r->pool, "{\"fields\":%s}", fields))
        || medical_access(r, db, id, &access, &json) != 0 || bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_OK, "medical record updated", json, NULL);
}

int medical_delete(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    const char *id, *args[2], *access, *storage_key;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    if (!user || !(id = medical_record_id(r, params)) || !(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = user->id;
    if (bl_db_begin(r, db) != 0 || !(res = bl_db_select(r, db, MEDICAL_SQL_DELETE, 2, args)))
        return OK;
    if (!(row = medical_first_row(r, db, res))) {
        bl_db_rollback(r, db);
        if (medical_access(r, db, id, &access, NULL) != 0)
            return OK;
        if (access)
            bl_audit(r, db, NULL, "medical.record.delete", "medical_record", id, "denied", NULL);
        return medical_refuse(r, access, "deleting it");
    }
    storage_key = bl_db_get(r, db, row, 0);
    {
        const char *rids[3] = {id, id, id};
        if (bl_db_exec(r, db, MEDICAL_SQL_REVOKE_ALL, 3, rids) < 0)
            return OK;
    }
    if (0
        || medical_audit(r, db, "medical.record.delete", id, "success", NULL)
        || bl_db_commit(r, db) != 0)
        return OK;
    /* The data key is gone with the commit; the blob follows. */
    medical_storage_remove(r, storage_key);
    return bl_send_no_content(r);
}

/* ---------------------------------------------------------------- access log */

int medical_access_log(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    const char *id, *access, *args[4], *items, *total;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    int page, per_page;
    ap_dbd_t *db;

    if (!user || !(id = medical_record_id(r, params)) || bl_pagination_args(r, &page, &per_page)
        || !(db = bl_db(r)))
        return OK;
    if (medical_access(r, db, id, &access, NULL) != 0)
        return OK;
    if (!access || strcmp(access, "owner") != 0)
        return medical_refuse(r, access, "reading its access log");
    args[0] = id;
    args[1] = user->id;
    args[2] = apr_itoa(r->pool, per_page);
    args[3] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(res = bl_db_select(r, db, MEDICAL_SQL_ACCESS_LOG, 4, args)))
        return OK;
    row = medical_first_row(r, db, res);
    items = row ? bl_db_get(r, db, row, 0) : "[]";
    if (bl_db_value(r, db, MEDICAL_SQL_ACCESS_COUNT, 1, args, &total) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_OK, NULL, items,
                        bl_pagination_meta(r, page, per_page, total ? atol(total) : 0));
}
