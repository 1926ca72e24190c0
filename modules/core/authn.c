/* authn.c — access tokens and sessions, wired into httpd's auth.
 *
 *   AuthType Beautiful      check_authn hook: token from the __Host-bl_at
 *                           cookie or "Authorization: Bearer", verified
 *                           (RS256, typ at+jwt, iss, aud, exp, nbf), then
 *                           the session "bl:sess:<sid>" must exist in Redis
 *                           and name the same user.
 *   Require bl-role r...    authz provider on the token's role claim.
 *
 * A token in the query string is refused outright: URLs end up in logs,
 * histories and Referer headers. */
#include "core_hooks.h"
#include "jwt.h"
#include "uuid.h"

#include <http_protocol.h>
#include <http_log.h>
#include <http_request.h>
#include <mod_auth.h>
#include <http_core.h>
#include <apr_strings.h>
#include <apr_lib.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_SESSION_PREFIX "bl:sess:"
#define BL_WWW_AUTH_INVALID BL_WWW_AUTH ", error=\"invalid_token\""

typedef enum {
    TOKEN_NONE,
    TOKEN_BEARER,
    TOKEN_COOKIE,
    TOKEN_IN_QUERY,
    TOKEN_MALFORMED_HEADER
} token_source;

/* ---------------------------------------------------------------- extraction */

static int query_has_token(request_rec *r)
{
    const char *p = r->args;

    while (p && *p) {
        if (!strncasecmp(p, "access_token=", 13) || !strncasecmp(p, "access_token&", 13)
            || !strcasecmp(p, "access_token"))
            return 1;
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return 0;
}

/* The value of cookie name in the Cookie header(s), or NULL. */
static const char *cookie_value(request_rec *r, const char *name)
{
    const char *hdr = apr_table_get(r->headers_in, "Cookie");
    apr_size_t n = strlen(name);

    while (hdr && *hdr) {
        while (*hdr == ' ' || *hdr == ';' || *hdr == ',')
            hdr++;
        if (!strncmp(hdr, name, n) && hdr[n] == '=') {
            const char *v = hdr + n + 1, *end = v;
            while (*end && *end != ';' && *end != ',' && *end != ' ')
                end++;
            return end > v ? apr_pstrmemdup(r->pool, v, (apr_size_t)(end - v)) : NULL;
        }
        hdr = strchr(hdr, ';');
    }
    return NULL;
}

static token_source find_token(request_rec *r, const char **token)
{
    const char *auth = apr_table_get(r->headers_in, "Authorization");

    *token = NULL;
    if (query_has_token(r))
        return TOKEN_IN_QUERY;
    if (auth) {
        if (strncasecmp(auth, "Bearer ", 7))
            return TOKEN_MALFORMED_HEADER;
        auth += 7;
        while (*auth == ' ')
            auth++;
        if (!*auth)
            return TOKEN_MALFORMED_HEADER;
        *token = auth;
        return TOKEN_BEARER;
    }
    *token = cookie_value(r, BL_ACCESS_COOKIE);
    return *token ? TOKEN_COOKIE : TOKEN_NONE;
}

/* ---------------------------------------------------------------- verification */

typedef enum { AUTH_OK, AUTH_INVALID, AUTH_UNAVAILABLE } auth_result;

static const char *claim_string(json_object *claims, const char *name)
{
    json_object *v;
    if (!json_object_object_get_ex(claims, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Checks the session of a verified token in Redis. */
static auth_result check_session(request_rec *r, const char *sid, const char *sub)
{
    const char *argv[2];
    redisReply *reply;

    argv[0] = "GET";
    argv[1] = apr_pstrcat(r->pool, BL_SESSION_PREFIX, sid, NULL);
    reply = bl_redis_command(r, 2, argv, NULL);
    if (!reply)
        return AUTH_UNAVAILABLE;
    if (reply->type == REDIS_REPLY_ERROR)
        return AUTH_UNAVAILABLE;
    if (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, sub)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "session revoked or not this user's");
        return AUTH_INVALID;
    }
    return AUTH_OK;
}

/* Checks the signature and claims of token; its caller or NULL. */
static const bl_user *verify_signed_claims(request_rec *r, const bl_server_conf *sc,
                                           const char *token)
{
    bl_jwt_expect expect;
    json_object *claims = NULL, *exp;
    bl_jwt_status status;
    bl_user *u;

    memset(&expect, 0, sizeof(expect));
    expect.issuer = sc->jwt_issuer;
    expect.audience = sc->jwt_audience;
    expect.typ = "at+jwt";
    expect.now = apr_time_now();
    expect.leeway_sec = sc->jwt_leeway_sec;
    status = bl_jwt_verify(r->pool, sc->jwt_keys, token, &expect, &claims);
    if (status != BL_JWT_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "access token refused: %s",
                      bl_jwt_status_text(status));
        return NULL;
    }
    u = apr_pcalloc(r->pool, sizeof(*u));
    u->id = claim_string(claims, "sub");
    u->role = claim_string(claims, "role");
    u->session_id = claim_string(claims, "sid");
    u->token_id = claim_string(claims, "jti");
    if (json_object_object_get_ex(claims, "exp", &exp))
        u->expires = apr_time_from_sec(json_object_get_int64(exp));
    if (!u->id || !u->role || !u->session_id || !u->token_id) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "access token refused: claims missing");
        return NULL;
    }
    u->id = apr_pstrdup(r->pool, u->id);
    u->role = apr_pstrdup(r->pool, u->role);
    u->session_id = apr_pstrdup(r->pool, u->session_id);
    u->token_id = apr_pstrdup(r->pool, u->token_id);
    return u;
}

