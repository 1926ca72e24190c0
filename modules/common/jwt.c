/* JSON Web Tokens, RS256 only (RFC 7515 / 7519), OpenSSL EVP. */
#include "jwt.h"

#include <string.h>
#include <strings.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "base64url.h"
#include "hmac.h"
#include "json.h"

#define BL_JWT_MIN_RSA_BITS 2048
#define BL_JWT_MAX_RSA_BITS 8192       /* bounds the cost of one verification */
#define BL_JWT_DEFAULT_MAX_LEN 8192
#define BL_JWT_MAX_PEM_FILE (64 * 1024)
#define BL_JWT_JSON_DEPTH 8

struct bl_jwt_keyset {
    apr_pool_t *pool;
    apr_array_header_t *keys;            /* of bl_jwt_key * */
    const bl_jwt_key *signing;
};

bl_jwt_keyset *bl_jwt_keyset_create(apr_pool_t *p)
{
    bl_jwt_keyset *ks = apr_pcalloc(p, sizeof *ks);

    ks->pool = p;
    ks->keys = apr_array_make(p, 4, sizeof(bl_jwt_key *));
    return ks;
}

static apr_status_t pkey_release(void *pkey)
{
    EVP_PKEY_free(pkey);
    return APR_SUCCESS;
}

/* Refuses to prompt on the terminal for an encrypted PEM. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

static EVP_PKEY *read_pem_key(const char *pem, size_t len, int *is_private)
{
    BIO *bio;
    EVP_PKEY *pkey;

    if (len > BL_JWT_MAX_PEM_FILE)
        return NULL;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return NULL;
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    *is_private = pkey != NULL;
    if (!pkey) {
        BIO_free(bio);
        bio = BIO_new_mem_buf(pem, (int)len);
        pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL) : NULL;
    }
    BIO_free(bio);
    /* The failed attempt leaves errors on this thread's queue. */
    ERR_clear_error();
    return pkey;
}

/* Big-endian bytes of an RSA parameter ("n", "e") as base64url. */
static const char *rsa_param_b64(apr_pool_t *p, const EVP_PKEY *pkey, const char *name)
{
    BIGNUM *bn = NULL;
    unsigned char *bytes;
    const char *out = NULL;
    int n;

    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
        return NULL;
    n = BN_num_bytes(bn);
    bytes = apr_palloc(p, n > 0 ? (apr_size_t)n : 1);
    if (BN_bn2bin(bn, bytes) == n)
        out = bl_base64url_encode(p, bytes, (size_t)n);
    BN_free(bn);
    return out;
}

/* RFC 7638: SHA-256 over the required members in lexicographic order. */
static const char *jwk_thumbprint(apr_pool_t *p, const EVP_PKEY *pkey)
{
    const char *n = rsa_param_b64(p, pkey, OSSL_PKEY_PARAM_RSA_N);
    const char *e = rsa_param_b64(p, pkey, OSSL_PKEY_PARAM_RSA_E);
    unsigned char digest[BL_SHA256_LEN];
    const char *canonical;

    if (!n || !e)
        return NULL;
    canonical = apr_pstrcat(p, "{\"e\":\"", e, "\",\"kty\":\"RSA\",\"n\":\"", n, "\"}", NULL);
    if (!bl_sha256(canonical, strlen(canonical), digest))
        return NULL;
    return bl_base64url_encode(p, digest, sizeof digest);
}

const bl_jwt_key *bl_jwt_keyset_add_pem(bl_jwt_keyset *ks, const char *pem, size_t len,
                                        const char *kid, const char **err)
{
    int is_private = 0, bits;
    EVP_PKEY *pkey = read_pem_key(pem, len, &is_private);
    bl_jwt_key *key;

    if (!pkey) {
        *err = "not a PEM RSA private or public key (encrypted keys are not supported)";
        return NULL;
    }
    apr_pool_cleanup_register(ks->pool, pkey, pkey_release, apr_pool_cleanup_null);
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        *err = "key is not an RSA key (RS256 needs RSA)";
        return NULL;
    }
    bits = EVP_PKEY_get_bits(pkey);
    if (bits < BL_JWT_MIN_RSA_BITS || bits > BL_JWT_MAX_RSA_BITS) {
        *err = apr_psprintf(ks->pool, "RSA key of %d bits refused (%d to %d allowed)",
                            bits, BL_JWT_MIN_RSA_BITS, BL_JWT_MAX_RSA_BITS);
        return NULL;
    }
    if (!kid || !*kid)
        kid = jwk_thumbprint(ks->pool, pkey);
    if (!kid) {
        *err = "cannot compute the key thumbprint";
        return NULL;
    }
    if (bl_jwt_keyset_find(ks, kid)) {
        *err = apr_psprintf(ks->pool, "duplicate kid \"%s\"", kid);
        return NULL;
    }
    key = apr_pcalloc(ks->pool, sizeof *key);
    key->kid = apr_pstrdup(ks->pool, kid);
    key->pkey = pkey;
    key->can_sign = is_private;
    APR_ARRAY_PUSH(ks->keys, bl_jwt_key *) = key;
    if (is_private && !ks->signing)
        ks->signing = key;
    return key;
}

