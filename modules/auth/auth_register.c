/* POST /auth/register, and the request helpers the auth routes share
 * (email normalisation, unknown-field refusal). */
#include "auth_private.h"
#include "json.h"
#include "password.h"
#include "uuid.h"
#include "validate.h"

#include <apr_strings.h>

#include <ctype.h>
#include <string.h>

#define EMAIL_MAX_CHARS 254
#define PASSWORD_MAX_BYTES 512

/* Admin is never self-assigned: scripts/create-admin or an admin grants it. */
static const char *const self_roles[] = {"patient", "caregiver", "doctor", NULL};

const char *auth_normalise_email(apr_pool_t *p, const char *email)
{
    const char *start = email, *end = email + strlen(email);
    char *out;
    apr_size_t i, len;

    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    len = (apr_size_t)(end - start);
    out = apr_pstrmemdup(p, start, len);
    for (i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
    return out;
}

const char *auth_read_email(request_rec *r, json_object *body)
{
    const char *email = NULL, *err = NULL;

    if (bl_json_get_string(r->pool, body, "email", BL_REQUIRED, 1, EMAIL_MAX_CHARS + 16,
                           &email, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "email", err), NULL;
    email = auth_normalise_email(r->pool, email);
    if (!bl_valid_email(email))
        return bl_send_validation_error(r, "email", "email is not a valid address"), NULL;
    return email;
}

int auth_refuse_unknown(request_rec *r, json_object *obj, const char *const *allowed,
                        const char *prefix)
{
    const char *unknown = bl_json_unknown_field(obj, allowed);
    const char *name;

    if (!unknown)
        return 0;
    name = apr_pstrcat(r->pool, prefix ? prefix : "", unknown, NULL);
    bl_send_validation_error(r, name, apr_pstrcat(r->pool, "unknown field: ", name, NULL));
    return -1;
}

/* The parts of a registration, validated. */
typedef struct {
    const char *email;
    const char *password;
    const char *role;
    json_object *profile;      /* flat, see auth_read_profile */
} registration;

/* Returns 0, or -1 after answering 400. */
static int read_registration(request_rec *r, json_object *body, registration *reg)
{
    static const char *const allowed[] = {"email", "password", "role", "profile", NULL};
    json_object *profile = NULL, *role = NULL;
    const char *err = NULL;

    if (auth_refuse_unknown(r, body, allowed, NULL) != 0
        || !(reg->email = auth_read_email(r, body)))
        return -1;
    if (bl_json_get_string(r->pool, body, "password", BL_REQUIRED, 1, PASSWORD_MAX_BYTES,
                           &reg->password, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "password", err), -1;
    if (auth_check_password_policy(r, "password", reg->password, reg->email) != 0)
        return -1;
    /* The getter reads null as absent; a client sending null meant something. */
    if (json_object_object_get_ex(body, "role", &role) && !role)
        return bl_send_validation_error(r, "role",
                                        "role must be one of patient, caregiver, doctor"), -1;
    switch (bl_json_get_enum(r->pool, body, "role", BL_OPTIONAL, self_roles, &reg->role, &err)) {
    case BL_FIELD_OK:
        break;
    case BL_FIELD_ABSENT:
        reg->role = "patient";
        break;
    default:
        return bl_send_validation_error(r, "role",
                                        "role must be one of patient, caregiver, doctor"), -1;
    }
    if (bl_json_get_object(r->pool, body, "profile", BL_OPTIONAL, &profile, &err)
        == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "profile", err), -1;
    if (!profile)      /* a pool-owned empty object: nothing to set */
        profile = bl_json_parse_object(r->pool, "{}", 2, 1, &err);
    return auth_read_profile(r, profile, 0, &reg->profile);
}

/* Inserts the user, the verification email and the audit row in one
 * transaction. Returns 0, or -1 after answering. */
static int create_account(request_rec *r, ap_dbd_t *db, const registration *reg,
                          const char *id)
{
    const char *hash = bl_password_hash(r->pool, reg->password, strlen(reg->password));
    const char *args[5];

    if (!hash)
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL,
                             "could not hash the password", NULL), -1;
    args[0] = id;
    args[1] = reg->email;
    args[2] = hash;
    args[3] = reg->role;
    args[4] = bl_json_to_string(r->pool, reg->profile);
    if (bl_db_begin(r, db) != 0)
        return -1;
    if (bl_db_exec(r, db, AUTH_SQL_USER_INSERT, 5, args) < 0
        || auth_queue_verification(r, db, id) != 0
        || auth_audit_success(r, db, id, "auth.register", "user", id) != 0) {
        bl_db_rollback(r, db);
        return -1;
    }
    return bl_db_commit(r, db) != 0 ? -1 : 0;
}

int auth_register(request_rec *r, apr_table_t *params)
{
    registration reg;
    json_object *body;
    const char *id, *args[1], *exists = NULL, *json = NULL;
    ap_dbd_t *db;

    if (!(body = bl_read_json(r)) || read_registration(r, body, &reg) != 0
        || !(db = bl_db(r)))
        return OK;
    args[0] = reg.email;
    if (bl_db_value(r, db, AUTH_SQL_USER_EXISTS, 1, args, &exists) != APR_SUCCESS)
        return OK;
    if (exists)
        return bl_send_error(r, HTTP_CONFLICT, "EMAIL_TAKEN",
                             "an account with this email already exists", "field: email");
    if (!(id = bl_uuid_v4(r->pool)))
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL,
                             "could not create an id", NULL);
    if (create_account(r, db, &reg, id) != 0)
        return OK;
    args[0] = id;
    if (bl_db_value(r, db, AUTH_SQL_USER_JSON, 1, args, &json) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_CREATED,
                        "account created: check your email to verify the address", json, NULL);
}
