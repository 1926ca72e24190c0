/* HTTP client for outside services: libcurl, one easy handle per call,
 * bounded retries with backoff (see http_client.h). */
#include "http_client.h"
#include "hmac.h"
#include "random.h"

#include <string.h>
#include <apr_date.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <curl/curl.h>

#define DEFAULT_CONNECT_TIMEOUT apr_time_from_sec(5)
#define DEFAULT_TIMEOUT         apr_time_from_sec(30)
#define DEFAULT_BACKOFF_BASE    apr_time_from_msec(200)
#define DEFAULT_BACKOFF_MAX     apr_time_from_sec(5)
#define DEFAULT_MAX_RESPONSE    ((apr_size_t)1 << 20)

/* What one attempt collects. */
typedef struct {
    apr_pool_t *pool;
    const bl_http_request *req;
    apr_size_t max_response;
    char *body;                   /* grown by doubling in pool */
    apr_size_t body_len;
    apr_size_t body_cap;
    apr_table_t *headers;
    CURL *curl;
    int too_large;
    int aborted;
    int streamed;                 /* on_data saw at least one byte */
} attempt_state;

void bl_http_global_init(void)
{
    static int done;

    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = 1;
    }
}

int bl_http_status_retryable(long status)
{
    return status == 408 || status == 425 || status == 429
        || (status >= 500 && status <= 599);
}

apr_interval_time_t bl_http_parse_retry_after(const char *value, apr_time_t now)
{
    const char *c;
    apr_time_t when;

    if (!value)
        return 0;
    while (*value == ' ' || *value == '\t')
        value++;
    if (!*value)
        return 0;
    for (c = value; apr_isdigit(*c); c++)
        ;
    if (c > value && (*c == '\0' || *c == ' ' || *c == '\t')) {
        if (c - value > 9)            /* beyond any sane wait */
            return apr_time_from_sec(999999999);
        return apr_time_from_sec(apr_atoi64(value));
    }
    when = apr_date_parse_http(value);
    if (when == APR_DATE_BAD || when <= now)
        return 0;
    return when - now;
}

apr_interval_time_t bl_http_backoff(int n, apr_interval_time_t base,
                                    apr_interval_time_t max,
                                    apr_interval_time_t retry_after)
{
    apr_interval_time_t delay = base;
    int i;

    for (i = 1; i < n && delay < max; i++)
        delay *= 2;
    if (retry_after > delay)
        delay = retry_after;
    return delay > max ? max : delay;
}

const char *bl_http_form_escape(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (apr_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '*') {
            *o++ = (char)c;
        }
        else if (c == ' ') {
            *o++ = '+';
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static int all_hex(const char *s, size_t n, int *nonzero)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
        *nonzero = *nonzero || s[i] != '0';
    }
    return 1;
}

int bl_traceparent_valid(const char *s)
{
    int trace_nonzero = 0, span_nonzero = 0, flags_any = 0;

    /* 00-<32 hex>-<16 hex>-<2 hex>, lower case (W3C Trace Context §3.2). */
    return s && strlen(s) == 55 && s[0] == '0' && s[1] == '0' && s[2] == '-'
        && all_hex(s + 3, 32, &trace_nonzero) && s[35] == '-'
        && all_hex(s + 36, 16, &span_nonzero) && s[52] == '-'
        && all_hex(s + 53, 2, &flags_any) && trace_nonzero && span_nonzero;
}

const char *bl_traceparent_from(apr_pool_t *p, const char *parent,
                                unsigned char ids[BL_TRACE_RANDOM_BYTES])
{
    const char *trace, *span;

    ids[0] |= 1;       /* never the all-zero trace or span id */
    ids[16] |= 1;
    trace = bl_traceparent_valid(parent) ? apr_pstrmemdup(p, parent + 3, 32)
                                         : bl_hex(p, ids, 16);
    span = bl_hex(p, ids + 16, 8);
    return apr_pstrcat(p, "00-", trace, "-", span, "-01", NULL);
}

const char *bl_traceparent_child(apr_pool_t *p, const char *parent)
{
    unsigned char ids[BL_TRACE_RANDOM_BYTES];

    return bl_random_bytes(ids, sizeof ids) ? bl_traceparent_from(p, parent, ids) : NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    attempt_state *st = ud;
    size_t n = size * nmemb;
    long status = 0;

    /* Only a successful answer is streamed: an error body is collected so
     * the caller can read it, and the attempt may still be retried. */
    curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &status);
    if (st->req->on_data && status >= 200 && status <= 299) {
        if (n && st->req->on_data(st->req->on_data_ctx, data, n) != 0) {
            st->aborted = 1;
            return 0;
        }
        st->streamed = st->streamed || n > 0;
        return n;
    }
    if (st->body_len + n > st->max_response) {
        st->too_large = 1;
        return 0;
    }
    if (st->body_len + n + 1 > st->body_cap) {
        apr_size_t cap = st->body_cap ? st->body_cap : 1024;
        char *grown;

        while (cap < st->body_len + n + 1)
            cap *= 2;
        grown = apr_palloc(st->pool, cap);
        if (st->body_len)
            memcpy(grown, st->body, st->body_len);
        st->body = grown;
        st->body_cap = cap;
    }
    memcpy(st->body + st->body_len, data, n);
    st->body_len += n;
    st->body[st->body_len] = '\0';
    return n;
}