/* Verifies token (or finds it verified in this child's cache) and always
 * its session in Redis, so a revocation counts on the very next request;
 * on AUTH_OK *user is set. */
static auth_result verify_token(request_rec *r, const char *token, const bl_user **user)
{
    const bl_server_conf *sc = bl_core_server_conf(r->server);
    const bl_user *u;
    auth_result res;

    if (!sc->jwt_keys)
        return AUTH_INVALID;
    if ((u = bl_token_cache_get(r, sc, token)))
        apr_table_setn(r->notes, BL_NOTE_TOKEN_CACHED, "1");
    else if ((u = verify_signed_claims(r, sc, token)))
        bl_token_cache_put(r, sc, token, u);
    else
        return AUTH_INVALID;
    res = check_session(r, u->session_id, u->id);
    if (res == AUTH_OK)
        *user = u;
    return res;
}

static void set_user(request_rec *r, const bl_user *u, int from_cookie)
{
    bl_req_state *st = bl_core_req_state(r);

    st->auth_done = 1;
    st->user = u;
    st->from_cookie = from_cookie;
    if (!u)
        return;
    r->user = apr_pstrdup(r->pool, u->id);
    r->ap_auth_type = BL_AUTH_TYPE;
    apr_table_setn(r->notes, "BL_ROLE", u->role);
    apr_table_setn(r->notes, "BL_SESSION_ID", u->session_id);
    apr_table_setn(r->notes, "BL_TOKEN_ID", u->token_id);
}

/* ---------------------------------------------------------------- the hook */

static int refuse(request_rec *r, int status, const char *www, const char *message)
{
    if (www)
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", www);
    if (status == HTTP_SERVICE_UNAVAILABLE)
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
    bl_note_error(r, status == HTTP_UNAUTHORIZED ? BL_ERR_UNAUTHORIZED
                     : status == HTTP_FORBIDDEN ? BL_ERR_FORBIDDEN : BL_ERR_UNAVAILABLE,
                  message);
    return status;
}

/* Cross-site request forgery: a browser sends the cookie whatever page
 * made the request, so a state-changing cookie-authenticated request must
 * come from an origin we know. */
static int csrf_origin_refused(request_rec *r)
{
    const char *origin = apr_table_get(r->headers_in, "Origin");

    if (!bl_core_req_state(r)->from_cookie)
        return 0;
    if (r->method_number == M_GET || r->method_number == M_OPTIONS || r->header_only)
        return 0;
    if (!origin)
        origin = bl_url_origin(r->pool, apr_table_get(r->headers_in, "Referer"));
    return !bl_origin_allowed(r, origin);
}

