/* Passwords: the policy (NIST SP 800-63B), the common-passwords list,
 * re-confirmation for sensitive actions, and the forgot / reset / change
 * routes. */
#include "auth_private.h"
#include "hmac.h"
#include "json.h"
#include "password.h"
#include "random.h"
#include "validate.h"

#include <http_log.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include <ctype.h>
#include <string.h>

APLOG_USE_MODULE(beautiful_auth);

#define PASSWORD_MIN_CHARS 12
#define PASSWORD_MAX_CHARS 128
/* Bytes read from a client password field: 128 code points of 4 bytes. */
#define PASSWORD_MAX_BYTES 512
/* Shorter local parts ("jo") would refuse half of all passwords. */
#define LOCAL_PART_MIN 3

static const char *dummy_hash;

/* ---------------------------------------------------------------- list */

static char *lower_ascii(apr_pool_t *p, const char *s, apr_size_t len)
{
    char *out = apr_pstrmemdup(p, s, len);
    apr_size_t i;

    for (i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
    return out;
}

apr_hash_t *auth_load_common_passwords(apr_pool_t *p, const char *path,
                                       const char **err)
{
    apr_file_t *f;
    apr_hash_t *h;
    char line[512];
    apr_status_t rv;

    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BUFFERED, APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        char buf[120];
        *err = apr_pstrdup(p, apr_strerror(rv, buf, sizeof buf));
        return NULL;
    }
    h = apr_hash_make(p);
    while (apr_file_gets(line, sizeof line, f) == APR_SUCCESS) {
        apr_size_t len = strcspn(line, "\r\n");
        if (len == 0 || line[0] == '#')
            continue;
        apr_hash_set(h, lower_ascii(p, line, len), (apr_ssize_t)len, "");
    }
    apr_file_close(f);
    return h;
}

static int is_common(const auth_conf *c, request_rec *r, const char *password)
{
    apr_size_t len = strlen(password);

    if (!c->common_passwords)
        return 0;
    return apr_hash_get(c->common_passwords, lower_ascii(r->pool, password, len),
                        (apr_ssize_t)len) != NULL;
}

/* ---------------------------------------------------------------- policy */

static int contains_local_part(request_rec *r, const char *password, const char *email)
{
    const char *at;
    apr_size_t n;

    if (!email || !(at = strchr(email, '@')))
        return 0;
    n = (apr_size_t)(at - email);
    if (n < LOCAL_PART_MIN)
        return 0;
    return strstr(lower_ascii(r->pool, password, strlen(password)),
                  lower_ascii(r->pool, email, n)) != NULL;
}

int auth_check_password_policy(request_rec *r, const char *field,
                               const char *password, const char *email)
{
    apr_size_t chars = bl_utf8_chars(password, strlen(password));

    if (chars < PASSWORD_MIN_CHARS)
        return bl_send_error(r, HTTP_BAD_REQUEST, "WEAK_PASSWORD",
                             apr_psprintf(r->pool, "%s must be at least %d characters",
                                          field, PASSWORD_MIN_CHARS),
                             apr_pstrcat(r->pool, "field: ", field, NULL)), -1;
    if (chars > PASSWORD_MAX_CHARS)
        return bl_send_error(r, HTTP_BAD_REQUEST, "WEAK_PASSWORD",
                             apr_psprintf(r->pool, "%s must be at most %d characters",
                                          field, PASSWORD_MAX_CHARS),
                             apr_pstrcat(r->pool, "field: ", field, NULL)), -1;
    if (is_common(auth_config(r), r, password))
        return bl_send_error(r, HTTP_BAD_REQUEST, "WEAK_PASSWORD",
                             apr_pstrcat(r->pool, field,
                                         " is too common: choose another one", NULL),
                             apr_pstrcat(r->pool, "field: ", field, NULL)), -1;
    if (contains_local_part(r, password, email))
        return bl_send_error(r, HTTP_BAD_REQUEST, "WEAK_PASSWORD",
                             apr_pstrcat(r->pool, field,
                                         " must not contain your email address", NULL),
                             apr_pstrcat(r->pool, "field: ", field, NULL)), -1;
    return 0;
}

/* Reads a password field (a string of at most PASSWORD_MAX_BYTES); answers
 * 400 and returns NULL when absent or not a string. */
