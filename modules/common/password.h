/* argon2id password hashing (libargon2). */
#ifndef BL_PASSWORD_H
#define BL_PASSWORD_H

#include <stddef.h>
#include <stdint.h>
#include <apr_pools.h>

/* OWASP minimum for argon2id: m=19 MiB, t=2, p=1. */
#define BL_ARGON2_M_COST_KIB 19456
#define BL_ARGON2_T_COST 2
#define BL_ARGON2_PARALLELISM 1
#define BL_ARGON2_SALT_LEN 16
#define BL_ARGON2_HASH_LEN 32

/* PHC-encoded "$argon2id$v=19$m=19456,t=2,p=1$salt$hash" with a fresh
 * 16-byte salt. The whole password is hashed (no truncation). NULL on failure. */
const char *bl_password_hash(apr_pool_t *p, const char *password, size_t len);
/* 1 when password matches encoded, 0 otherwise (also for a malformed encoded). */
int bl_password_verify(const char *encoded, const char *password, size_t len);
/* 1 when encoded was made with weaker parameters than the current ones. */
int bl_password_needs_rehash(const char *encoded);

#endif
