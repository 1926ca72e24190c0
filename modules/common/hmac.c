/* SHA-256, HMAC-SHA256 (EVP_MAC) and constant-time comparison. */
#include "hmac.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

int bl_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                   unsigned char out[BL_SHA256_LEN])
{
    static const unsigned char empty_key[1] = {0};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2];
    size_t out_len = 0;
    int ok = 0;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    /* EVP_MAC_init treats a NULL key as "keep the previous one": pass a
     * real pointer for the empty key. */
    if (ctx && EVP_MAC_init(ctx, key_len ? key : empty_key, key_len, params) == 1 &&
        EVP_MAC_update(ctx, msg, msg_len) == 1 &&
        EVP_MAC_final(ctx, out, &out_len, BL_SHA256_LEN) == 1 &&
        out_len == BL_SHA256_LEN)
        ok = 1;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok;
}

int bl_sha256(const void *msg, size_t msg_len, unsigned char out[BL_SHA256_LEN])
{
    unsigned int out_len = 0;
    return EVP_Digest(msg, msg_len, out, &out_len, EVP_sha256(), NULL) == 1 &&
           out_len == BL_SHA256_LEN;
}

const char *bl_hex(apr_pool_t *p, const unsigned char *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = apr_palloc(p, len * 2 + 1);
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}

const char *bl_sha256_hex(apr_pool_t *p, const void *msg, size_t msg_len)
{
    unsigned char digest[BL_SHA256_LEN];

    if (!bl_sha256(msg, msg_len, digest))
        return NULL;
    return bl_hex(p, digest, sizeof digest);
}

int bl_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int bl_ct_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    size_t i;

    /* Walk the longer string whole so the time does not reveal where the
     * first difference lies; only the lengths leak. */
    for (i = 0; i < (la > lb ? la : lb); i++) {
        unsigned char ca = i < la ? (unsigned char)a[i] : 0;
        unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
        diff |= ca ^ cb;
    }
    return diff == 0;
}
