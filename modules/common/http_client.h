/* HTTP client for outside services (Twilio, FCM, Google, Razorpay, the AI
 * provider): libcurl with connect and total timeouts, bounded retries with
 * exponential backoff on transport errors, 429 and 5xx (honouring
 * Retry-After), no retry on any other 4xx, and a cap on the response size.
 *
 * Memory comes from the pool passed in; the curl handle lives only for the
 * call. Nothing here logs: callers decide what is safe to record (never a
 * body, a token or a phone number). */
#ifndef BL_HTTP_CLIENT_H
#define BL_HTTP_CLIENT_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

/* Called with each piece of the response body as it arrives (streaming,
 * e.g. Server-Sent Events from a model). Return 0 to go on, non-zero to
 * abort the transfer (the client went away): the call then ends with
 * BL_HTTP_ABORTED. With a callback the body is not also collected. */
typedef int bl_http_data_fn(void *ctx, const char *data, apr_size_t len);

typedef struct {
    const char *method;            /* "GET", "POST", "PATCH", "DELETE"... */
    const char *url;
    /* Extra request headers as "Name: value", NULL-terminated (or NULL). */
    const char *const *headers;
    const char *body;              /* NULL: no body */
    apr_size_t body_len;
    const char *content_type;      /* Content-Type of body, or NULL */
    const char *basic_user;        /* HTTP Basic when set ... */
    const char *basic_password;    /* ... with this password */
    const char *bearer;            /* Authorization: Bearer <bearer> when set */
    apr_interval_time_t connect_timeout;  /* 0: 5 s */
    apr_interval_time_t timeout;          /* per attempt; 0: 30 s */
    int max_attempts;              /* 0 or 1: one attempt, no retry */
    apr_interval_time_t backoff_base;     /* 0: 200 ms; doubled per retry */
    apr_interval_time_t backoff_max;      /* 0: 5 s; also caps Retry-After */
    apr_time_t deadline;           /* 0: none; no attempt starts after it,
                                    * and no wait runs past it */
    apr_size_t max_response;       /* 0: 1 MiB; a longer body fails the call */
    bl_http_data_fn *on_data;      /* optional streaming callback */
    void *on_data_ctx;
    /* W3C trace context sent as the traceparent header: the caller's
     * (core's bl_traceparent(r) for a request) or, when NULL, a new trace. */
    const char *traceparent;
} bl_http_request;

typedef enum {
    BL_HTTP_OK = 0,        /* an HTTP answer arrived (any status) */
    BL_HTTP_TRANSPORT,     /* no answer: connect, TLS, timeout ... */
    BL_HTTP_TOO_LARGE,     /* the answer exceeded max_response */
    BL_HTTP_ABORTED        /* on_data asked to stop */
} bl_http_outcome;

typedef struct {
    bl_http_outcome outcome;
    long status;                   /* HTTP status of the last attempt, 0 if none */
    const char *body;              /* NUL-terminated; "" when none */
    apr_size_t body_len;
    apr_table_t *headers;          /* headers of the last answer (names as sent) */
    int attempts;                  /* attempts made */
    const char *error;             /* short reason for a failure (curl's
                                    * error text, no URL query), else NULL */
    apr_interval_time_t retry_after;  /* last Retry-After, 0 when absent */
} bl_http_response;

/* Performs the request, retrying as described above. Returns the outcome
 * (also in resp->outcome). A 4xx or 5xx that was not retried, or was
 * still failing after the last attempt, is BL_HTTP_OK with its status:
 * the caller reads status and body. */
bl_http_outcome bl_http_perform(apr_pool_t *p, const bl_http_request *req,
                                bl_http_response *resp);

/* True for statuses worth retrying: 408, 425, 429 and 5xx. */
int bl_http_status_retryable(long status);

/* Retry-After as a delay: delta-seconds or an HTTP-date relative to now.
 * Returns 0 when absent or unparsable. */
apr_interval_time_t bl_http_parse_retry_after(const char *value, apr_time_t now);

/* The delay before retry number n (1-based): base * 2^(n-1), capped at
 * max; a positive retry_after wins when larger, still capped at max. */
apr_interval_time_t bl_http_backoff(int n, apr_interval_time_t base,
                                    apr_interval_time_t max,
                                    apr_interval_time_t retry_after);

/* A new W3C traceparent ("00-<trace id>-<span id>-01"); with parent
 * (a valid traceparent) set, a child span of the same trace. NULL on RNG
 * failure. */
const char *bl_traceparent_child(apr_pool_t *p, const char *parent);

/* The same from random bytes the caller drew (a trace id and a span id):
 * for callers that keep a block of random bytes at hand. */
#define BL_TRACE_RANDOM_BYTES 24
const char *bl_traceparent_from(apr_pool_t *p, const char *parent,
                                unsigned char ids[BL_TRACE_RANDOM_BYTES]);

/* True when s is a well-formed version-00 traceparent (non-zero ids). */
int bl_traceparent_valid(const char *s);

/* application/x-www-form-urlencoded escaping of one key or value. */
const char *bl_http_form_escape(apr_pool_t *p, const char *s);

/* Call once per process before any other thread runs (a module's
 * post_config or child_init hook); safe to call more than once. */
void bl_http_global_init(void);

#endif
