/* Internal interfaces between the files of mod_beautiful_auth.
 * Only the module structure is exported from the .so (Makefile.inc), so
 * these names never clash with another module's. */
#ifndef BL_AUTH_PRIVATE_H
#define BL_AUTH_PRIVATE_H

#include "beautiful.h"
#include <apr_hash.h>
#include <apr_tables.h>

extern module AP_MODULE_DECLARE_DATA beautiful_auth_module;

/* ---------------------------------------------------------------- config */

typedef struct {
    const char *avatar_dir;          /* BeautifulAuthAvatarDir */
    apr_size_t avatar_max;           /* BeautifulAuthAvatarMaxSize (bytes) */
    const char *avatar_url;          /* BeautifulAuthAvatarURL (prefix) */
    apr_hash_t *common_passwords;    /* BeautifulAuthCommonPasswords, lower-cased */
    int login_ip_limit, login_ip_window;       /* BeautifulAuthLoginLimit ip */
    int login_acct_limit, login_acct_window;   /* BeautifulAuthLoginLimit account */
    int mail_limit, mail_window;     /* BeautifulAuthMailLimit: forgot/resend per account */
    int confirm_limit, confirm_window; /* BeautifulAuthConfirmLimit: password re-entry per user */
    int verify_ttl;                  /* BeautifulAuthVerifyTTL (seconds) */
    int reset_ttl;                   /* BeautifulAuthResetTTL (seconds) */
} auth_conf;

const auth_conf *auth_config(const request_rec *r);

/* ---------------------------------------------------------------- routes */

/* A route handler: params holds the ":name" segments. Returns OK after
 * answering (every path answers through core's envelope functions). */
typedef int auth_route_fn(request_rec *r, apr_table_t *params);

auth_route_fn auth_register, auth_login, auth_logout, auth_logout_all,
    auth_refresh, auth_forgot_password, auth_reset_password,
    auth_verify_email, auth_resend_verification, auth_jwks,
    users_get_profile, users_put_profile, users_get_public_profile,
    users_change_password, users_upload_avatar, users_delete_account,
    admin_list_users, admin_update_user, admin_analytics;

/* ---------------------------------------------------------------- SQL */

extern const bl_statement auth_statements[];

/* First row of a random-access result, or NULL when there is none. */
apr_dbd_row_t *auth_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res);
/* Runs a prepared statement for work the client's answer does not wait on
 * (after the answer, or best effort): returns the affected rows, or -1
 * after logging the failure (never the arguments); answers nothing. */
int auth_db_exec_quiet(request_rec *r, ap_dbd_t *db, const char *label, int nargs,
                       const char *const *args);

/* ---------------------------------------------------------------- passwords */

/* Loads a common-passwords file (one per line) into a hash of lower-cased
 * entries; NULL and *err on failure. */
apr_hash_t *auth_load_common_passwords(apr_pool_t *p, const char *path,
                                       const char **err);
/* Answers 400 and returns -1 unless password meets the policy (length,
 * common list, email local part); field names the JSON field. */
int auth_check_password_policy(request_rec *r, const char *field,
                               const char *password, const char *email);
/* A hash of a random password made at start-up, verified against when the
 * account does not exist so both paths cost one argon2 run. */
void auth_make_dummy_hash(apr_pool_t *pconf);
const char *auth_dummy_hash(void);
/* Verifies the caller's password for a sensitive action (change, delete),
 * throttled per user. Returns 0 when it matches; otherwise answers (401
 * INVALID_PASSWORD, 429, 503) and returns -1. */
int auth_confirm_password(request_rec *r, ap_dbd_t *db, const bl_user *user,
                          const char *password);

/* ---------------------------------------------------------------- tokens */

/* A fresh opaque token (256 bits, base64url) and its stored form. */
typedef struct {
    const char *token;      /* goes to the client only */
    const char *hash;       /* sha256 hex: goes to the database */
} auth_token;
/* Returns 0, or -1 after answering 500 (RNG failure). */
int auth_new_token(request_rec *r, auth_token *out);

/* Single-use emailed links (auth_links.c). */
/* Retires user_id's unused links (retire_label), stores a fresh one valid
 * for ttl seconds (insert_label) and returns its URL,
 * "<public base URL><page>#token=<token>"; NULL after answering. */
const char *auth_new_link(request_rec *r, ap_dbd_t *db, const char *user_id,
                          const char *retire_label, const char *insert_label,
                          int ttl, const char *page);
/* Locks the link's row (lookup_label by token hash: columns id, user_id,
 * used, expired, ...) and marks it used (use_label), in the caller's
 * transaction. A row whose column active_col (when >= 0) is not true counts
 * as unknown. Returns the row, or NULL after answering 400 INVALID_TOKEN,
 * TOKEN_USED or TOKEN_EXPIRED ("this <what> is not valid") or 503. */
apr_dbd_row_t *auth_take_link(request_rec *r, ap_dbd_t *db, const char *lookup_label,
                              const char *use_label, const char *token, const char *what,
                              int active_col);

/* A success audit row inside the caller's transaction: the change must not
 * commit without it. Returns 0, or -1 after answering 503 (the caller rolls
 * back). */
int auth_audit_success(request_rec *r, ap_dbd_t *db, const char *actor_id,
                       const char *action, const char *resource_type,
                       const char *resource_id);
/* Revokes every live session of user_id (but except_sid, may be NULL) in
 * the database (inside the caller's transaction) and in Redis. Returns 0,
 * or -1 after answering 503. */
