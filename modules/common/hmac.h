/* SHA-256, HMAC-SHA256 and constant-time comparison (OpenSSL EVP). */
#ifndef BL_HMAC_H
#define BL_HMAC_H

#include <stddef.h>
#include <apr_pools.h>

#define BL_SHA256_LEN 32

/* Returns 1 on success. */
int bl_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                   unsigned char out[BL_SHA256_LEN]);
int bl_sha256(const void *msg, size_t msg_len, unsigned char out[BL_SHA256_LEN]);
/* Lower-case hex of SHA-256(s): how opaque tokens are stored. */
const char *bl_sha256_hex(apr_pool_t *p, const void *msg, size_t msg_len);
const char *bl_hex(apr_pool_t *p, const unsigned char *data, size_t len);
/* 1 when equal; time depends on len only. */
int bl_ct_equal(const void *a, const void *b, size_t len);
/* Compares NUL-terminated strings without an early exit on content. */
int bl_ct_streq(const char *a, const char *b);

#endif
