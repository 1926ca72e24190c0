/* POST /auth/login, and keeping users.last_active_at current.
 *
 * An unknown email and a wrong password answer alike — same status, body
 * and cost (argon2 runs against a dummy hash) — and both are throttled per
 * IP and per account before argon2 runs, so a flood cannot burn the CPU. */
#include "auth_private.h"
#include "hmac.h"
#include "json.h"
#include "password.h"
#include "uuid.h"

#include <http_log.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_auth);

#define PASSWORD_MAX_BYTES 512
/* Entries kept in the per-child last-active cache before it is emptied. */
#define ACTIVE_CACHE_MAX 10000
#define ACTIVE_INTERVAL apr_time_from_sec(60)

typedef struct {
    const char *id;
    const char *hash;
    const char *role;
    int active;
} login_account;

/* Per-account bucket of failed logins (Redis, shared by children and
 * hosts), keyed by the sha256 of the normalised email so the key names no
 * one. core's bl_rate_limit counts every call and cannot give a hit back,
 * and a bucket that counts successes lets anyone who knows an address keep
 * its owner out. So this one is kept here: each attempt takes a slot before
 * argon2 runs (a parallel flood is refused too) and a right password gives
 * it back, so only failures fill it. The scripts make each step atomic: a
 * key never outlives its window, and no give-back revives an expired one. */
