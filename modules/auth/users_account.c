/* DELETE /users/account: the user's password again, then every session
 * ends and the account is deleted in one transaction.
 *
 * The users row is deleted, not kept: every table that holds the user's
 * data references users ON DELETE CASCADE (medical records and their
 * wrapped data keys included, which makes the stored files unreadable),
 * and the few rows kept for the record (audit logs, payments) reference it
 * ON DELETE SET NULL. Modules with data outside PostgreSQL (files) register
 * the optional hook "bl_account_deleted" (see mod_beautiful_auth.c and
 * README.md), which runs in the same transaction before the row goes. */
#include "auth_private.h"
#include "json.h"

#include <http_log.h>

APLOG_USE_MODULE(beautiful_auth);

#define PASSWORD_MAX_BYTES 512

/* Runs the deletion in the caller's transaction; *avatar gets the avatar
 * URL to remove after commit. Returns 0, or -1 after answering. */
static int delete_account(request_rec *r, ap_dbd_t *db, const char *user_id,
                          const char **avatar)
{
    const char *args[1] = {user_id};
    int rv;

    /* Written first: before the row goes (the reference becomes NULL with
     * it) and before the Redis keys and other modules' files go, so a
     * failed audit has destroyed nothing. */
    if (auth_audit_success(r, db, user_id, "account.deleted", "user", user_id) != 0)
        return -1;
    if (auth_revoke_user_sessions(r, db, user_id, NULL, "account_deleted") != 0)
        return -1;
    if ((rv = auth_run_account_deleted(r, db, user_id)) != OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_beautiful_auth: a bl_account_deleted hook failed (%d)", rv);
        return bl_send_unavailable(r, "account deletion"), -1;
    }
    if (bl_db_exec(r, db, AUTH_SQL_AUDIT_SCRUB, 1, args) < 0)
        return -1;
    return bl_db_value(r, db, AUTH_SQL_USER_DELETE, 1, args, avatar) == APR_SUCCESS ? 0 : -1;
}

int users_delete_account(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"password", NULL};
    const bl_user *user;
    json_object *body;
    const char *password = NULL, *err = NULL, *avatar = NULL;
    ap_dbd_t *db;

    if (!(user = bl_require_user(r)) || !(body = bl_read_json(r))
        || auth_refuse_unknown(r, body, allowed, NULL) != 0)
        return OK;
    if (bl_json_get_string(r->pool, body, "password", BL_REQUIRED, 1, PASSWORD_MAX_BYTES,
                           &password, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "password", err);
    if (!(db = bl_db(r)) || auth_confirm_password(r, db, user, password) != 0
        || bl_db_begin(r, db) != 0)
        return OK;
    if (delete_account(r, db, user->id, &avatar) != 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    auth_remove_avatar(r, avatar);
    auth_set_cookies(r, NULL, NULL, 0);
    return bl_send_data(r, HTTP_OK, "account deleted", NULL, NULL);
}
