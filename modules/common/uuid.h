#ifndef BL_UUID_H
#define BL_UUID_H

#include <apr_pools.h>

/* Random (version 4) UUID, lower-case canonical text, from OpenSSL's CSPRNG.
 * NULL only if the RNG fails. */
const char *bl_uuid_v4(apr_pool_t *p);

#endif