const bl_jwt_key *bl_jwt_keyset_add_pem_file(bl_jwt_keyset *ks, const char *path,
                                             const char *kid, const char **err)
{
    apr_file_t *f;
    apr_finfo_t info;
    apr_size_t got = 0;
    char *buf;

    if (apr_file_open(&f, path, APR_FOPEN_READ, APR_OS_DEFAULT, ks->pool) != APR_SUCCESS) {
        *err = apr_psprintf(ks->pool, "cannot open key file %s", path);
        return NULL;
    }
    if (apr_file_info_get(&info, APR_FINFO_SIZE, f) != APR_SUCCESS ||
        info.size <= 0 || info.size > BL_JWT_MAX_PEM_FILE) {
        apr_file_close(f);
        *err = apr_psprintf(ks->pool, "key file %s is empty or too large", path);
        return NULL;
    }
    buf = apr_palloc(ks->pool, (apr_size_t)info.size);
    if (apr_file_read_full(f, buf, (apr_size_t)info.size, &got) != APR_SUCCESS) {
        apr_file_close(f);
        *err = apr_psprintf(ks->pool, "cannot read key file %s", path);
        return NULL;
    }
    apr_file_close(f);
    return bl_jwt_keyset_add_pem(ks, buf, got, kid, err);
}

const bl_jwt_key *bl_jwt_keyset_signing_key(const bl_jwt_keyset *ks)
{
    return ks ? ks->signing : NULL;
}

const bl_jwt_key *bl_jwt_keyset_find(const bl_jwt_keyset *ks, const char *kid)
{
    int i;

    if (!ks || !kid)
        return NULL;
    for (i = 0; i < ks->keys->nelts; i++) {
        const bl_jwt_key *key = APR_ARRAY_IDX(ks->keys, i, bl_jwt_key *);
        if (strcmp(key->kid, kid) == 0)
            return key;
    }
    return NULL;
}

const char *bl_jwt_keyset_jwks(apr_pool_t *p, const bl_jwt_keyset *ks)
{
    const char *out = "{\"keys\":[";
    int i;

    for (i = 0; ks && i < ks->keys->nelts; i++) {
        const bl_jwt_key *key = APR_ARRAY_IDX(ks->keys, i, bl_jwt_key *);
        const char *n = rsa_param_b64(p, key->pkey, OSSL_PKEY_PARAM_RSA_N);
        const char *e = rsa_param_b64(p, key->pkey, OSSL_PKEY_PARAM_RSA_E);
        if (!n || !e)
            return NULL;
        out = apr_pstrcat(p, out, i ? "," : "",
                          "{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":",
                          bl_json_quote(p, key->kid), ",\"n\":\"", n, "\",\"e\":\"", e,
                          "\"}", NULL);
    }
    return apr_pstrcat(p, out, "]}", NULL);
}

/* PKCS#1 v1.5 SHA-256 signature of input; NULL on failure. */
static unsigned char *rs256_sign(apr_pool_t *p, EVP_PKEY *pkey, const char *input,
                                 size_t *sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t len = (size_t)EVP_PKEY_get_size(pkey);

    if (ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1) {
        sig = apr_palloc(p, len);
        if (EVP_DigestSign(ctx, sig, &len, (const unsigned char *)input, strlen(input)) != 1)
            sig = NULL;
    }
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    *sig_len = len;
    return sig;
}

static int rs256_verify(EVP_PKEY *pkey, const char *input, size_t input_len,
                        const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx &&
        EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
        EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input, input_len) == 1;

    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