int bl_check_authn(request_rec *r)
{
    const char *type = ap_auth_type(r), *token;
    const bl_user *user = NULL;
    token_source src;
    auth_result res;

    if (!type || strcasecmp(type, BL_AUTH_TYPE))
        return DECLINED;
    r->ap_auth_type = BL_AUTH_TYPE;

    src = find_token(r, &token);
    switch (src) {
    case TOKEN_IN_QUERY:
        return refuse(r, HTTP_UNAUTHORIZED, BL_WWW_AUTH_INVALID,
                      "Tokens are not accepted in the URL");
    case TOKEN_MALFORMED_HEADER:
        return refuse(r, HTTP_UNAUTHORIZED, BL_WWW_AUTH_INVALID,
                      "Malformed Authorization header");
    case TOKEN_NONE:
        return refuse(r, HTTP_UNAUTHORIZED, BL_WWW_AUTH, "Authentication required");
    default:
        break;
    }
    res = verify_token(r, token, &user);
    if (res == AUTH_UNAVAILABLE)
        return refuse(r, HTTP_SERVICE_UNAVAILABLE, NULL,
                      "The service is temporarily unavailable, try again shortly");
    if (res != AUTH_OK)
        return refuse(r, HTTP_UNAUTHORIZED, BL_WWW_AUTH_INVALID,
                      "The access token is invalid or expired");
    set_user(r, user, src == TOKEN_COOKIE);
    if (csrf_origin_refused(r))
        return refuse(r, HTTP_FORBIDDEN, NULL, "Cross-site request refused");
    return OK;
}

/* note_auth_failure hook: httpd asks the auth type to add its challenge
 * (without a taker it logs "AuthType Beautiful configured without
 * corresponding module"). */
int bl_note_auth_failure(request_rec *r, const char *type)
{
    if (!type || strcasecmp(type, BL_AUTH_TYPE))
        return DECLINED;
    if (!apr_table_get(r->err_headers_out, "WWW-Authenticate"))
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", BL_WWW_AUTH);
    return OK;
}

/* ---------------------------------------------------------------- for handlers */

/* Internal redirects and subrequests inherit the authentication of the
 * request they came from. */
static bl_req_state *auth_state(request_rec *r)
{
    bl_req_state *st = bl_core_req_state(r);
    request_rec *orig = r;

    if (st->auth_done)
        return st;
    while (orig->prev || orig->main)
        orig = orig->prev ? orig->prev : orig->main;
    if (orig != r) {
        const bl_req_state *ost = bl_core_req_state(orig);
        if (ost->auth_done)
            set_user(r, ost->user, ost->from_cookie);
    }
    return st;
}

const bl_user *bl_current_user(request_rec *r)
{
    bl_req_state *st = auth_state(r);
    const char *token;
    const bl_user *user = NULL;
    token_source src;

    if (st->auth_done)
        return st->user;
    /* optional authentication on a public route: a bad token counts as none */
    src = find_token(r, &token);
    if ((src == TOKEN_BEARER || src == TOKEN_COOKIE) && verify_token(r, token, &user) != AUTH_OK)
        user = NULL;
    set_user(r, user, src == TOKEN_COOKIE);
    return user;
}

const bl_user *bl_require_user(request_rec *r)
{
    const bl_user *user = bl_current_user(r);

    if (!user) {
        const char *token;
        apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                       find_token(r, &token) == TOKEN_NONE ? BL_WWW_AUTH : BL_WWW_AUTH_INVALID);
        bl_send_error(r, HTTP_UNAUTHORIZED, BL_ERR_UNAUTHORIZED, "Authentication required", NULL);
    }
    return user;
}

int bl_csrf_refused(request_rec *r)
{
    bl_current_user(r);
    if (!csrf_origin_refused(r))
        return 0;
    bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN, "Cross-site request refused", NULL);
    return 1;
}

/* ---------------------------------------------------------------- Require bl-role */

