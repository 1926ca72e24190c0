/* multipart/form-data parser (RFC 7578): incremental, so a large upload is
 * never held whole in memory, with a convenience call for a complete,
 * size-limited body. */
#ifndef BL_MULTIPART_H
#define BL_MULTIPART_H

#include <stddef.h>
#include <apr_pools.h>

typedef struct {
    const char *name;           /* form field name */
    const char *filename;       /* as sent; never to be used as a path; may be NULL */
    const char *content_type;   /* as sent; never trusted; may be NULL */
    const char *data;           /* bl_multipart_parse: points into the body */
    size_t len;
} bl_multipart_part;

/* Extracts the boundary from a Content-Type header value
 * ("multipart/form-data; boundary=..."), NULL if absent or invalid
 * (RFC 2046: 1..70 chars). */
const char *bl_multipart_boundary(apr_pool_t *p, const char *content_type);

/* ------------------------------------------------------------ streaming */

/* What the incremental parser reports, in stream order. Each returns 0 to
 * go on, non-zero to stop the parse (bl_multipart_feed then returns
 * BL_MULTIPART_ABORTED; the reason is the caller's to keep). */
typedef struct {
    /* A part's headers were read (data and len are unset). */
    int (*part_begin)(void *ctx, const bl_multipart_part *part);
    /* Some of the current part's body; offset is where these bytes are in
     * everything fed so far. Called zero or more times per part. */
    int (*part_data)(void *ctx, const char *data, size_t len, apr_off_t offset);
    /* The current part's body is complete. */
    int (*part_end)(void *ctx);
} bl_multipart_callbacks;

typedef struct bl_multipart_stream bl_multipart_stream;

#define BL_MULTIPART_ERROR   (-1)
#define BL_MULTIPART_ABORTED (-2)

/* A parser for boundary allowing at most max_parts parts. Its memory (a
 * fixed buffer of a few KiB, and each part's header strings) comes from p.
 * NULL when the boundary is missing or longer than RFC 2046 allows. */
bl_multipart_stream *bl_multipart_stream_create(apr_pool_t *p, const char *boundary,
                                                int max_parts,
                                                const bl_multipart_callbacks *cb,
                                                void *ctx);

/* Parses the next len bytes of the body, calling back as parts go by.
 * Returns 0, BL_MULTIPART_ERROR on malformed input (see
 * bl_multipart_stream_error) or BL_MULTIPART_ABORTED when a callback
 * stopped it; after a failure every further call fails the same way. */
int bl_multipart_feed(bl_multipart_stream *s, const char *data, size_t len);

/* The body has ended: 0 when the close delimiter was seen, else
 * BL_MULTIPART_ERROR (truncated body). */
int bl_multipart_finish(bl_multipart_stream *s);

/* Why the parse failed, or NULL. */
const char *bl_multipart_stream_error(const bl_multipart_stream *s);

/* ------------------------------------------------------------ whole body */

/* Parses body into at most max_parts parts (array of bl_multipart_part).
 * Returns the number of parts, or -1 with *err set on malformed input. */
int bl_multipart_parse(apr_pool_t *p, const char *body, size_t len,
                       const char *boundary, int max_parts,
                       bl_multipart_part **parts, const char **err);

#endif
