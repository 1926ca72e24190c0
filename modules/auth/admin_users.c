/* GET /admin/users and PUT /admin/users/:id. The shipped conf reaches these
 * only through "Require bl-role admin"; the handler checks the role again
 * so a conf mistake cannot open them. Every change is audited, and a
 * deactivation or role change ends the user's sessions at once. */
#include "auth_private.h"
#include "json.h"
#include "validate.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <util_script.h>

#include <string.h>

static const char *const roles[] = {"patient", "caregiver", "doctor", "admin", NULL};
static const char *const list_params[] = {"role", "active", "verified", "email", "page",
                                          "per_page", NULL};

/* The admin calling, or NULL after answering 401/403. */
static const bl_user *require_admin(request_rec *r)
{
    const bl_user *user = bl_require_user(r);

    if (user && strcmp(user->role, "admin") != 0)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "administrators only", NULL), NULL;
    return user;
}

/* "true"/"false" as the SQL text for a boolean filter; NULL when absent.
 * Returns -1 after answering 400 for another value. */
static int bool_filter(request_rec *r, apr_table_t *q, const char *name, const char **out)
{
    const char *v = apr_table_get(q, name);

    *out = NULL;
    if (!v)
        return 0;
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
        *out = v;
        return 0;
    }
    return bl_send_validation_error(r, name,
                                    apr_pstrcat(r->pool, name, " must be true or false", NULL)),
           -1;
}

/* Reads the filters into args[0..3] (role, active, verified, email prefix). */
static int read_filters(request_rec *r, apr_table_t *q, const char **args)
{
    const apr_array_header_t *arr = apr_table_elts(q);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    const char *email;
    int i;

    for (i = 0; i < arr->nelts; i++)
        if (!bl_valid_enum(e[i].key, list_params))
            return bl_send_validation_error(r, e[i].key,
                                            apr_pstrcat(r->pool, "unknown parameter: ",
                                                        e[i].key, NULL)), -1;
    args[0] = apr_table_get(q, "role");
    if (args[0] && !bl_valid_enum(args[0], roles))
        return bl_send_validation_error(r, "role",
                                        "role must be one of patient, caregiver, doctor, admin"),
               -1;
    if (bool_filter(r, q, "active", &args[1]) != 0
        || bool_filter(r, q, "verified", &args[2]) != 0)
        return -1;
    email = apr_table_get(q, "email");
    if (email && (!bl_valid_utf8(email, strlen(email)) || !bl_valid_length(email, 1, 254)))
        return bl_send_validation_error(r, "email", "email must be 1 to 254 characters"), -1;
    args[3] = email ? auth_normalise_email(r->pool, email) : NULL;
    return 0;
}

/* The first parameter name given twice in the query string, or NULL.
 * ap_args_to_table keeps one value silently, so the raw string is read. */
static const char *duplicated_param(request_rec *r)
{
    apr_hash_t *seen = apr_hash_make(r->pool);
    char *args = apr_pstrdup(r->pool, r->args ? r->args : ""), *last = NULL, *pair;

    for (pair = apr_strtok(args, "&", &last); pair; pair = apr_strtok(NULL, "&", &last)) {
        char *name = apr_pstrndup(r->pool, pair, strcspn(pair, "="));
        ap_unescape_url(name);
        if (apr_hash_get(seen, name, APR_HASH_KEY_STRING))
            return name;
        apr_hash_set(seen, name, APR_HASH_KEY_STRING, "");
    }
    return NULL;
}

/* Refuses what the parsed table would hide: a NUL (a %00 cuts the value
 * short when decoded) and a parameter given twice (one value would be
 * dropped). Returns 0, or -1 after answering 400. */
static int refuse_ambiguous_query(request_rec *r)
{
    const char *dup;

    if (r->args && strstr(r->args, "%00"))
        return bl_send_validation_error(r, "query", "parameters must not contain NUL"), -1;
    if ((dup = duplicated_param(r)))
        return bl_send_validation_error(r, dup,
                                        apr_pstrcat(r->pool, "parameter given twice: ",
                                                    dup, NULL)), -1;
    return 0;
}

