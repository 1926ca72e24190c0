/* Sharing a record with a person (POST /medical-records/:id/share, GET
 * .../shares, DELETE .../shares/:share_id) and a doctor's break-glass
 * grant (POST .../emergency-access), which the owner or an admin can end
 * early (DELETE .../emergency-access/:grant_id). Each is audited; the grantee, or for
 * break-glass the owner (urgently), is notified through the outbox in the
 * same transaction. */
#include "medical_private.h"
#include "json.h"
#include "validate.h"

#include <apr_strings.h>

#include <string.h>

#define NOTE_MAX_CHARS 1000
#define REASON_MIN_CHARS 10
#define REASON_MAX_CHARS 1000

static const char *const access_levels[] = {"view", "download", NULL};

/* expires_at: RFC 3339, in the future, at most a year ahead. Returns it,
 * or NULL after answering 400 (or 503). */
const char *medical_take_expiry(request_rec *r, ap_dbd_t *db, json_object *body)
{
    const char *v = NULL, *err = NULL, *args[2], *ok = NULL;

    if (bl_json_get_string(r->pool, body, "expires_at", BL_REQUIRED, 1, 40, &v, &err)
            != BL_FIELD_OK)
        return bl_send_validation_error(r, "expires_at", err), NULL;
    if (!bl_valid_rfc3339(v))
        return bl_send_validation_error(r, "expires_at",
                                        "expires_at must be an RFC 3339 date-time"), NULL;
    args[0] = args[1] = v;
    if (bl_db_value(r, db, MEDICAL_SQL_CHECK_EXPIRY, 2, args, &ok) != APR_SUCCESS)
        return NULL;
    if (!ok || *ok != 't')
        return bl_send_validation_error(r, "expires_at",
                                        "expires_at must be in the future, at most a year "
                                        "ahead"), NULL;
    return v;
}

/* The grantee named by user_id or email; NULL after answering. */
static const char *find_grantee(request_rec *r, ap_dbd_t *db, json_object *body)
{
    const char *uid = NULL, *email = NULL, *err = NULL, *args[2], *id = NULL;

    if (bl_json_get_string(r->pool, body, "user_id", BL_OPTIONAL, 36, 36, &uid, &err)
            == BL_FIELD_INVALID || (uid && !bl_valid_uuid(uid)))
        return bl_send_validation_error(r, "user_id", "user_id must be a UUID"), NULL;
    if (bl_json_get_string(r->pool, body, "email", BL_OPTIONAL, 3, 254, &email, &err)
            == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "email", err), NULL;
    if (!uid == !email)
        return bl_send_validation_error(r, "user_id", "give user_id or email (one of them)"),
               NULL;
    args[0] = uid;
    args[1] = email;
    if (bl_db_value(r, db, MEDICAL_SQL_FIND_USER, 2, args, &id) != APR_SUCCESS)
        return NULL;
    if (!id)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such user",
                             uid ? "field: user_id" : "field: email"), NULL;
    return id;
}

/* 403 for a grantee who may see the record, 404 for anyone else. */
static int refuse_non_owner(request_rec *r, ap_dbd_t *db, const char *id, const char *what)
{
    const char *access = NULL;

    if (medical_access(r, db, id, &access, NULL) != 0)
        return OK;
    return medical_refuse(r, access, what);
}