static const char take_script[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 or redis.call('TTL', KEYS[1]) < 0 then "
    "redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
    "return {n, redis.call('TTL', KEYS[1])}";
static const char give_back_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end "
    "return 0";

static const char *account_bucket(request_rec *r, const char *email)
{
    return apr_pstrcat(r->pool, "bl:auth:login_fail:",
                       bl_sha256_hex(r->pool, email, strlen(email)), NULL);
}

/* Takes a slot. Returns 0 when allowed, 1 when over the limit (*retry_after
 * set), -1 when Redis failed (nothing answered). */
static int account_take(request_rec *r, const char *email, int *retry_after)
{
    const auth_conf *c = auth_config(r);
    const char *argv[5] = {"EVAL", take_script, "1", account_bucket(r, email),
                           apr_itoa(r->pool, c->login_acct_window)};
    redisReply *reply = bl_redis_command(r, 5, argv, NULL);

    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    if (reply->element[0]->integer <= c->login_acct_limit)
        return 0;
    *retry_after = reply->element[1]->integer > 0 ? (int)reply->element[1]->integer : 1;
    return 1;
}

/* Gives the slot back after a right password; best effort (a Redis
 * failure only costs the owner one slot of the window). */
static void account_give_back(request_rec *r, const char *email)
{
    const char *argv[4] = {"EVAL", give_back_script, "1", account_bucket(r, email)};

    bl_redis_command(r, 4, argv, NULL);
}

/* Loads the account; acct->id stays NULL when there is none. */
static apr_status_t load_account(request_rec *r, ap_dbd_t *db, const char *email,
                                 login_account *acct)
{
    const char *args[1] = {email};
    apr_dbd_results_t *res = bl_db_select(r, db, AUTH_SQL_USER_FOR_LOGIN, 1, args);
    apr_dbd_row_t *row;

    memset(acct, 0, sizeof *acct);
    if (!res)
        return APR_EGENERAL;
    if ((row = auth_first_row(r, db, res))) {
        acct->id = bl_db_get(r, db, row, 0);
        acct->hash = bl_db_get(r, db, row, 1);
        acct->role = bl_db_get(r, db, row, 2);
        acct->active = strcmp(bl_db_get(r, db, row, 3), "t") == 0;
    }
    return APR_SUCCESS;
}

/* One argon2 verification whether or not the account exists. */
static int credentials_match(const login_account *acct, const char *password)
{
    int ok = bl_password_verify(acct->id && acct->hash ? acct->hash : auth_dummy_hash(),
                                password, strlen(password));

    return ok && acct->id != NULL;
}

/* Upgrades a hash made with older parameters; best effort: login answers
 * after this, so a failure is only logged and waits for the next login. */
static void rehash_if_needed(request_rec *r, ap_dbd_t *db, const login_account *acct,
                             const char *password)
{
    const char *args[2];

    if (!bl_password_needs_rehash(acct->hash)
        || !(args[0] = bl_password_hash(r->pool, password, strlen(password))))
        return;
    args[1] = acct->id;
    auth_db_exec_quiet(r, db, AUTH_SQL_USER_SET_PASSWORD, 2, args);
}

/* Creates the session (family) and its first refresh token, in the
 * caller's transaction, and the Redis key core's authn checks. Returns 0,
 * or -1 after answering. */
static int start_session(request_rec *r, ap_dbd_t *db, const char *user_id,
                         const char *sid, const auth_token *refresh)
{
    int ttl = bl_refresh_token_ttl(r);
    const char *ttl_s = apr_itoa(r->pool, ttl);
    const char *session[5] = {sid, user_id, ttl_s, bl_client_ip(r), bl_user_agent(r)};
    const char *token[3] = {sid, refresh->hash, ttl_s};
    const char *touch[1] = {user_id};

    if (bl_db_exec(r, db, AUTH_SQL_SESSION_INSERT, 5, session) < 0
        || bl_db_exec(r, db, AUTH_SQL_REFRESH_INSERT, 3, token) < 0
        || bl_db_exec(r, db, AUTH_SQL_USER_TOUCH, 1, touch) < 0)
        return -1;
    if (bl_session_store(r, sid, user_id, apr_time_from_sec(ttl)) != APR_SUCCESS)
        return bl_send_unavailable(r, "redis"), -1;
    return 0;
}

/* Refusals are answered as refusals even when their audit row could not
 * be written (bl_audit logged why): a 503 would only tell the caller the
 * audit trail is down. Successes are audited or do not happen. */
static int login_failed(request_rec *r, ap_dbd_t *db, const login_account *acct)
{
    bl_audit(r, db, acct->id, "auth.login", "user", acct->id, "failure",
             acct->id ? "{\"reason\":\"wrong_password\"}" : "{\"reason\":\"unknown_email\"}");
    return bl_send_error(r, HTTP_UNAUTHORIZED, "INVALID_CREDENTIALS",
                         "email or password is incorrect", NULL);
}

/* Over the per-IP limit: bl_rate_limit has answered 429 already, so the
 * audit row goes on a quietly acquired connection and cannot answer. */
static int login_ip_throttled(request_rec *r)
{
    bl_audit(r, NULL, NULL, "auth.login", "user", NULL, "denied",
             "{\"reason\":\"throttled\",\"limit\":\"ip\"}");
    return OK;
}

/* Over the per-account limit: audited against the account (one indexed
 * read, no argon2), then 429 with Retry-After. */
static int login_account_throttled(request_rec *r, const char *email, int retry_after)
{
    const char *retry = apr_itoa(r->pool, retry_after);
    login_account acct;
    ap_dbd_t *db;

    if (!(db = bl_db(r)) || load_account(r, db, email, &acct) != APR_SUCCESS)
        return OK;
    bl_audit(r, db, acct.id, "auth.login", "user", acct.id, "denied",
             "{\"reason\":\"throttled\",\"limit\":\"account\"}");
    apr_table_setn(r->err_headers_out, "Retry-After", retry);
    apr_table_setn(r->err_headers_out, "RateLimit-Limit",
                   apr_itoa(r->pool, auth_config(r)->login_acct_limit));
    apr_table_setn(r->err_headers_out, "RateLimit-Remaining", "0");
    apr_table_setn(r->err_headers_out, "RateLimit-Reset", retry);
    return bl_send_error(r, HTTP_TOO_MANY_REQUESTS, BL_ERR_RATE_LIMITED,
                         "Too many requests; try again later", NULL);
}

/* Both throttles, before argon2. Returns 0 when allowed (else answered). */
static int login_throttled(request_rec *r, const char *email)
{
    const auth_conf *c = auth_config(r);
    int retry_after = 0;

    switch (bl_rate_limit(r, "auth_login_ip", bl_client_ip(r), c->login_ip_limit,
                          c->login_ip_window)) {
    case 0:
        break;
    case 1:
        return login_ip_throttled(r), 1;
    default:
        return 1;
    }
    switch (account_take(r, email, &retry_after)) {
    case 0:
        return 0;
    case 1:
        return login_account_throttled(r, email, retry_after), 1;
    default:
        return bl_send_unavailable(r, "redis"), 1;
    }
}

int auth_login(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"email", "password", NULL};
    json_object *body;
    const char *email, *password = NULL, *err = NULL, *sid, *user_json = NULL, *args[1];
    login_account acct;
    auth_token refresh;
    ap_dbd_t *db;

    if (!(body = bl_read_json(r)) || auth_refuse_unknown(r, body, allowed, NULL) != 0
        || !(email = auth_read_email(r, body)))
        return OK;
    if (bl_json_get_string(r->pool, body, "password", BL_REQUIRED, 1, PASSWORD_MAX_BYTES,
                           &password, &err) != BL_FIELD_OK)
        return bl_send_validation_error(r, "password", err);
    if (login_throttled(r, email))
        return OK;
    /* A database outage is no wrong password: the slot goes back, or the
     * owner's retries during it would lock them out after it. */
    if (!(db = bl_db(r)) || load_account(r, db, email, &acct) != APR_SUCCESS) {
        account_give_back(r, email);
        return OK;
    }
    if (!credentials_match(&acct, password))
        return login_failed(r, db, &acct);
    account_give_back(r, email);
    /* Only someone who knows the password learns the account is disabled. */
    if (!acct.active) {
        bl_audit(r, db, acct.id, "auth.login", "user", acct.id, "denied",
                 "{\"reason\":\"deactivated\"}");
        return bl_send_error(r, HTTP_FORBIDDEN, "ACCOUNT_DISABLED",
                             "this account has been deactivated", NULL);
    }
    rehash_if_needed(r, db, &acct, password);
    if (!(sid = bl_uuid_v4(r->pool)) || auth_new_token(r, &refresh) != 0)
        return sid ? OK : bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL,
                                        "could not create a session", NULL);
    if (bl_db_begin(r, db) != 0)
        return OK;
    if (start_session(r, db, acct.id, sid, &refresh) != 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_audit(r, db, acct.id, "auth.login", "session", sid, "success", NULL) != 0) {
        bl_db_rollback(r, db);
        bl_session_revoke(r, sid);
        return bl_send_unavailable(r, "database");
    }
    if (bl_db_commit(r, db) != 0) {
        bl_session_revoke(r, sid);
        return OK;
    }
    args[0] = acct.id;
    if (bl_db_value(r, db, AUTH_SQL_USER_JSON, 1, args, &user_json) != APR_SUCCESS)
        return OK;
    return auth_send_tokens(r, HTTP_OK, acct.id, acct.role, sid, refresh.token, user_json);
}

