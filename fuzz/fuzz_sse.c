/* Fuzz target: the input is a provider's event stream, fed in pieces whose
 * sizes come from its first byte, so line ends split across pieces are
 * covered; each event's data must be as long as it says. */
#include <string.h>
#include <apr_strings.h>

#include "fuzz.h"
#include "sse.h"

static int check_event(void *ctx, const char *event, const char *data,
                       apr_size_t len, const char *id)
{
    if (!event || !data || !id || strlen(data) != len || len > 4096)
        __builtin_trap();
    (*(unsigned long *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = bl_fuzz_input_pool();
    unsigned long events = 0;
    bl_sse_parser *sp = bl_sse_parser_create(p, 4096, check_event, &events);
    size_t step = size ? (size_t)(data[0] % 16) + 1 : 1;
    size_t i;
    int rv = 0;

    for (i = 0; i < size && rv == 0; i += step) {
        size_t n = size - i < step ? size - i : step;
        /* An exact copy, so reads past the piece are caught. */
        char *piece = apr_pmemdup(p, data + i, n);
        rv = bl_sse_feed(sp, piece, n);
    }
    if (rv != 0 && rv != BL_SSE_TOO_LARGE)
        __builtin_trap();
    if (events != bl_sse_events(sp))
        __builtin_trap();
    apr_pool_destroy(p);
    return 0;
}
