/* Version 4 UUIDs (RFC 9562 section 5.4). */
#include "uuid.h"

#include <apr_strings.h>

#include "random.h"

const char *bl_uuid_v4(apr_pool_t *p)
{
    unsigned char b[16];

    if (!bl_random_bytes(b, sizeof b))
        return NULL;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* variant 10xx */
    return apr_psprintf(p,
        "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}