static authz_status role_check(request_rec *r, const char *require_args,
                               const void *parsed_require_args)
{
    const bl_user *user;
    const char *args = require_args, *role;

    if (!r->user)
        return AUTHZ_DENIED_NO_USER;
    user = bl_current_user(r);
    if (!user)
        return AUTHZ_DENIED;
    while (*(role = ap_getword_white(r->pool, &args))) {
        if (!strcmp(role, user->role))
            return AUTHZ_GRANTED;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "role %s not in Require bl-role",
                  user->role);
    bl_note_error(r, BL_ERR_FORBIDDEN, "Your role does not allow this");
    return AUTHZ_DENIED;
}

static const char *role_parse(cmd_parms *cmd, const char *line,
                              const void **parsed_require_line)
{
    const char *args = line;
    static const char *const roles[] = {"patient", "caregiver", "doctor", "admin", NULL};
    const char *role;
    int n = 0;

    while (*(role = ap_getword_white(cmd->temp_pool, &args))) {
        int i, known = 0;
        for (i = 0; roles[i]; i++)
            known = known || !strcmp(role, roles[i]);
        if (!known)
            return apr_psprintf(cmd->pool, "Require bl-role: unknown role '%s'", role);
        n++;
    }
    return n ? NULL : "Require bl-role needs at least one role";
}

static const authz_provider role_provider = { role_check, role_parse };

void bl_authz_register(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "bl-role", AUTHZ_PROVIDER_VERSION,
                              &role_provider, AP_AUTH_INTERNAL_PER_CONF);
}

/* ---------------------------------------------------------------- tokens */

const char *bl_issue_access_token(request_rec *r, const char *user_id, const char *role,
                                  const char *session_id, apr_time_t *expires)
{
    const bl_server_conf *sc = bl_core_server_conf(r->server);
    const bl_jwt_key *key = sc->jwt_keys ? bl_jwt_keyset_signing_key(sc->jwt_keys) : NULL;
    const char *jti = bl_uuid_v4(r->pool), *token;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    json_object *claims;

    if (!key || !jti || !user_id || !role || !session_id) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot issue an access token: %s",
                      !key ? "no private key configured" : "missing claim");
        return NULL;
    }
    claims = json_object_new_object();
    json_object_object_add(claims, "iss", json_object_new_string(sc->jwt_issuer));
    json_object_object_add(claims, "aud", json_object_new_string(sc->jwt_audience));
    json_object_object_add(claims, "sub", json_object_new_string(user_id));
    json_object_object_add(claims, "role", json_object_new_string(role));
    json_object_object_add(claims, "sid", json_object_new_string(session_id));
    json_object_object_add(claims, "jti", json_object_new_string(jti));
    json_object_object_add(claims, "iat", json_object_new_int64(now));
    json_object_object_add(claims, "nbf", json_object_new_int64(now));
    json_object_object_add(claims, "exp", json_object_new_int64(now + sc->access_token_ttl));
    token = bl_jwt_sign(r->pool, key, "at+jwt", claims);
    json_object_put(claims);
    if (expires)
        *expires = apr_time_from_sec(now + sc->access_token_ttl);
    return token;
}

const char *bl_jwks_json(request_rec *r)
{
    return bl_core_server_conf(r->server)->jwks_json;
}

/* ---------------------------------------------------------------- sessions */

apr_status_t bl_session_store(request_rec *r, const char *session_id,
                              const char *user_id, apr_interval_time_t ttl)
{
    apr_int64_t sec = (apr_int64_t)apr_time_sec(ttl);
    const char *argv[5];
    redisReply *reply;

    if (sec < 1)
        sec = 1;
    argv[0] = "SET";
    argv[1] = apr_pstrcat(r->pool, BL_SESSION_PREFIX, session_id, NULL);
    argv[2] = user_id;
    argv[3] = "EX";
    argv[4] = apr_psprintf(r->pool, "%" APR_INT64_T_FMT, sec);
    reply = bl_redis_command(r, 5, argv, NULL);
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        return APR_EGENERAL;
    return APR_SUCCESS;
}

apr_status_t bl_session_revoke(request_rec *r, const char *session_id)
{
    const char *argv[2];
    redisReply *reply;

    argv[0] = "DEL";
    argv[1] = apr_pstrcat(r->pool, BL_SESSION_PREFIX, session_id, NULL);
    reply = bl_redis_command(r, 2, argv, NULL);
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        return APR_EGENERAL;
    return APR_SUCCESS;
}
