/* Fuzz target: the first line is the Content-Type header value, the rest
 * is the body; then every part is looked at as the avatar upload does. */
#include <string.h>
#include <apr_strings.h>

#include "fuzz.h"
#include "imagesniff.h"
#include "multipart.h"

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
    }
    apr_pool_destroy(p);
    return 0;
}
