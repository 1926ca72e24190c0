/* trace.c — W3C Trace Context: the trace a request belongs to.
 *
 * A valid incoming traceparent puts the request in the caller's trace;
 * otherwise the request starts one. Either way the request gets a span id
 * of its own, and the traceparent it hands to outgoing calls (through
 * bl_traceparent) names that span as their parent. The trace id goes to
 * the environment as BL_TRACE_ID for the access and error log formats. */
#include "core_hooks.h"
#include "http_client.h"

#include <apr_strings.h>

#define BL_ENV_TRACEPARENT "BL_TRACEPARENT"

/* Internal redirects and subrequests stay in the span of their request. */
static const char *inherited(request_rec *r)
{
    request_rec *orig = r->prev ? r->prev : r->main;

    return orig ? apr_table_get(orig->subprocess_env, BL_ENV_TRACEPARENT) : NULL;
}

int bl_trace_post_read_request(request_rec *r)
{
    const char *traceparent = inherited(r);

    if (!traceparent) {
        unsigned char ids[BL_TRACE_RANDOM_BYTES];

        if (bl_child_random(ids, sizeof ids))
            traceparent = bl_traceparent_from(r->pool,
                                              apr_table_get(r->headers_in, "traceparent"), ids);
    }
    if (!traceparent)
        return DECLINED;        /* no randomness: no trace rather than a fixed one */
    apr_table_setn(r->subprocess_env, BL_ENV_TRACEPARENT, traceparent);
    apr_table_setn(r->subprocess_env, BL_ENV_TRACE_ID,
                   apr_pstrmemdup(r->pool, traceparent + 3, 32));
    return DECLINED;
}

const char *bl_traceparent(request_rec *r)
{
    return apr_table_get(r->subprocess_env, BL_ENV_TRACEPARENT);
}
