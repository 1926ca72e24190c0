/* Sessions and tokens: opaque token generation, session revocation in the
 * database and Redis, the cookies, and the refresh / logout / logout-all /
 * JWKS routes.
 *
 * A session is a refresh-token family: one row in sessions, one Redis key
 * "bl:sess:<sid>" that core's authn checks on every request, and a chain
 * of refresh tokens of which only the newest is unused. */
#include "auth_private.h"
#include "hmac.h"
#include "json.h"
#include "random.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <util_cookies.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_auth);

#define TOKEN_BYTES 32

int auth_new_token(request_rec *r, auth_token *out)
{
    out->token = bl_random_token(r->pool, TOKEN_BYTES);
    if (!out->token)
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL,
                             "could not create a token", NULL), -1;
    out->hash = bl_sha256_hex(r->pool, out->token, strlen(out->token));
    return 0;
}

/* ---------------------------------------------------------------- audit */

int auth_audit_success(request_rec *r, ap_dbd_t *db, const char *actor_id,
                       const char *action, const char *resource_type,
                       const char *resource_id)
{
    if (bl_audit(r, db, actor_id, action, resource_type, resource_id, "success", NULL) != 0)
        return bl_send_unavailable(r, "database"), -1;
    return 0;
}

/* ---------------------------------------------------------------- revoke */

int auth_revoke_session(request_rec *r, ap_dbd_t *db, const char *session_id,
                        const char *reason)
{
    const char *args[2] = {reason, session_id};

    if (bl_db_exec(r, db, AUTH_SQL_SESSION_REVOKE, 2, args) < 0)
        return -1;
    if (bl_session_revoke(r, session_id) != APR_SUCCESS)
        return bl_send_unavailable(r, "redis"), -1;
    return 0;
}

int auth_revoke_user_sessions(request_rec *r, ap_dbd_t *db, const char *user_id,
                              const char *except_sid, const char *reason)
{
    const char *args[3] = {reason, user_id, except_sid};
    apr_dbd_results_t *res = bl_db_select(r, db, AUTH_SQL_SESSIONS_REVOKE_USER, 3, args);
    apr_dbd_row_t *row = NULL;

    if (!res)
        return -1;
    /* Redis first fails the request (and so rolls back) rather than leave a
     * live key for a session the database calls revoked. */
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        if (bl_session_revoke(r, bl_db_get(r, db, row, 0)) != APR_SUCCESS)
            return bl_send_unavailable(r, "redis"), -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- cookies */

void auth_set_cookies(request_rec *r, const char *access, const char *refresh,
                      int refresh_ttl)
{
    /* __Host-: Secure, Path=/, no Domain — the browser enforces all three. */
    apr_table_add(r->headers_out, "Set-Cookie",
                  apr_psprintf(r->pool, "%s=%s; Path=/; Max-Age=%d; Secure; HttpOnly; "
                               "SameSite=Lax", BL_ACCESS_COOKIE, access ? access : "",
                               access ? bl_access_token_ttl(r) : 0));
    /* Only the site's own scripts ever send the refresh cookie. */
    apr_table_add(r->headers_out, "Set-Cookie",
                  apr_psprintf(r->pool, "%s=%s; Path=/; Max-Age=%d; Secure; HttpOnly; "
                               "SameSite=Strict", BL_REFRESH_COOKIE, refresh ? refresh : "",
                               refresh ? refresh_ttl : 0));
}

/* ---------------------------------------------------------------- refresh */

/* True when the client sent a body (JSON clients); cookie clients send none. */
static int has_body(request_rec *r)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");

    return apr_table_get(r->headers_in, "Transfer-Encoding") != NULL
        || (cl && strcmp(cl, "0") != 0);
}

/* The presented refresh token (body "refresh_token" or the cookie), or NULL
 * after answering. */