static const char *read_password_field(request_rec *r, json_object *body, const char *field)
{
    const char *value = NULL, *err = NULL;

    if (bl_json_get_string(r->pool, body, field, BL_REQUIRED, 1, PASSWORD_MAX_BYTES,
                           &value, &err) != BL_FIELD_OK) {
        bl_send_validation_error(r, field, err);
        return NULL;
    }
    return value;
}

/* ---------------------------------------------------------------- dummy */

void auth_make_dummy_hash(apr_pool_t *pconf)
{
    const char *secret = bl_random_token(pconf, 24);

    dummy_hash = secret ? bl_password_hash(pconf, secret, strlen(secret)) : NULL;
}

const char *auth_dummy_hash(void)
{
    /* Same parameters as real hashes; a literal only if the RNG failed. */
    return dummy_hash ? dummy_hash
        : "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
          "BVQ7tWq0sWk5wYbP3a+3mXgqkTqnRoFR3cPM0zH6Pgo";
}

/* ---------------------------------------------------------------- confirm */

/* Looks up the user's current hash and email (NULL email: no such user). */
static apr_status_t load_credentials(request_rec *r, ap_dbd_t *db, const char *user_id,
                                     const char **hash, const char **email)
{
    const char *args[1] = {user_id};
    apr_dbd_results_t *res = bl_db_select(r, db, AUTH_SQL_USER_BY_ID, 1, args);
    apr_dbd_row_t *row;

    if (!res)
        return APR_EGENERAL;
    row = auth_first_row(r, db, res);
    *email = row ? bl_db_get(r, db, row, 1) : NULL;
    *hash = row ? bl_db_get(r, db, row, 2) : NULL;
    return APR_SUCCESS;
}

int auth_confirm_password(request_rec *r, ap_dbd_t *db, const bl_user *user,
                          const char *password)
{
    const auth_conf *c = auth_config(r);
    const char *hash = NULL, *email = NULL;
    int ok;

    if (bl_rate_limit(r, "auth_confirm", user->id, c->confirm_limit, c->confirm_window) != 0)
        return -1;
    if (load_credentials(r, db, user->id, &hash, &email) != APR_SUCCESS)
        return -1;
    ok = bl_password_verify(hash ? hash : auth_dummy_hash(), password, strlen(password));
    if (!ok || !email) {
        bl_audit(r, NULL, user->id, "auth.password_confirm", "user", user->id, "failure",
                 NULL);
        return bl_send_error(r, HTTP_FORBIDDEN, "INVALID_PASSWORD",
                             "the current password is not correct", NULL), -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- emails */

/* Writes the reset email for user_id to the outbox (caller's transaction);
 * answers and returns -1 on failure. */
static int queue_reset(request_rec *r, ap_dbd_t *db, const char *user_id)
{
    const auth_conf *c = auth_config(r);
    const char *link, *body;

    if (!(link = auth_new_link(r, db, user_id, AUTH_SQL_RESET_RETIRE, AUTH_SQL_RESET_INSERT,
                               c->reset_ttl, "/reset-password")))
        return -1;
    body = apr_psprintf(r->pool,
        "Someone asked to reset the password of your Beautiful Life account.\n"
        "Open this link within %d minutes to choose a new one:\n\n%s\n\n"
        "If it was not you, ignore this email: your password stays as it is.\n",
        c->reset_ttl / 60, link);
    if (bl_outbox_add(r, db, user_id, "email", "auth.password_reset",
                      "Reset your Beautiful Life password", body, NULL) != 0)
        return bl_send_unavailable(r, "database"), -1;
    return 0;
}

/* ---------------------------------------------------------------- routes */

int auth_forgot_password(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"email", NULL};
    const auth_conf *c = auth_config(r);
    json_object *body;
    const char *email, *args[1];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    if (!(body = bl_read_json(r)) || auth_refuse_unknown(r, body, allowed, NULL) != 0
        || !(email = auth_read_email(r, body)))
        return OK;
    /* Per address, known or not, so the answer says nothing about it. */
    if (bl_rate_limit(r, "auth_mail", bl_sha256_hex(r->pool, email, strlen(email)),
                      c->mail_limit, c->mail_window) != 0)
        return OK;
    if (!(db = bl_db(r)))
        return OK;
    args[0] = email;
    if (!(res = bl_db_select(r, db, AUTH_SQL_USER_FOR_LOGIN, 1, args)))
        return OK;
    row = auth_first_row(r, db, res);
    if (row && strcmp(bl_db_get(r, db, row, 3), "t") == 0) {
        const char *user_id = bl_db_get(r, db, row, 0);
        if (bl_db_begin(r, db) != 0)
            return OK;
        if (queue_reset(r, db, user_id) != 0
            || auth_audit_success(r, db, user_id, "auth.password_reset_requested", "user",
                                  user_id) != 0) {
            bl_db_rollback(r, db);
            return OK;
        }
        if (bl_db_commit(r, db) != 0)
            return OK;
    }
    return bl_send_data(r, HTTP_ACCEPTED,
                        "if the address belongs to an account, a reset link is on its way",
                        NULL, NULL);
}

/* Stores a new hash for user_id; answers and returns -1 on failure. */
static int store_password(request_rec *r, ap_dbd_t *db, const char *user_id,
                          const char *password)
{
    const char *hash = bl_password_hash(r->pool, password, strlen(password));
    const char *args[2];

    if (!hash)
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL,
                             "could not hash the password", NULL), -1;
    args[0] = hash;
    args[1] = user_id;
    return bl_db_exec(r, db, AUTH_SQL_USER_SET_PASSWORD, 2, args) < 0 ? -1 : 0;
}

