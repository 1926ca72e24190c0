/* Google service accounts and the OAuth 2.0 JWT-bearer grant (RFC 7523):
 * the parts without I/O. The service-account JSON file gives client_email,
 * private_key (PEM), private_key_id, token_uri and project_id; the
 * assertion is an RS256 JWT signed with that key (common/jwt.c), sent to
 * token_uri as grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer.
 * Core's bl_google_access_token does the exchange and caches the answer. */
#ifndef BL_GOOGLE_OAUTH_H
#define BL_GOOGLE_OAUTH_H

#include <apr_pools.h>
#include <apr_time.h>

#include "jwt.h"

#define BL_GOOGLE_GRANT_TYPE "urn:ietf:params:oauth:grant-type:jwt-bearer"
/* Lifetime asked for in the assertion; Google allows at most one hour. */
#define BL_GOOGLE_ASSERTION_TTL 3600

typedef struct {
    const char *client_email;
    const char *private_key_id;   /* the header's kid; may be NULL */
    const char *token_uri;
    const char *project_id;       /* may be NULL (not every API needs it) */
    const bl_jwt_key *key;        /* the parsed private key (pool-owned) */
} bl_google_account;

/* Parses a service-account JSON document. Returns NULL and sets *err
 * ("private_key is not an RSA private key", "token_uri must be https:// or
 * http://") on failure. Key material is never put in *err. */
bl_google_account *bl_google_account_parse(apr_pool_t *p, const char *json, size_t len,
                                           const char **err);

/* Reads and parses the file at path (at most 64 KiB). */
bl_google_account *bl_google_account_load(apr_pool_t *p, const char *path, const char **err);

/* The signed assertion for scope (space-separated scopes): iss =
 * client_email, scope, aud = token_uri, iat = now, exp = now + 1 h.
 * NULL on failure. */
const char *bl_google_assertion(apr_pool_t *p, const bl_google_account *sa,
                                const char *scope, apr_time_t now);

/* The form body of the token request for assertion. */
const char *bl_google_token_request(apr_pool_t *p, const char *assertion);

/* Reads the token endpoint's answer {"access_token", "expires_in",
 * "token_type": "Bearer"}. Returns 0 with *token and *expires_in set, or
 * -1 with *err. */
int bl_google_token_parse(apr_pool_t *p, const char *body, size_t len, const char **token,
                          apr_interval_time_t *expires_in, const char **err);

#endif
