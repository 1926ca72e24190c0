#ifndef BL_RANDOM_H
#define BL_RANDOM_H

#include <stddef.h>
#include <apr_pools.h>

/* Fills buf from OpenSSL's CSPRNG; returns 1 on success. */
int bl_random_bytes(unsigned char *buf, size_t len);
/* nbytes random bytes as base64url text (opaque tokens); NULL on RNG failure. */
const char *bl_random_token(apr_pool_t *p, size_t nbytes);

#endif
