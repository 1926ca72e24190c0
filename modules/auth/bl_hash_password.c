/* bl-hash-password: reads one password on standard input (up to a newline
 * or end of input) and prints its argon2id PHC hash with the parameters
 * mod_beautiful_auth uses (modules/common/password.h). Used by
 * scripts/create-admin so a hash never needs a running server. */
#include "password.h"

#include <apr_general.h>
#include <apr_pools.h>

#include <stdio.h>
#include <string.h>

#define PASSWORD_MAX_BYTES 512

int main(void)
{
    char buf[PASSWORD_MAX_BYTES + 2];
    apr_pool_t *pool;
    const char *hash;
    size_t len;

    if (!fgets(buf, sizeof buf, stdin)) {
        fputs("bl-hash-password: no password on standard input\n", stderr);
        return 2;
    }
    len = strcspn(buf, "\n");
    if (buf[len] != '\n' && !feof(stdin)) {
        fputs("bl-hash-password: password too long\n", stderr);
        return 2;
    }
    buf[len] = '\0';
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&pool, NULL) != APR_SUCCESS)
        return 1;
    hash = bl_password_hash(pool, buf, len);
    memset(buf, 0, sizeof buf);
    if (!hash) {
        fputs("bl-hash-password: hashing failed\n", stderr);
        return 1;
    }
    puts(hash);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
