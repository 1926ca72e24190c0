/* The feed's keyset cursor, read from the `before` query parameter. */
#include "feed_cursor.h"
#include "validate.h"

#include <apr_strings.h>

#include <ctype.h>

int community_feed_cursor_parse(apr_pool_t *p, const char *text, community_feed_cursor *out)
{
    const char *digits, *end;

    if (!text || (text[0] != 't' && text[0] != 'f') || text[1] != '_')
        return -1;
    digits = text + 2;
    for (end = digits; isdigit((unsigned char)*end); end++)
        if (end - digits == COMMUNITY_CURSOR_MAX_DIGITS)
            return -1;
    if (end == digits || *end != '_' || !bl_valid_uuid(end + 1))
        return -1;
    out->pinned = text[0] == 't' ? "true" : "false";
    out->microseconds = apr_pstrmemdup(p, digits, (apr_size_t)(end - digits));
    out->id = end + 1;
    return 0;
}