int medical_share(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"user_id", "email", "access_level", "expires_at",
                                          "note", NULL};
    const bl_user *user = bl_require_user(r);
    const char *id, *grantee, *level = NULL, *expires, *note = NULL, *err = NULL, *unknown;
    const char *args[6], *json, *created;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    json_object *body;
    ap_dbd_t *db;

    if (!user || !(id = medical_record_id(r, params)) || !(body = bl_read_json(r)))
        return OK;
    if ((unknown = bl_json_unknown_field(body, allowed)))
        return bl_send_validation_error(r, unknown, apr_pstrcat(r->pool, "unknown field ",
                                        unknown, NULL));
    if (bl_json_get_enum(r->pool, body, "access_level", BL_REQUIRED, access_levels, &level,
                         &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "access_level", err);
    if (bl_json_get_string(r->pool, body, "note", BL_OPTIONAL, 0, NOTE_MAX_CHARS, &note, &err)
            == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "note", err);
    if (!(db = bl_db(r)) || !(expires = medical_take_expiry(r, db, body))
        || !(grantee = find_grantee(r, db, body)))
        return OK;
    if (strcmp(grantee, user->id) == 0)
        return bl_send_validation_error(r, "user_id", "a record cannot be shared with its owner");
    args[0] = id;
    args[1] = user->id;
    args[2] = grantee;
    args[3] = level;
    args[4] = expires;
    args[5] = note;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if (!(res = bl_db_select(r, db, MEDICAL_SQL_SHARE_UPSERT, 6, args)))
        return OK;
    if (!(row = medical_first_row(r, db, res))) {
        bl_db_rollback(r, db);
        return refuse_non_owner(r, db, id, "sharing it");
    }
    json = bl_db_get(r, db, row, 0);
    created = bl_db_get(r, db, row, 1);
    if (medical_audit(r, db, "medical.record.share", id, "success",
                      apr_psprintf(r->pool, "{\"grantee\":\"%s\",\"access_level\":\"%s\","
                                   "\"expires_at\":%s}", grantee, level,
                                   bl_json_quote(r->pool, expires)))
        || bl_outbox_add(r, db, grantee, "in_app", "medical.shared",
                         "A medical record was shared with you",
                         "Someone shared a medical record with you on Beautiful Life.",
                         apr_psprintf(r->pool, "{\"record_id\":\"%s\"}", id)) != 0
        || bl_outbox_add(r, db, grantee, "email", "medical.shared",
                         "A medical record was shared with you",
                         "A medical record was shared with you on Beautiful Life. Sign in "
                         "to see it.", apr_psprintf(r->pool, "{\"record_id\":\"%s\"}", id)) != 0
        || bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, created && *created == 't' ? HTTP_CREATED : HTTP_OK,
                        created && *created == 't' ? "record shared" : "share updated", json,
                        NULL);
}

int medical_list_shares(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    const char *id, *args[2], *access, *json = NULL;
    ap_dbd_t *db;

    if (!user || !(id = medical_record_id(r, params)) || !(db = bl_db(r)))
        return OK;
    if (medical_access(r, db, id, &access, NULL) != 0)
        return OK;
    if (!access || strcmp(access, "owner") != 0)
        return medical_refuse(r, access, "seeing its shares");
    args[0] = user->id;
    args[1] = id;
    if (bl_db_value(r, db, MEDICAL_SQL_SHARE_LIST, 2, args, &json) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_OK, NULL, json ? json : "[]", NULL);
}

