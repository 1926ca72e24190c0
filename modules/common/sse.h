/* Incremental parser of a Server-Sent Events stream (the WHATWG HTML
 * "event stream" format), fed in pieces as they arrive from the network:
 * lines end in LF, CR or CRLF (also split across pieces); "data", "event"
 * and "id" fields; comments (":...") and unknown fields ignored; a blank
 * line dispatches the event. Used to read a model provider's streamed
 * answer. Pure: no I/O, memory from the pool given at creation. */
#ifndef BL_SSE_H
#define BL_SSE_H

#include <apr_pools.h>

/* Called once per dispatched event. event is the "event" field ("message"
 * when none), data the "data" lines joined by "\n" (NUL-terminated, len
 * bytes), id the last "id" seen ("" when none). The strings are valid only
 * during the call. Return 0 to go on; anything else stops the parser and
 * is returned by bl_sse_feed. */
typedef int bl_sse_event_fn(void *ctx, const char *event, const char *data,
                            apr_size_t len, const char *id);

typedef struct bl_sse_parser bl_sse_parser;

/* Returned by bl_sse_feed when a line or an event's data exceeds the
 * parser's limit; the parser is then spent. */
#define BL_SSE_TOO_LARGE (-1)

/* max_bytes bounds one line and one event's data (0: 64 KiB). */
bl_sse_parser *bl_sse_parser_create(apr_pool_t *p, apr_size_t max_bytes,
                                    bl_sse_event_fn *fn, void *ctx);

/* Parses len bytes, dispatching every event they complete. Returns 0,
 * BL_SSE_TOO_LARGE, or the callback's non-zero result; after a non-zero
 * result further calls return it again and parse nothing. */
int bl_sse_feed(bl_sse_parser *sp, const char *buf, apr_size_t len);

/* Events dispatched so far. */
unsigned long bl_sse_events(const bl_sse_parser *sp);

#endif
