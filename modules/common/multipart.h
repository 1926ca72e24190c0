/* multipart/form-data parser (RFC 7578) over a complete, size-limited body. */
#ifndef BL_MULTIPART_H
#define BL_MULTIPART_H

#include <stddef.h>
#include <apr_pools.h>

typedef struct {
    const char *name;           /* form field name */
    const char *filename;       /* as sent; never to be used as a path; may be NULL */
    const char *content_type;   /* as sent; never trusted; may be NULL */
    const char *data;           /* points into the body */
    size_t len;
} bl_multipart_part;

/* Extracts the boundary from a Content-Type header value
 * ("multipart/form-data; boundary=..."), NULL if absent or invalid
 * (RFC 2046: 1..70 chars). */
const char *bl_multipart_boundary(apr_pool_t *p, const char *content_type);

/* Parses body into at most max_parts parts (array of bl_multipart_part).
 * Returns the number of parts, or -1 with *err set on malformed input. */
int bl_multipart_parse(apr_pool_t *p, const char *body, size_t len,
                       const char *boundary, int max_parts,
                       bl_multipart_part **parts, const char **err);

#endif