/* Header lines of every answer arrive here, interim ones (100) included:
 * a status line starts the set afresh. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    attempt_state *st = ud;
    size_t n = size * nmemb, len = n;
    const char *colon, *value;

    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        apr_table_clear(st->headers);
        return n;
    }
    while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    colon = memchr(data, ':', len);
    if (!colon || colon == data)
        return n;
    value = colon + 1;
    while (value < data + len && (*value == ' ' || *value == '\t'))
        value++;
    apr_table_addn(st->headers, apr_pstrmemdup(st->pool, data, (apr_size_t)(colon - data)),
                   apr_pstrmemdup(st->pool, value, (apr_size_t)(data + len - value)));
    return n;
}

static struct curl_slist *build_headers(apr_pool_t *p, const bl_http_request *req)
{
    struct curl_slist *list = NULL;
    const char *const *h;

    /* No "Expect: 100-continue" round trip before a body. */
    list = curl_slist_append(list, "Expect:");
    if (req->content_type)
        list = curl_slist_append(list, apr_pstrcat(p, "Content-Type: ",
                                                   req->content_type, NULL));
    if (req->bearer)
        list = curl_slist_append(list, apr_pstrcat(p, "Authorization: Bearer ",
                                                   req->bearer, NULL));
    for (h = req->headers; h && *h; h++)
        list = curl_slist_append(list, *h);
    if (req->traceparent)
        list = curl_slist_append(list, apr_pstrcat(p, "traceparent: ",
                                                   req->traceparent, NULL));
    return list;
}

static void set_method(CURL *c, const bl_http_request *req)
{
    const char *method = req->method ? req->method : (req->body ? "POST" : "GET");

    if (req->body || strcmp(method, "POST") == 0) {
        /* A POST without a body is still a POST (curl would send a GET). */
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
    }
    if (strcmp(method, "GET") == 0 && !req->body)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
}

/* One attempt; fills resp's status, headers and error. */
static CURLcode attempt(apr_pool_t *p, const bl_http_request *req, attempt_state *st,
                        apr_interval_time_t timeout, bl_http_response *resp)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers;
    CURLcode rc;
    CURL *c = curl_easy_init();

    if (!c) {
        resp->error = "curl_easy_init failed";
        return CURLE_FAILED_INIT;
    }
    st->curl = c;
    headers = build_headers(p, req);
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Signals and threads do not mix: timeouts without SIGALRM. */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)apr_time_as_msec(req->connect_timeout ? req->connect_timeout
                                            : DEFAULT_CONNECT_TIMEOUT));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)apr_time_as_msec(timeout));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, st);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, st);
    if (req->basic_user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, req->basic_user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, req->basic_password ? req->basic_password : "");
    }
    set_method(c, req);

    rc = curl_easy_perform(c);
    resp->status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->error = rc == CURLE_OK ? NULL
        : apr_pstrdup(p, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return rc;
}

static bl_http_outcome finish(bl_http_response *resp, bl_http_outcome outcome,
                              attempt_state *st)
{
    resp->outcome = outcome;
    resp->headers = st->headers;
    resp->body = st->body_len ? st->body : "";
    resp->body_len = st->body_len;
    return outcome;
}

bl_http_outcome bl_http_perform(apr_pool_t *p, const bl_http_request *req,
                                bl_http_response *resp)
{
    int max_attempts = req->max_attempts > 1 ? req->max_attempts : 1;
    apr_interval_time_t base = req->backoff_base ? req->backoff_base : DEFAULT_BACKOFF_BASE;
    apr_interval_time_t max = req->backoff_max ? req->backoff_max : DEFAULT_BACKOFF_MAX;
    apr_interval_time_t per_attempt = req->timeout ? req->timeout : DEFAULT_TIMEOUT;
    bl_http_request traced = *req;
    attempt_state st = {p, &traced, req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE,
                        NULL, 0, 0, apr_table_make(p, 8), NULL, 0, 0, 0};

    memset(resp, 0, sizeof *resp);
    /* Every attempt is a span of the caller's trace, or of a new one. */
    if (!bl_traceparent_valid(req->traceparent))
        traced.traceparent = bl_traceparent_child(p, NULL);
    req = &traced;
    for (;;) {
        apr_interval_time_t timeout = per_attempt, delay;
        apr_time_t now = apr_time_now();
        CURLcode rc;

        if (req->deadline && now >= req->deadline)
            break;
        if (req->deadline && req->deadline - now < timeout)
            timeout = req->deadline - now;
        if (timeout < apr_time_from_msec(1))
            timeout = apr_time_from_msec(1);
        st.body_len = 0;
        apr_table_clear(st.headers);
        resp->attempts++;
        rc = attempt(p, req, &st, timeout, resp);
        resp->retry_after = bl_http_parse_retry_after(apr_table_get(st.headers, "Retry-After"),
                                                      apr_time_now());
        if (st.aborted)
            return finish(resp, BL_HTTP_ABORTED, &st);
        if (st.too_large) {
            resp->error = "response too large";
            return finish(resp, BL_HTTP_TOO_LARGE, &st);
        }
        /* What a streaming callback has seen cannot be taken back. */
        if (st.streamed || resp->attempts >= max_attempts
            || (rc == CURLE_OK && !bl_http_status_retryable(resp->status)))
            return finish(resp, rc == CURLE_OK ? BL_HTTP_OK : BL_HTTP_TRANSPORT, &st);
        delay = bl_http_backoff(resp->attempts, base, max, resp->retry_after);
        if (req->deadline && apr_time_now() + delay >= req->deadline)
            return finish(resp, rc == CURLE_OK ? BL_HTTP_OK : BL_HTTP_TRANSPORT, &st);
        apr_sleep(delay);
    }
    if (!resp->error)
        resp->error = "deadline passed";
    return finish(resp, resp->status ? BL_HTTP_OK : BL_HTTP_TRANSPORT, &st);
}