const char *bl_jwt_sign(apr_pool_t *p, const bl_jwt_key *key, const char *typ,
                        json_object *claims)
{
    const char *header, *payload, *input;
    unsigned char *sig;
    size_t sig_len;

    if (!key || !key->can_sign || !claims || !json_object_is_type(claims, json_type_object))
        return NULL;
    header = apr_pstrcat(p, "{\"alg\":\"RS256\"",
                         typ ? ",\"typ\":" : "", typ ? bl_json_quote(p, typ) : "",
                         ",\"kid\":", bl_json_quote(p, key->kid), "}", NULL);
    payload = bl_json_to_string(p, claims);
    if (!payload)
        return NULL;
    input = apr_pstrcat(p, bl_base64url_encode(p, (const unsigned char *)header, strlen(header)),
                        ".", bl_base64url_encode(p, (const unsigned char *)payload, strlen(payload)),
                        NULL);
    sig = rs256_sign(p, key->pkey, input, &sig_len);
    if (!sig)
        return NULL;
    return apr_pstrcat(p, input, ".", bl_base64url_encode(p, sig, sig_len), NULL);
}

/* ------------------------------------------------------------ verification */

/* The three dot-separated parts of a compact JWS, not copied. */
typedef struct {
    const char *header, *payload, *signature;
    size_t header_len, payload_len, signature_len;
} jws_parts;

static int split_compact(const char *token, size_t len, jws_parts *parts)
{
    const char *dot1 = memchr(token, '.', len), *dot2;

    if (!dot1)
        return 0;
    dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return 0;
    parts->header = token;
    parts->header_len = (size_t)(dot1 - token);
    parts->payload = dot1 + 1;
    parts->payload_len = (size_t)(dot2 - dot1 - 1);
    parts->signature = dot2 + 1;
    parts->signature_len = len - (size_t)(dot2 + 1 - token);
    /* An empty signature is let through here so "alg":"none" is reported
     * as a refused algorithm rather than a shape error. */
    return parts->header_len > 0 && parts->payload_len > 0;
}

static json_object *decode_json_part(apr_pool_t *p, const char *b64, size_t len)
{
    size_t raw_len;
    unsigned char *raw = bl_base64url_decode(p, b64, len, &raw_len);
    const char *err;

    if (!raw)
        return NULL;
    return bl_json_parse_object(p, (const char *)raw, raw_len, BL_JWT_JSON_DEPTH, &err);
}