int auth_revoke_user_sessions(request_rec *r, ap_dbd_t *db, const char *user_id,
                              const char *except_sid, const char *reason);
/* Revokes one session in the database and Redis. */
int auth_revoke_session(request_rec *r, ap_dbd_t *db, const char *session_id,
                        const char *reason);
/* The login/refresh answer: a fresh access token for the session and the
 * refresh token, in the body (mobile clients) and as cookies (browsers);
 * user_json (may be NULL) is added as "user". */
int auth_send_tokens(request_rec *r, int status, const char *user_id, const char *role,
                     const char *sid, const char *refresh, const char *user_json);
/* Sets the two cookies; clears them when tokens are NULL. */
void auth_set_cookies(request_rec *r, const char *access, const char *refresh,
                      int refresh_ttl);

/* ---------------------------------------------------------------- profile */

/* Validates the profile fields of src into a new flat JSON object (*flat,
 * freed with r->pool) for the INSERT/UPDATE statements: a key present
 * means "set", null means "clear" (for_update only). Returns 0, or -1
 * after answering 400. */
int auth_read_profile(request_rec *r, json_object *src, int for_update, json_object **flat);

/* Removes the stored file behind one of our avatar URLs (others ignored). */
void auth_remove_avatar(request_rec *r, const char *url);

/* ---------------------------------------------------------------- email */

/* Creates a single-use email-verification token for user_id and writes the
 * email to the outbox, in the caller's transaction. Returns 0, or -1 after
 * answering. */
int auth_queue_verification(request_rec *r, ap_dbd_t *db, const char *user_id);

/* ---------------------------------------------------------------- helpers */

/* Trimmed, lower-cased copy of an email address. */
const char *auth_normalise_email(apr_pool_t *p, const char *email);
/* Reads the required "email" field, normalised and validated; answers 400
 * and returns NULL when invalid. */
const char *auth_read_email(request_rec *r, json_object *body);
/* Answers 400 naming the first unknown field; returns -1, or 0 when none. */
int auth_refuse_unknown(request_rec *r, json_object *obj, const char *const *allowed,
                        const char *prefix);
/* Keeps users.last_active_at current, at most once a minute per user
 * (log_transaction hook); its per-child cache is made in child_init. */
int auth_touch_last_active(request_rec *r);
void auth_activity_child_init(apr_pool_t *pchild);
/* Runs the optional hook "bl_account_deleted" (see README.md). */
int auth_run_account_deleted(request_rec *r, ap_dbd_t *db, const char *user_id);

/* Statement labels. */
#define AUTH_SQL_USER_EXISTS          "auth_user_exists"
#define AUTH_SQL_USER_INSERT          "auth_user_insert"
#define AUTH_SQL_USER_JSON            "auth_user_json"
#define AUTH_SQL_USER_PUBLIC_JSON     "auth_user_public_json"
#define AUTH_SQL_USER_FOR_LOGIN       "auth_user_for_login"
#define AUTH_SQL_USER_BY_ID           "auth_user_by_id"
#define AUTH_SQL_USER_SET_PASSWORD    "auth_user_set_password"
#define AUTH_SQL_USER_TOUCH           "auth_user_touch"
#define AUTH_SQL_USER_UPDATE_PROFILE  "auth_user_update_profile"
#define AUTH_SQL_USER_SET_AVATAR      "auth_user_set_avatar"
#define AUTH_SQL_USER_DELETE          "auth_user_delete"
#define AUTH_SQL_AUDIT_SCRUB          "auth_audit_scrub"
#define AUTH_SQL_USER_VERIFIED        "auth_user_verified"
#define AUTH_SQL_USER_UNVERIFIED      "auth_user_unverified"
#define AUTH_SQL_SESSION_INSERT       "auth_session_insert"
#define AUTH_SQL_SESSION_REVOKE       "auth_session_revoke"
#define AUTH_SQL_SESSIONS_REVOKE_USER "auth_sessions_revoke_user"
#define AUTH_SQL_SESSION_EXTEND       "auth_session_extend"
#define AUTH_SQL_REFRESH_INSERT       "auth_refresh_insert"
#define AUTH_SQL_REFRESH_LOOKUP       "auth_refresh_lookup"
#define AUTH_SQL_REFRESH_USE          "auth_refresh_use"
#define AUTH_SQL_VERIFY_INSERT        "auth_verify_insert"
#define AUTH_SQL_VERIFY_LOOKUP        "auth_verify_lookup"
#define AUTH_SQL_VERIFY_USE           "auth_verify_use"
#define AUTH_SQL_VERIFY_RETIRE        "auth_verify_retire"
#define AUTH_SQL_RESET_INSERT         "auth_reset_insert"
#define AUTH_SQL_RESET_LOOKUP         "auth_reset_lookup"
#define AUTH_SQL_RESET_USE            "auth_reset_use"
#define AUTH_SQL_RESET_RETIRE         "auth_reset_retire"
#define AUTH_SQL_ADMIN_LIST           "auth_admin_list"
#define AUTH_SQL_ADMIN_ANALYTICS      "auth_admin_analytics"
#define AUTH_SQL_ADMIN_LOCK           "auth_admin_lock"
#define AUTH_SQL_ADMIN_UPDATE         "auth_admin_update"
#define AUTH_SQL_CLEANUP              "auth_cleanup"

#endif