static const char *read_refresh_token(request_rec *r)
{
    static const char *const allowed[] = {"refresh_token", NULL};
    const char *token = NULL, *err = NULL;
    json_object *body;

    if (has_body(r)) {
        if (!(body = bl_read_json(r)) || auth_refuse_unknown(r, body, allowed, NULL) != 0)
            return NULL;
        if (bl_json_get_string(r->pool, body, "refresh_token", BL_REQUIRED, 1, 256, &token,
                               &err) != BL_FIELD_OK)
            return bl_send_validation_error(r, "refresh_token", err), NULL;
        return token;
    }
    if (ap_cookie_read(r, BL_REFRESH_COOKIE, &token, 0) != APR_SUCCESS || !token || !*token)
        return bl_send_error(r, HTTP_UNAUTHORIZED, "INVALID_REFRESH_TOKEN",
                             "no refresh token was presented", NULL), NULL;
    return token;
}

static int refuse_refresh(request_rec *r, const char *code, const char *message)
{
    auth_set_cookies(r, NULL, NULL, 0);
    return bl_send_error(r, HTTP_UNAUTHORIZED, code, message, NULL);
}

/* An already-used token came back: someone holds a copy. End the family.
 * The revocation commits first, in its own step, and the audit row follows
 * on its own: a failed audit then cannot roll the revocation back and leave
 * the thief's copy working. If the audit fails the client gets 503; a retry
 * presents the same used token, finds it again and writes the audit then. */
static int refresh_reused(request_rec *r, ap_dbd_t *db, const char *sid, const char *uid)
{
    if (auth_revoke_session(r, db, sid, "refresh_reuse") != 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                  "mod_beautiful_auth: refresh token reused; session %s revoked", sid);
    /* Cookies kept on a 503, so a browser's retry brings the token back. */
    if (bl_audit(r, db, uid, "auth.refresh_reuse", "session", sid, "denied", NULL) != 0)
        return bl_send_unavailable(r, "database");
    return refuse_refresh(r, "REFRESH_TOKEN_REUSED",
                          "this refresh token was already used: the session has been ended");
}

int auth_send_tokens(request_rec *r, int status, const char *user_id, const char *role,
                     const char *sid, const char *refresh, const char *user_json)
{
    apr_time_t expires;
    int rttl = bl_refresh_token_ttl(r);
    const char *access = bl_issue_access_token(r, user_id, role, sid, &expires);

    if (!access)
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL,
                             "could not sign the access token", NULL);
    auth_set_cookies(r, access, refresh, rttl);
    return bl_send_data(r, status, NULL,
                        apr_psprintf(r->pool,
                                     "{\"access_token\":%s,\"token_type\":\"Bearer\","
                                     "\"expires_in\":%d,\"refresh_token\":%s,"
                                     "\"refresh_expires_in\":%d%s%s}",
                                     bl_json_quote(r->pool, access), bl_access_token_ttl(r),
                                     bl_json_quote(r->pool, refresh), rttl,
                                     user_json ? ",\"user\":" : "",
                                     user_json ? user_json : ""),
                        NULL);
}