/* ---------------------------------------------------------------- activity */

/* Per child: when this child last wrote last_active_at for a user. The SQL
 * itself refuses a second write within the minute across children and
 * hosts; this cache only saves the round trip. Threads share it. */
static apr_pool_t *active_pool;
static apr_hash_t *active_seen;
static apr_thread_mutex_t *active_lock;

void auth_activity_child_init(apr_pool_t *pchild)
{
    if (apr_pool_create(&active_pool, pchild) != APR_SUCCESS
        || apr_thread_mutex_create(&active_lock, APR_THREAD_MUTEX_DEFAULT, pchild)
           != APR_SUCCESS) {
        active_pool = NULL;
        return;
    }
    active_seen = apr_hash_make(active_pool);
}

static int recently_touched(request_rec *r, const char *user_id)
{
    apr_time_t now = r->request_time;
    apr_time_t *seen;
    int recent = 0;

    if (!active_pool || apr_thread_mutex_lock(active_lock) != APR_SUCCESS)
        return 0;
    if (apr_hash_count(active_seen) >= ACTIVE_CACHE_MAX) {
        apr_pool_clear(active_pool);
        active_seen = apr_hash_make(active_pool);
    }
    seen = apr_hash_get(active_seen, user_id, APR_HASH_KEY_STRING);
    if (seen && now - *seen < ACTIVE_INTERVAL) {
        recent = 1;
    } else {
        if (!seen) {
            seen = apr_palloc(active_pool, sizeof *seen);
            apr_hash_set(active_seen, apr_pstrdup(active_pool, user_id),
                         APR_HASH_KEY_STRING, seen);
        }
        *seen = now;
    }
    apr_thread_mutex_unlock(active_lock);
    return recent;
}

/* log_transaction: after the answer went out, so it never slows a request
 * and never answers: hence the quiet statement. */
int auth_touch_last_active(request_rec *r)
{
    const bl_user *user;
    ap_dbd_t *db;

    if (!r->user || r->main || r->status >= 400 || !(user = bl_current_user(r)) || !user->id)
        return DECLINED;
    if (recently_touched(r, user->id) || !(db = ap_dbd_acquire(r)))
        return DECLINED;
    auth_db_exec_quiet(r, db, AUTH_SQL_USER_TOUCH, 1, &user->id);
    return DECLINED;
}