int medical_unshare(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    const char *id, *share_id = apr_table_get(params, "share_id"), *args[3], *grantee = NULL;
    ap_dbd_t *db;

    if (!user || !(id = medical_record_id(r, params)) || !(db = bl_db(r)))
        return OK;
    if (!share_id || !bl_valid_uuid(share_id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "share not found", NULL);
    args[0] = share_id;
    args[1] = id;
    args[2] = user->id;
    if (bl_db_begin(r, db) != 0
        || bl_db_value(r, db, MEDICAL_SQL_SHARE_REVOKE, 3, args, &grantee) != APR_SUCCESS)
        return OK;
    if (!grantee) {
        const char *access = NULL;
        bl_db_rollback(r, db);
        if (medical_access(r, db, id, &access, NULL) != 0)
            return OK;
        if (access && strcmp(access, "owner") == 0)
            return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND,
                                 "no live share with this id on the record", NULL);
        return medical_refuse(r, access, "changing its shares");
    }
    if (medical_audit(r, db, "medical.record.unshare", id, "success",
                      apr_psprintf(r->pool, "{\"share_id\":\"%s\",\"grantee\":\"%s\"}",
                                   share_id, grantee))
        || bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_no_content(r);
}

/* ---------------------------------------------------------------- break-glass */

int medical_emergency(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"reason", NULL};
    const bl_user *user = bl_require_user(r);
    const char *id, *reason = NULL, *err = NULL, *unknown, *args[6], *json, *owner, *grant;
    const medical_conf *c = medical_config(r);
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    json_object *body;
    ap_dbd_t *db;

    if (!user || !(id = medical_record_id(r, params)) || !(body = bl_read_json(r)))
        return OK;
    if ((unknown = bl_json_unknown_field(body, allowed)))
        return bl_send_validation_error(r, unknown, apr_pstrcat(r->pool, "unknown field ",
                                        unknown, NULL));
    if (bl_json_get_string(r->pool, body, "reason", BL_REQUIRED, REASON_MIN_CHARS,
                           REASON_MAX_CHARS, &reason, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "reason", err);
    if (!(db = bl_db(r)))
        return OK;
    if (strcmp(user->role, "doctor") != 0) {
        bl_audit(r, db, NULL, "medical.record.emergency_access", "medical_record", id, "denied",
                 NULL);
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only a doctor can request emergency access", NULL);
    }
    args[0] = user->id;
    args[1] = reason;
    args[2] = bl_client_ip(r);
    args[3] = apr_itoa(r->pool, c->emergency_minutes);
    args[4] = id;
    args[5] = user->id;
    if (bl_db_begin(r, db) != 0 || !(res = bl_db_select(r, db, MEDICAL_SQL_EMERGENCY, 6, args)))
        return OK;
    if (!(row = medical_first_row(r, db, res))) {
        const char *access = NULL;
        bl_db_rollback(r, db);
        if (medical_access(r, db, id, &access, NULL) != 0)
            return OK;
        if (access && strcmp(access, "owner") == 0)
            return bl_send_validation_error(r, "id", "this is your own record");
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "medical record not found",
                             NULL);
    }
    json = bl_db_get(r, db, row, 0);
    owner = bl_db_get(r, db, row, 1);
    grant = bl_db_get(r, db, row, 2);
    /* The grant's id, so the owner can end it early from the access log or
     * the notification. */
    if (medical_audit(r, db, "medical.record.emergency_access", id, "success",
                      apr_psprintf(r->pool, "{\"grant_id\":\"%s\",\"reason\":%s,\"minutes\":%d}",
                                   grant, bl_json_quote(r->pool, reason),
                                   c->emergency_minutes))
        || bl_outbox_add(r, db, owner, "in_app", "medical.emergency_access",
                         "Emergency access to your medical record",
                         "A doctor used emergency access to one of your medical records. "
                         "See the record's access log for who, when and why.",
                         apr_psprintf(r->pool, "{\"record_id\":\"%s\",\"doctor_id\":\"%s\","
                                      "\"grant_id\":\"%s\"}", id, user->id, grant)) != 0
        || bl_outbox_add(r, db, owner, "email", "medical.emergency_access",
                         "Emergency access to your medical record",
                         "A doctor used emergency access to one of your medical records on "
                         "Beautiful Life. Sign in and open the record's access log for who, "
                         "when and why.",
                         apr_psprintf(r->pool, "{\"record_id\":\"%s\"}", id)) != 0
        || bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_CREATED, "emergency access granted", json, NULL);
}

/* The owner, or an admin (who reads no contents but may stop a grant that
 * looks wrong), ends a break-glass grant before it expires. */
int medical_emergency_end(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    const char *id, *grant = apr_table_get(params, "grant_id"), *args[4], *doctor = NULL;
    const char *access = NULL;
    ap_dbd_t *db;

    if (!user || !(id = medical_record_id(r, params)) || !(db = bl_db(r)))
        return OK;
    if (grant && bl_valid_uuid(grant)) {
        args[0] = grant;
        args[1] = id;
        args[2] = user->id;
        args[3] = user->id;
        if (bl_db_begin(r, db) != 0
            || bl_db_value(r, db, MEDICAL_SQL_EMERGENCY_END, 4, args, &doctor) != APR_SUCCESS)
            return OK;
        if (doctor) {
            if (medical_audit(r, db, "medical.record.emergency_access.end", id, "success",
                              apr_psprintf(r->pool, "{\"grant_id\":\"%s\",\"doctor_id\":\"%s\"}",
                                           grant, doctor))
                || bl_db_commit(r, db) != 0)
                return OK;
            return bl_send_no_content(r);
        }
        bl_db_rollback(r, db);
    }
    if (medical_access(r, db, id, &access, NULL) != 0)
        return OK;
    if ((access && strcmp(access, "owner") == 0) || strcmp(user->role, "admin") == 0)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND,
                             "no live emergency grant with this id on the record", NULL);
    return medical_refuse(r, access, "ending its emergency grants");
}