int admin_list_users(request_rec *r, apr_table_t *params)
{
    apr_table_t *q = NULL;
    const char *args[6];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;

    if (!require_admin(r) || refuse_ambiguous_query(r) != 0
        || bl_pagination_args(r, &page, &per_page) != 0)
        return OK;
    ap_args_to_table(r, &q);
    if (read_filters(r, q, args) != 0 || !(db = bl_db(r)))
        return OK;
    args[4] = apr_itoa(r->pool, per_page);
    args[5] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(res = bl_db_select(r, db, AUTH_SQL_ADMIN_LIST, 6, args)))
        return OK;
    if (!(row = auth_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 1),
                        bl_pagination_meta(r, page, per_page,
                                           apr_atoi64(bl_db_get(r, db, row, 0))));
}

/* The requested change: role and/or is_active (SQL text, NULL unchanged). */
typedef struct {
    const char *role;
    const char *active;
} user_change;

static int read_change(request_rec *r, user_change *ch)
{
    static const char *const allowed[] = {"role", "is_active", NULL};
    json_object *body = bl_read_json(r);
    const char *err = NULL;
    int active = 0;
    bl_field_status st;

    memset(ch, 0, sizeof *ch);
    if (!body || auth_refuse_unknown(r, body, allowed, NULL) != 0)
        return -1;
    if (bl_json_get_enum(r->pool, body, "role", BL_OPTIONAL, roles, &ch->role, &err)
        == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "role", err), -1;
    st = bl_json_get_bool(r->pool, body, "is_active", BL_OPTIONAL, &active, &err);
    if (st == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "is_active", err), -1;
    if (st == BL_FIELD_OK)
        ch->active = active ? "true" : "false";
    if (!ch->role && !ch->active)
        return bl_send_validation_error(r, "role", "give role and/or is_active"), -1;
    return 0;
}

/* Applies the change in the caller's transaction, ending sessions when the
 * user loses access or a role their tokens carry. Returns 0, or -1 after
 * answering. */
static int apply_change(request_rec *r, ap_dbd_t *db, const char *id, const user_change *ch)
{
    const char *args[3] = {id, NULL, NULL}, *old_role, *old_active, *details, *reason = NULL;
    apr_dbd_results_t *res = bl_db_select(r, db, AUTH_SQL_ADMIN_LOCK, 1, args);
    apr_dbd_row_t *row;

    if (!res)
        return -1;
    if (!(row = auth_first_row(r, db, res)))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such user", NULL), -1;
    old_role = bl_db_get(r, db, row, 0);
    old_active = strcmp(bl_db_get(r, db, row, 1), "t") == 0 ? "true" : "false";
    args[0] = ch->role;
    args[1] = ch->active;
    args[2] = id;
    if (bl_db_exec(r, db, AUTH_SQL_ADMIN_UPDATE, 3, args) < 0)
        return -1;
    if (ch->active && strcmp(ch->active, "false") == 0)
        reason = "deactivated";
    else if (ch->role && strcmp(ch->role, old_role) != 0)
        reason = "role_changed";
    details = apr_psprintf(r->pool,
                           "{\"before\":{\"role\":%s,\"is_active\":%s},"
                           "\"after\":{\"role\":%s,\"is_active\":%s}}",
                           bl_json_quote(r->pool, old_role), old_active,
                           bl_json_quote(r->pool, ch->role ? ch->role : old_role),
                           ch->active ? ch->active : old_active);
    /* Audited before the Redis keys go, so a failed audit revokes nothing. */
    if (bl_audit(r, db, NULL, "admin.user_update", "user", id, "success", details) != 0)
        return bl_send_unavailable(r, "database"), -1;
    if (reason && auth_revoke_user_sessions(r, db, id, NULL, reason) != 0)
        return -1;
    return 0;
}

int admin_update_user(request_rec *r, apr_table_t *params)
{
    const char *id = apr_table_get(params, "id"), *args[1], *json = NULL;
    const bl_user *admin;
    user_change ch;
    ap_dbd_t *db;

    if (!(admin = require_admin(r)))
        return OK;
    if (!id || !bl_valid_uuid(id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such user", NULL);
    if (read_change(r, &ch) != 0)
        return OK;
    /* Keeps at least the caller able to administer. */
    if (strcasecmp(id, admin->id) == 0
        && ((ch.role && strcmp(ch.role, "admin") != 0)
            || (ch.active && strcmp(ch.active, "false") == 0)))
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                             "you cannot demote or deactivate your own account", NULL);
    if (!(db = bl_db(r)) || bl_db_begin(r, db) != 0)
        return OK;
    if (apply_change(r, db, id, &ch) != 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    args[0] = id;
    if (bl_db_value(r, db, AUTH_SQL_USER_JSON, 1, args, &json) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_OK, "user updated", json, NULL);
}
