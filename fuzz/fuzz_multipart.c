/* Fuzz target: the first line is the Content-Type header value, the rest
 * is the body; then every part is looked at as the avatar upload does.
 * The body is also fed to the incremental parser in small pieces (their
 * size taken from the input), which must agree with the whole-body parse. */
#include <string.h>
#include <apr_strings.h>

#include "fuzz.h"
#include "imagesniff.h"
#include "multipart.h"

typedef struct {
    int parts;
    size_t bytes;
} stream_totals;

static int count_part(void *ctx, const bl_multipart_part *part)
{
    (void)part;
    ((stream_totals *)ctx)->parts++;
    return 0;
}

static int count_data(void *ctx, const char *data, size_t len, apr_off_t offset)
{
    (void)data;
    (void)offset;
    ((stream_totals *)ctx)->bytes += len;
    return 0;
}

/* Feeds body in pieces of step bytes; the parts and bytes seen, or -1. */
static int parse_in_pieces(apr_pool_t *p, const char *body, size_t len, const char *boundary,
                           size_t step, stream_totals *t)
{
    static const bl_multipart_callbacks cb = {count_part, count_data, NULL};
    bl_multipart_stream *s = bl_multipart_stream_create(p, boundary, 8, &cb, t);
    size_t off;

    if (!s)
        return -1;
    for (off = 0; off < len; off += step)
        if (bl_multipart_feed(s, body + off, len - off < step ? len - off : step) != 0)
            return -1;
    return bl_multipart_finish(s) == 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = bl_fuzz_input_pool();
    const char *text = (const char *)data;
    const char *newline = memchr(text, '\n', size);
    size_t header_len = newline ? (size_t)(newline - text) : size;
    const char *content_type = apr_pstrmemdup(p, text, header_len);
    const char *body = newline ? newline + 1 : text + size;
    size_t body_len = size - (size_t)(body - text);
    /* A copy of exactly body_len bytes, so reads past the end are caught. */
    char *exact = apr_palloc(p, body_len ? body_len : 1);
    const char *boundary = bl_multipart_boundary(p, content_type);
    bl_multipart_part *parts = NULL;
    const char *err = NULL;
    int n, i;

    memcpy(exact, body, body_len);
    if (boundary) {
        n = bl_multipart_parse(p, exact, body_len, boundary, 8, &parts, &err);
        if (n < 0 && !err)
            __builtin_trap();
        for (i = 0; i < n; i++) {
            if (!parts[i].name || parts[i].data < exact ||
                parts[i].data + parts[i].len > exact + body_len)
                __builtin_trap();
            bl_image_extension(bl_sniff_image_type((const unsigned char *)parts[i].data,
                                                   parts[i].len));
        }
        {
            stream_totals t = {0, 0};
            size_t step = 1 + (size ? data[size - 1] % 97 : 0), whole = 0;
            int rc = parse_in_pieces(p, exact, body_len, boundary, step, &t);

            for (i = 0; i < n; i++)
                whole += parts[i].len;
            if ((rc == 0) != (n >= 0) || (n >= 0 && (t.parts != n || t.bytes != whole)))
                __builtin_trap();
        }
    }
    apr_pool_destroy(p);
    return 0;
}
