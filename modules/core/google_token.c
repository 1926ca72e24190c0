/* google_token.c — Google access tokens for service accounts, shared by
 * every module of this process (FCM for push, Calendar for video
 * sessions): the RFC 7523 JWT-bearer grant at the account's token_uri,
 * the answer cached until shortly before it expires.
 *
 * The cache lives with the credentials (loaded at start-up into pconf) and
 * is per process: each child asks for its own token at most once an hour
 * per scope. A lock per credentials set serialises the exchange, so a
 * burst of pushes makes one token request, not one each. Tokens change
 * hourly and cross requests, so they are malloc'd and freed on refresh. */
#include "core_private.h"
#include "google_oauth.h"
#include "http_client.h"

#include <http_log.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include <stdlib.h>
#include <string.h>

APLOG_USE_MODULE(beautiful_core);

/* Asked for again this long before the token expires. */
#define TOKEN_MARGIN apr_time_from_sec(60)

typedef struct {
    char *token;
    apr_time_t expires;
} cached_token;

struct bl_google_credentials {
    bl_google_account *account;
    apr_pool_t *pool;              /* pconf: hash entries for new scopes */
    apr_thread_mutex_t *lock;
    apr_hash_t *tokens;            /* scope -> cached_token */
};

bl_google_credentials *bl_google_credentials_load(apr_pool_t *pconf, const char *path,
                                                  const char **err)
{
    bl_google_credentials *c = apr_pcalloc(pconf, sizeof(*c));

    if (!(c->account = bl_google_account_load(pconf, path, err)))
        return NULL;
    if (apr_thread_mutex_create(&c->lock, APR_THREAD_MUTEX_DEFAULT, pconf) != APR_SUCCESS) {
        *err = "cannot create a lock";
        return NULL;
    }
    c->pool = pconf;
    c->tokens = apr_hash_make(pconf);
    return c;
}

const char *bl_google_project_id(const bl_google_credentials *c)
{
    return c->account->project_id;
}

const char *bl_google_client_email(const bl_google_credentials *c)
{
    return c->account->client_email;
}

/* Exchanges a fresh assertion; caller holds c->lock. */
static const char *exchange(apr_pool_t *p, server_rec *s, bl_google_credentials *c,
                            const char *scope, cached_token *slot, const char **err)
{
    bl_http_request req;
    bl_http_response resp;
    apr_time_t now = apr_time_now();
    const char *assertion = bl_google_assertion(p, c->account, scope, now), *token;
    apr_interval_time_t ttl;

    if (!assertion) {
        *err = "cannot sign the assertion";
        return NULL;
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = c->account->token_uri;
    req.body = bl_google_token_request(p, assertion);
    req.body_len = strlen(req.body);
    req.content_type = "application/x-www-form-urlencoded";
    req.timeout = apr_time_from_sec(10);
    req.max_attempts = 2;
    req.max_response = 64 * 1024;
    if (bl_http_perform(p, &req, &resp) != BL_HTTP_OK) {
        *err = apr_pstrcat(p, "token endpoint: ", resp.error ? resp.error : "no answer", NULL);
        return NULL;
    }
    if (resp.status != 200) {
        *err = apr_psprintf(p, "token endpoint answered %ld", resp.status);
        return NULL;
    }
    if (bl_google_token_parse(p, resp.body, resp.body_len, &token, &ttl, err) != 0)
        return NULL;
    free(slot->token);
    slot->token = strdup(token);
    if (!slot->token) {
        *err = "out of memory";
        return NULL;
    }
    slot->expires = now + ttl;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "Google access token for %s renewed (%ds)",
                 c->account->client_email, (int)apr_time_sec(ttl));
    return token;
}

const char *bl_google_access_token(apr_pool_t *p, server_rec *s, bl_google_credentials *c,
                                   const char *scope, const char **err)
{
    cached_token *slot;
    const char *token = NULL;

    *err = NULL;
    apr_thread_mutex_lock(c->lock);
    slot = apr_hash_get(c->tokens, scope, APR_HASH_KEY_STRING);
    if (!slot) {
        slot = apr_pcalloc(c->pool, sizeof(*slot));
        apr_hash_set(c->tokens, apr_pstrdup(c->pool, scope), APR_HASH_KEY_STRING, slot);
    }
    if (slot->token && apr_time_now() + TOKEN_MARGIN < slot->expires)
        token = apr_pstrdup(p, slot->token);
    else
        token = exchange(p, s, c, scope, slot, err);
    apr_thread_mutex_unlock(c->lock);
    return token;
}

void bl_google_token_invalidate(bl_google_credentials *c, const char *scope)
{
    cached_token *slot;

    apr_thread_mutex_lock(c->lock);
    slot = apr_hash_get(c->tokens, scope, APR_HASH_KEY_STRING);
    if (slot)
        slot->expires = 0;
    apr_thread_mutex_unlock(c->lock);
}
