/* Randomness from OpenSSL's CSPRNG. */
#include "random.h"

#include <limits.h>
#include <openssl/rand.h>

#include "base64url.h"

int bl_random_bytes(unsigned char *buf, size_t len)
{
    if (len > INT_MAX)
        return 0;
    return RAND_bytes(buf, (int)len) == 1;
}

const char *bl_random_token(apr_pool_t *p, size_t nbytes)
{
    unsigned char *buf = apr_palloc(p, nbytes ? nbytes : 1);

    if (!bl_random_bytes(buf, nbytes))
        return NULL;
    return bl_base64url_encode(p, buf, nbytes);
}
