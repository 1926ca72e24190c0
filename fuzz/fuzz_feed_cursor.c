/* Fuzz target: the `before` cursor of the community feed through the
 * parser of mod_beautiful_community (modules/community/feed_cursor.c), as
 * the feed route reads it from the query. An accepted cursor must be the
 * exact text its three parts make again, each part of the shape the feed
 * statement casts (boolean, bigint, uuid): anything else aborts. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "feed_cursor.h"
#include "fuzz.h"
#include "validate.h"

static void check_accepted(apr_pool_t *p, const char *text, const community_feed_cursor *c)
{
    size_t digits = strlen(c->microseconds), i;

    if (strcmp(c->pinned, "true") != 0 && strcmp(c->pinned, "false") != 0)
        abort();
    if (digits == 0 || digits > COMMUNITY_CURSOR_MAX_DIGITS)
        abort();
    for (i = 0; i < digits; i++)
        if (c->microseconds[i] < '0' || c->microseconds[i] > '9')
            abort();
    if (!bl_valid_uuid(c->id))
        abort();
    if (strcmp(text, apr_pstrcat(p, c->pinned[0] == 't' ? "t_" : "f_", c->microseconds, "_",
                                 c->id, NULL)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = bl_fuzz_input_pool();
    /* A query value is a C string: it ends at the first NUL. */
    const char *text = apr_pstrmemdup(p, (const char *)data, size);
    community_feed_cursor c;

    if (community_feed_cursor_parse(p, text, &c) == 0)
        check_accepted(p, text, &c);
    apr_pool_destroy(p);
    return 0;
}
