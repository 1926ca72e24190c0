/* JSON Web Tokens signed with RS256 (RFC 7515/7519), OpenSSL EVP only.
 * The algorithm is pinned: anything but RS256 ("none", HS256, ES256 ...)
 * is refused before a key is looked at. */
#ifndef BL_JWT_H
#define BL_JWT_H

#include <stddef.h>
#include <apr_pools.h>
#include <apr_time.h>
#include <json-c/json.h>
#include <openssl/evp.h>

typedef struct {
    const char *kid;
    EVP_PKEY *pkey;      /* RSA >= 2048 bits; freed by a cleanup on the key set's pool */
    int can_sign;        /* private key present */
} bl_jwt_key;

typedef struct bl_jwt_keyset bl_jwt_keyset;

bl_jwt_keyset *bl_jwt_keyset_create(apr_pool_t *p);
/* Loads a PEM file (private or public RSA key). kid may be NULL: then the
 * kid is the RFC 7638 JWK thumbprint (base64url SHA-256). The first private
 * key added is the signing key. Returns NULL and sets *err on failure. */
const bl_jwt_key *bl_jwt_keyset_add_pem_file(bl_jwt_keyset *ks, const char *path,
                                             const char *kid, const char **err);
const bl_jwt_key *bl_jwt_keyset_add_pem(bl_jwt_keyset *ks, const char *pem, size_t len,
                                        const char *kid, const char **err);
const bl_jwt_key *bl_jwt_keyset_signing_key(const bl_jwt_keyset *ks);
const bl_jwt_key *bl_jwt_keyset_find(const bl_jwt_keyset *ks, const char *kid);
/* {"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":...,"n":...,"e":...}]} */
const char *bl_jwt_keyset_jwks(apr_pool_t *p, const bl_jwt_keyset *ks);

/* Signs claims with header {"alg":"RS256","typ":typ,"kid":key->kid}.
 * NULL on failure. */
const char *bl_jwt_sign(apr_pool_t *p, const bl_jwt_key *key, const char *typ,
                        json_object *claims);

typedef struct {
    const char *issuer;      /* required "iss" */
    const char *audience;    /* required in "aud" (string or array) */
    const char *typ;         /* required header "typ", e.g. "at+jwt"; NULL: not checked */
    apr_time_t now;          /* 0: the current time */
    int leeway_sec;          /* clock skew allowed on exp/nbf/iat */
    size_t max_len;          /* refuse longer tokens before parsing; 0: 8192 */
} bl_jwt_expect;

typedef enum {
    BL_JWT_OK = 0,
    BL_JWT_MALFORMED,        /* not three base64url parts of JSON objects, or too long */
    BL_JWT_BAD_ALG,          /* alg other than RS256, or crit present */
    BL_JWT_BAD_TYP,
    BL_JWT_UNKNOWN_KID,
    BL_JWT_BAD_SIGNATURE,
    BL_JWT_EXPIRED,
    BL_JWT_NOT_YET_VALID,
    BL_JWT_BAD_ISSUER,
    BL_JWT_BAD_AUDIENCE,
    BL_JWT_MISSING_CLAIM     /* exp, iat, sub, jti or sid absent or mistyped */
} bl_jwt_status;

/* Verifies token; on BL_JWT_OK *claims (pool-owned) is the payload.
 * Required claims: iss, aud, sub, exp, iat, jti, sid (exp, iat and nbf
 * integers). Checks run in this order and the first failure is returned:
 * length cap, three parts, header JSON, alg == "RS256" and no "crit", typ,
 * key by kid (without kid only when the set holds one key), signature,
 * then exp, nbf/iat (with leeway), iss (exact), aud (string or array). */
bl_jwt_status bl_jwt_verify(apr_pool_t *p, const bl_jwt_keyset *ks, const char *token,
                            const bl_jwt_expect *expect, json_object **claims);
const char *bl_jwt_status_text(bl_jwt_status status);

#endif