static const char *string_member(json_object *obj, const char *name, int *present)
{
    json_object *v = NULL;

    *present = json_object_object_get_ex(obj, name, &v);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* typ compares case-insensitively and may carry the "application/" prefix
 * (RFC 7515 section 4.1.9). */
static int typ_matches(const char *got, const char *want)
{
    if (!got)
        return 0;
    if (strncasecmp(got, "application/", 12) == 0)
        got += 12;
    return strcasecmp(got, want) == 0;
}

static bl_jwt_status check_header(json_object *header, const bl_jwt_expect *expect)
{
    int present;
    const char *alg = string_member(header, "alg", &present);

    if (!alg || strcmp(alg, "RS256") != 0)
        return BL_JWT_BAD_ALG;
    /* We understand no critical extensions, so any "crit" must be refused. */
    if (json_object_object_get_ex(header, "crit", NULL))
        return BL_JWT_BAD_ALG;
    if (expect->typ && !typ_matches(string_member(header, "typ", &present), expect->typ))
        return BL_JWT_BAD_TYP;
    return BL_JWT_OK;
}

static const bl_jwt_key *select_key(const bl_jwt_keyset *ks, json_object *header)
{
    int present;
    const char *kid = string_member(header, "kid", &present);

    if (present)
        return kid ? bl_jwt_keyset_find(ks, kid) : NULL;
    /* Without a kid the key is ambiguous unless there is only one. */
    if (ks->keys->nelts == 1)
        return APR_ARRAY_IDX(ks->keys, 0, bl_jwt_key *);
    return NULL;
}

static int int_claim(json_object *claims, const char *name, int64_t *out, int *present)
{
    json_object *v = NULL;

    *present = json_object_object_get_ex(claims, name, &v);
    if (!v || !json_object_is_type(v, json_type_int))
        return 0;
    *out = json_object_get_int64(v);
    return 1;
}

static int audience_contains(json_object *aud, const char *want)
{
    size_t i, n;

    if (json_object_is_type(aud, json_type_string))
        return strcmp(json_object_get_string(aud), want) == 0;
    n = json_object_array_length(aud);
    for (i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(aud, i);
        if (json_object_is_type(item, json_type_string) &&
            strcmp(json_object_get_string(item), want) == 0)
            return 1;
    }
    return 0;
}

static int audience_well_formed(json_object *aud)
{
    size_t i, n;

    if (json_object_is_type(aud, json_type_string))
        return 1;
    if (!json_object_is_type(aud, json_type_array))
        return 0;
    n = json_object_array_length(aud);
    for (i = 0; i < n; i++)
        if (!json_object_is_type(json_object_array_get_idx(aud, i), json_type_string))
            return 0;
    return n > 0;
}

static bl_jwt_status check_claims(json_object *claims, const bl_jwt_expect *expect)
{
    static const char *const required_strings[] = {"iss", "sub", "jti", "sid", NULL};
    const char *const *name;
    json_object *aud = NULL;
    int64_t exp = 0, iat = 0, nbf = 0, now;
    int64_t leeway = expect->leeway_sec > 0 ? expect->leeway_sec : 0;
    int present, has_nbf;

    for (name = required_strings; *name; name++)
        if (!string_member(claims, *name, &present))
            return BL_JWT_MISSING_CLAIM;
    if (!json_object_object_get_ex(claims, "aud", &aud) || !aud || !audience_well_formed(aud))
        return BL_JWT_MISSING_CLAIM;
    if (!int_claim(claims, "exp", &exp, &present) || !int_claim(claims, "iat", &iat, &present))
        return BL_JWT_MISSING_CLAIM;
    if (!int_claim(claims, "nbf", &nbf, &has_nbf) && has_nbf)
        return BL_JWT_MISSING_CLAIM;

    now = (int64_t)apr_time_sec(expect->now ? expect->now : apr_time_now());
    if (exp <= now - leeway)
        return BL_JWT_EXPIRED;
    if ((has_nbf && nbf > now + leeway) || iat > now + leeway)
        return BL_JWT_NOT_YET_VALID;
    if (expect->issuer && strcmp(string_member(claims, "iss", &present), expect->issuer) != 0)
        return BL_JWT_BAD_ISSUER;
    if (expect->audience && !audience_contains(aud, expect->audience))
        return BL_JWT_BAD_AUDIENCE;
    return BL_JWT_OK;
}

bl_jwt_status bl_jwt_verify(apr_pool_t *p, const bl_jwt_keyset *ks, const char *token,
                            const bl_jwt_expect *expect, json_object **claims)
{
    size_t max_len = expect->max_len ? expect->max_len : BL_JWT_DEFAULT_MAX_LEN;
    size_t len, sig_len;
    jws_parts parts;
    json_object *header, *payload;
    const bl_jwt_key *key;
    unsigned char *sig;
    bl_jwt_status status;

    if (claims)
        *claims = NULL;
    if (!token || !ks)
        return BL_JWT_MALFORMED;
    len = strnlen(token, max_len + 1);
    if (len > max_len || !split_compact(token, len, &parts))
        return BL_JWT_MALFORMED;
    header = decode_json_part(p, parts.header, parts.header_len);
    if (!header)
        return BL_JWT_MALFORMED;
    status = check_header(header, expect);
    if (status != BL_JWT_OK)
        return status;
    key = select_key(ks, header);
    if (!key)
        return BL_JWT_UNKNOWN_KID;
    sig = bl_base64url_decode(p, parts.signature, parts.signature_len, &sig_len);
    if (!sig || sig_len != (size_t)EVP_PKEY_get_size(key->pkey))
        return BL_JWT_BAD_SIGNATURE;
    if (!rs256_verify(key->pkey, token, parts.header_len + 1 + parts.payload_len, sig, sig_len))
        return BL_JWT_BAD_SIGNATURE;
    payload = decode_json_part(p, parts.payload, parts.payload_len);
    if (!payload)
        return BL_JWT_MALFORMED;
    status = check_claims(payload, expect);
    if (status == BL_JWT_OK && claims)
        *claims = payload;
    return status;
}

const char *bl_jwt_status_text(bl_jwt_status status)
{
    switch (status) {
    case BL_JWT_OK:            return "valid";
    case BL_JWT_MALFORMED:     return "malformed token";
    case BL_JWT_BAD_ALG:       return "algorithm not allowed";
    case BL_JWT_BAD_TYP:       return "wrong token type";
    case BL_JWT_UNKNOWN_KID:   return "unknown signing key";
    case BL_JWT_BAD_SIGNATURE: return "bad signature";
    case BL_JWT_EXPIRED:       return "token expired";
    case BL_JWT_NOT_YET_VALID: return "token not yet valid";
    case BL_JWT_BAD_ISSUER:    return "wrong issuer";
    case BL_JWT_BAD_AUDIENCE:  return "wrong audience";
    case BL_JWT_MISSING_CLAIM: return "required claim missing";
    }
    return "unknown status";
}
