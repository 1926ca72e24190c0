/* The feed's keyset cursor (meta.next_cursor, passed back as `before`):
 * "<t|f>_<microseconds since 1970>_<post id>", the (is_pinned, created_at,
 * id) of the last post of a page, as the feed statement writes it. Pure C
 * (no request_rec) so it can be fuzzed (fuzz/fuzz_feed_cursor.c). */
#ifndef BL_COMMUNITY_FEED_CURSOR_H
#define BL_COMMUNITY_FEED_CURSOR_H

#include <apr_pools.h>

/* At most 18 digits: every value fits a bigint (PostgreSQL's timestamps
 * end far sooner than 10^18 microseconds, about the year 33,700). */
#define COMMUNITY_CURSOR_MAX_DIGITS 18

/* The cursor as the feed statement's arguments. */
typedef struct {
    const char *pinned;          /* "true" | "false" */
    const char *microseconds;    /* 1 to 18 decimal digits */
    const char *id;              /* a UUID */
} community_feed_cursor;

/* Parses text (NUL-terminated) into *out, the strings from pool p (or
 * pointing into text). Returns 0, or -1 when text is not a cursor. */
int community_feed_cursor_parse(apr_pool_t *p, const char *text, community_feed_cursor *out);

#endif
