/* token_cache.c — the child's cache of access tokens already verified.
 *
 * Checking an RS256 signature and parsing the claims is most of what an
 * authenticated request costs core, and a client sends the same token for
 * its whole life (15 minutes). So each child remembers, for a bounded
 * number of tokens, the claims it verified: keyed by the SHA-256 of the
 * whole token (signature included, so a payload spliced onto a known
 * signature is a different key), per server configuration (keys, issuer
 * and audience differ between virtual hosts), and never used at or past
 * the token's exp.
 *
 * Only the signature and claim checks are skipped: authn.c still asks
 * Redis for the session on every request, so a logout or revocation is
 * refused on the very next request. A direct-mapped table: a new token
 * takes its slot's place, so memory stays fixed at BL_TOKEN_CACHE_SLOTS
 * entries whatever clients send. */
#include "core_hooks.h"

#include <http_log.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <openssl/evp.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_TOKEN_CACHE_SLOTS 1024          /* a power of two */
#define BL_CLAIM_MAX 64                    /* uuids are 36, roles 9 */
#define BL_DIGEST_LEN 32

typedef struct {
    unsigned char digest[BL_DIGEST_LEN];
    const void *scope;                     /* the bl_server_conf verified for */
    apr_time_t expires;                    /* the token's exp; 0: empty slot */
    char id[BL_CLAIM_MAX];
    char role[BL_CLAIM_MAX];
    char session_id[BL_CLAIM_MAX];
    char token_id[BL_CLAIM_MAX];
} cached_token;

static cached_token *slots;                /* per child; NULL: no cache */
static apr_thread_mutex_t *slots_lock;
static EVP_MD *sha256;                     /* fetched once, not per digest */

static apr_status_t free_sha256(void *unused)
{
    EVP_MD_free(sha256);
    sha256 = NULL;
    return APR_SUCCESS;
}

void bl_token_cache_child_init(apr_pool_t *pchild, server_rec *s)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256)
        apr_pool_cleanup_register(pchild, NULL, free_sha256, apr_pool_cleanup_null);
    if (!sha256
        || apr_thread_mutex_create(&slots_lock, APR_THREAD_MUTEX_DEFAULT, pchild)
           != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "no access-token cache: every token is verified in full");
        slots = NULL;
        return;
    }
    slots = apr_pcalloc(pchild, sizeof(*slots) * BL_TOKEN_CACHE_SLOTS);
}

static int token_digest(const char *token, unsigned char *digest)
{
    unsigned int len = 0;

    return EVP_Digest(token, strlen(token), digest, &len, sha256, NULL) == 1
           && len == BL_DIGEST_LEN;
}

static cached_token *slot_of(const unsigned char *digest)
{
    apr_uint32_t h = (apr_uint32_t)digest[0] | (apr_uint32_t)digest[1] << 8
                     | (apr_uint32_t)digest[2] << 16 | (apr_uint32_t)digest[3] << 24;

    return &slots[h & (BL_TOKEN_CACHE_SLOTS - 1)];
}

const bl_user *bl_token_cache_get(request_rec *r, const void *scope, const char *token)
{
    unsigned char digest[BL_DIGEST_LEN];
    cached_token *slot;
    bl_user *u = NULL;
    apr_time_t now = apr_time_now();

    if (!slots || !token_digest(token, digest))
        return NULL;
    slot = slot_of(digest);
    apr_thread_mutex_lock(slots_lock);
    if (slot->expires > now && slot->scope == scope
        && !memcmp(slot->digest, digest, BL_DIGEST_LEN)) {
        u = apr_pcalloc(r->pool, sizeof(*u));
        u->id = apr_pstrdup(r->pool, slot->id);
        u->role = apr_pstrdup(r->pool, slot->role);
        u->session_id = apr_pstrdup(r->pool, slot->session_id);
        u->token_id = apr_pstrdup(r->pool, slot->token_id);
        u->expires = slot->expires;
    }
    apr_thread_mutex_unlock(slots_lock);
    return u;
}

static int fits(const char *claim)
{
    return strlen(claim) < BL_CLAIM_MAX;
}

void bl_token_cache_put(request_rec *r, const void *scope, const char *token,
                        const bl_user *u)
{
    unsigned char digest[BL_DIGEST_LEN];
    cached_token *slot;

    /* an exp already past (accepted within the leeway) is never cached */
    if (!slots || u->expires <= apr_time_now() || !fits(u->id) || !fits(u->role)
        || !fits(u->session_id) || !fits(u->token_id) || !token_digest(token, digest))
        return;
    slot = slot_of(digest);
    apr_thread_mutex_lock(slots_lock);
    memcpy(slot->digest, digest, BL_DIGEST_LEN);
    slot->scope = scope;
    slot->expires = u->expires;
    apr_cpystrn(slot->id, u->id, BL_CLAIM_MAX);
    apr_cpystrn(slot->role, u->role, BL_CLAIM_MAX);
    apr_cpystrn(slot->session_id, u->session_id, BL_CLAIM_MAX);
    apr_cpystrn(slot->token_id, u->token_id, BL_CLAIM_MAX);
    apr_thread_mutex_unlock(slots_lock);
}