int auth_refresh(request_rec *r, apr_table_t *params)
{
    const char *token, *args[3], *tid, *sid, *uid, *role;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    auth_token next;
    ap_dbd_t *db;
    int ttl = bl_refresh_token_ttl(r);

    if (!(token = read_refresh_token(r)) || !(db = bl_db(r)) || bl_db_begin(r, db) != 0)
        return OK;
    args[0] = bl_sha256_hex(r->pool, token, strlen(token));
    if (!(res = bl_db_select(r, db, AUTH_SQL_REFRESH_LOOKUP, 1, args))) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (!(row = auth_first_row(r, db, res))) {
        bl_db_rollback(r, db);
        return refuse_refresh(r, "INVALID_REFRESH_TOKEN", "the refresh token is not valid");
    }
    tid = bl_db_get(r, db, row, 0);
    sid = bl_db_get(r, db, row, 3);
    uid = bl_db_get(r, db, row, 4);
    role = bl_db_get(r, db, row, 6);
    if (strcmp(bl_db_get(r, db, row, 1), "t") == 0)
        return refresh_reused(r, db, sid, uid);
    if (strcmp(bl_db_get(r, db, row, 2), "t") == 0 || strcmp(bl_db_get(r, db, row, 5), "t") == 0
        || strcmp(bl_db_get(r, db, row, 7), "t") != 0) {
        bl_db_rollback(r, db);
        return refuse_refresh(r, "INVALID_REFRESH_TOKEN",
                              "the session has ended: sign in again");
    }
    if (auth_new_token(r, &next) != 0)
        goto fail;
    args[0] = tid;
    switch (bl_db_exec(r, db, AUTH_SQL_REFRESH_USE, 1, args)) {
    case 1:
        break;
    case 0:        /* used meanwhile (the row lock makes this unlikely) */
        bl_db_rollback(r, db);
        return refuse_refresh(r, "INVALID_REFRESH_TOKEN", "the refresh token is not valid");
    default:
        goto fail;
    }
    args[0] = sid;
    args[1] = next.hash;
    args[2] = apr_itoa(r->pool, ttl);
    if (bl_db_exec(r, db, AUTH_SQL_REFRESH_INSERT, 3, args) < 0)
        goto fail;
    args[0] = args[2];
    args[1] = sid;
    if (bl_db_exec(r, db, AUTH_SQL_SESSION_EXTEND, 2, args) < 0)
        goto fail;
    /* Before commit: if Redis is away the old token stays valid for a retry. */
    if (bl_session_store(r, sid, uid, apr_time_from_sec(ttl)) != APR_SUCCESS) {
        bl_db_rollback(r, db);
        return bl_send_unavailable(r, "redis");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return auth_send_tokens(r, HTTP_OK, uid, role, sid, next.token, NULL);
fail:              /* already answered */
    bl_db_rollback(r, db);
    return OK;
}

/* ---------------------------------------------------------------- logout */

int auth_logout(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    ap_dbd_t *db;

    if (!(user = bl_require_user(r)) || !(db = bl_db(r)) || bl_db_begin(r, db) != 0)
        return OK;
    /* The audit row first: if it fails nothing was revoked yet, so the
     * caller's token still works for a retry. */
    if (auth_audit_success(r, db, user->id, "auth.logout", "session", user->session_id) != 0
        || auth_revoke_session(r, db, user->session_id, "logout") != 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    auth_set_cookies(r, NULL, NULL, 0);
    return bl_send_data(r, HTTP_OK, "signed out", NULL, NULL);
}

int auth_logout_all(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    ap_dbd_t *db;

    if (!(user = bl_require_user(r)) || !(db = bl_db(r)) || bl_db_begin(r, db) != 0)
        return OK;
    /* Audit first, as in auth_logout: a failure leaves every session live. */
    if (auth_audit_success(r, db, user->id, "auth.logout_all", "user", user->id) != 0
        || auth_revoke_user_sessions(r, db, user->id, NULL, "logout_all") != 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    auth_set_cookies(r, NULL, NULL, 0);
    return bl_send_data(r, HTTP_OK, "signed out everywhere", NULL, NULL);
}

/* ---------------------------------------------------------------- jwks */

/* A plain JWKS document (RFC 7517), not the envelope: clients' JOSE
 * libraries read it as is. Public and cacheable for a few minutes, so a
 * new key is picked up soon after rotation. */
int auth_jwks(request_rec *r, apr_table_t *params)
{
    const char *jwks;

    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        return HTTP_METHOD_NOT_ALLOWED;
    }
    jwks = bl_jwks_json(r);
    if (!jwks)
        return HTTP_SERVICE_UNAVAILABLE;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "public, max-age=300");
    ap_set_content_length(r, (apr_off_t)strlen(jwks));
    if (!r->header_only)
        ap_rputs(jwks, r);
    return OK;
}