int auth_reset_password(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"token", "password", NULL};
    json_object *body;
    const char *token = NULL, *password, *err = NULL, *user_id, *args[1];
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    if (!(body = bl_read_json(r)) || auth_refuse_unknown(r, body, allowed, NULL) != 0)
        return OK;
    if (bl_json_get_string(r->pool, body, "token", BL_REQUIRED, 1, 256, &token, &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "token", err);
    if (!(password = read_password_field(r, body, "password")) || !(db = bl_db(r))
        || bl_db_begin(r, db) != 0)
        return OK;
    if (!(row = auth_take_link(r, db, AUTH_SQL_RESET_LOOKUP, AUTH_SQL_RESET_USE, token,
                               "reset link", 5)))
        goto fail;
    user_id = bl_db_get(r, db, row, 1);
    if (auth_check_password_policy(r, "password", password, bl_db_get(r, db, row, 4)) != 0
        || store_password(r, db, user_id, password) != 0)
        goto fail;
    /* Following the emailed link proves the address too. */
    args[0] = user_id;
    if (bl_db_exec(r, db, AUTH_SQL_USER_VERIFIED, 1, args) < 0)
        goto fail;
    /* Audited before the Redis keys go, so a failed audit revokes nothing. */
    if (auth_audit_success(r, db, user_id, "auth.password_reset", "user", user_id) != 0
        || auth_revoke_user_sessions(r, db, user_id, NULL, "password_reset") != 0)
        goto fail;
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_OK, "password changed: sign in with the new one", NULL, NULL);
fail:
    bl_db_rollback(r, db);
    return OK;
}

int users_change_password(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"current_password", "new_password", NULL};
    const bl_user *user;
    json_object *body;
    const char *current, *next, *hash = NULL, *email = NULL;
    ap_dbd_t *db;

    if (!(user = bl_require_user(r)) || !(body = bl_read_json(r))
        || auth_refuse_unknown(r, body, allowed, NULL) != 0
        || !(current = read_password_field(r, body, "current_password"))
        || !(next = read_password_field(r, body, "new_password")) || !(db = bl_db(r)))
        return OK;
    if (auth_confirm_password(r, db, user, current) != 0
        || load_credentials(r, db, user->id, &hash, &email) != APR_SUCCESS
        || auth_check_password_policy(r, "new_password", next, email) != 0)
        return OK;
    if (bl_db_begin(r, db) != 0)
        return OK;
    if (store_password(r, db, user->id, next) != 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    /* Audited before the Redis keys go, so a failed audit revokes nothing. */
    if (auth_audit_success(r, db, user->id, "auth.password_change", "user", user->id) != 0
        || auth_revoke_user_sessions(r, db, user->id, user->session_id,
                                     "password_change") != 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_OK, "password changed; your other sessions were ended",
                        NULL, NULL);
}
