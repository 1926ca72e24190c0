/* request_id.c — random bytes for request ids (version 4 UUIDs) and trace ids, cheaply.
 *
 * One RAND_bytes call costs about as much as the rest of a /health
 * request (its fixed overhead, not the bytes), so each child draws random
 * bytes a block at a time and hands out 16 per id. The block lives in the
 * child's pool, made in child_init, so no two children (and never the
 * parent) share bytes. Where the block cannot be used, bl_uuid_v4. */
#include "core_hooks.h"
#include "random.h"
#include "uuid.h"

#include <apr_thread_mutex.h>

#define BL_ID_BLOCK 4096                 /* 256 ids per RAND_bytes call */

static unsigned char *block;             /* per child */
static apr_size_t block_used = BL_ID_BLOCK;
static apr_thread_mutex_t *block_lock;

void bl_request_id_child_init(apr_pool_t *pchild)
{
    if (apr_thread_mutex_create(&block_lock, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS)
        return;
    block = apr_palloc(pchild, BL_ID_BLOCK);
    block_used = BL_ID_BLOCK;
}

int bl_child_random(unsigned char *b, apr_size_t n)
{
    int ok = 1;

    if (!block || n > BL_CHILD_RANDOM_MAX)
        return bl_random_bytes(b, n);
    apr_thread_mutex_lock(block_lock);
    if (block_used + n > BL_ID_BLOCK) {
        ok = bl_random_bytes(block, BL_ID_BLOCK);
        block_used = ok ? 0 : BL_ID_BLOCK;
    }
    if (ok) {
        memcpy(b, block + block_used, n);
        memset(block + block_used, 0, n);     /* never handed out twice */
        block_used += n;
    }
    apr_thread_mutex_unlock(block_lock);
    return ok;
}

const char *bl_request_id_new(apr_pool_t *p)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    char *s, *o;
    int i;

    if (!bl_child_random(b, sizeof b))
        return bl_uuid_v4(p);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* variant 10xx */
    o = s = apr_palloc(p, 37);
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 0x0f];
    }
    *o = '\0';
    return s;
}
