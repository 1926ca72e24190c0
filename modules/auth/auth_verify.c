/* Email verification: the outbox email written at registration and on
 * request, GET /auth/verify-email/:token and POST /auth/resend-verification.
 * Links are single use; a newer link retires the older ones. */
#include "auth_private.h"
#include "hmac.h"

#include <apr_strings.h>

#include <string.h>

#define TOKEN_MAX_CHARS 256

int auth_queue_verification(request_rec *r, ap_dbd_t *db, const char *user_id)
{
    const auth_conf *c = auth_config(r);
    const char *link, *body;

    if (!(link = auth_new_link(r, db, user_id, AUTH_SQL_VERIFY_RETIRE, AUTH_SQL_VERIFY_INSERT,
                               c->verify_ttl, "/verify-email")))
        return -1;
    body = apr_psprintf(r->pool,
        "Welcome to Beautiful Life.\n\n"
        "Please confirm your email address by opening this link within %d hours:\n\n"
        "%s\n\n"
        "If you did not create an account, you can ignore this email.\n",
        c->verify_ttl / 3600 > 0 ? c->verify_ttl / 3600 : 1, link);
    if (bl_outbox_add(r, db, user_id, "email", "auth.verify_email",
                      "Confirm your email address", body, NULL) != 0)
        return bl_send_unavailable(r, "database"), -1;
    return 0;
}

int auth_verify_email(request_rec *r, apr_table_t *params)
{
    const char *token = apr_table_get(params, "token"), *args[1], *user_id;
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    if (!token || !*token || strlen(token) > TOKEN_MAX_CHARS)
        return bl_send_error(r, HTTP_BAD_REQUEST, "INVALID_TOKEN",
                             "this verification link is not valid", NULL);
    if (!(db = bl_db(r)) || bl_db_begin(r, db) != 0)
        return OK;
    if (!(row = auth_take_link(r, db, AUTH_SQL_VERIFY_LOOKUP, AUTH_SQL_VERIFY_USE, token,
                               "verification link", -1)))
        goto fail;
    args[0] = user_id = bl_db_get(r, db, row, 1);
    if (bl_db_exec(r, db, AUTH_SQL_USER_VERIFIED, 1, args) < 0)
        goto fail;
    if (auth_audit_success(r, db, user_id, "auth.email_verified", "user", user_id) != 0)
        goto fail;
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_OK, "email address verified", NULL, NULL);
fail:
    bl_db_rollback(r, db);
    return OK;
}

/* Always 202, known address or not; throttled per address. */
int auth_resend_verification(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"email", NULL};
    const auth_conf *c = auth_config(r);
    const char *email, *args[1];
    json_object *body;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    if (!(body = bl_read_json(r)) || auth_refuse_unknown(r, body, allowed, NULL) != 0
        || !(email = auth_read_email(r, body)))
        return OK;
    if (bl_rate_limit(r, "auth_mail", bl_sha256_hex(r->pool, email, strlen(email)),
                      c->mail_limit, c->mail_window) != 0 || !(db = bl_db(r)))
        return OK;
    args[0] = email;
    if (!(res = bl_db_select(r, db, AUTH_SQL_USER_UNVERIFIED, 1, args)))
        return OK;
    if ((row = auth_first_row(r, db, res))) {
        const char *user_id = bl_db_get(r, db, row, 0);
        if (bl_db_begin(r, db) != 0)
            return OK;
        if (auth_queue_verification(r, db, user_id) != 0) {
            bl_db_rollback(r, db);
            return OK;
        }
        if (bl_db_commit(r, db) != 0)
            return OK;
    }
    return bl_send_data(r, HTTP_ACCEPTED,
                        "if the address belongs to an unverified account, a new link is on its way",
                        NULL, NULL);
}
