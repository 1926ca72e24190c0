/* metrics.c — Prometheus metrics summed across httpd children.
 *
 * One anonymous shared-memory segment, created by the parent before it
 * forks, holds fixed tables of counters. Children inherit the mapping, so
 * nothing has to be re-attached. Slots are claimed lock-free (CAS on a
 * state word) and counted with 64-bit atomics; a request never waits on a
 * lock. Labels are bounded on purpose: the route is a template, the method
 * comes from a short list, and a full table counts into route="overflow".
 */
#include "core_private.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>

APLOG_USE_MODULE(beautiful_core);

#define BL_METRICS_ROUTE_MAX   96    /* longer templates are cut */
#define BL_METRICS_METHOD_MAX  8
#define BL_METRICS_STATUS_MAX  4
#define BL_METRICS_REQ_SLOTS   2048  /* (route, method, status) */
#define BL_METRICS_HIST_SLOTS  512   /* (route, method) */
#define BL_METRICS_SERIES_SLOTS 256  /* domain modules' counters and gauges */
#define BL_METRICS_MAX_PROBE   128   /* bounded lookup cost */
#define BL_METRICS_OVERFLOW    "overflow"
#define BL_METRICS_USERDATA    "bl_metrics_shm"
#define BL_METRICS_MAGIC       UINT64_C(0x626c6d6574726963) /* "blmetric" */

/* Upper bounds of the duration buckets, in microseconds; +Inf follows. */
static const uint64_t bucket_usec[] = {
    5000, 10000, 25000, 50000, 100000, 250000,
    500000, 1000000, 2500000, 5000000, 10000000
};
static const char *const bucket_label[] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5", "1", "2.5", "5", "10"
};
#define BL_NBUCKETS (sizeof(bucket_usec) / sizeof(bucket_usec[0]))

/* A claimed slot whose claimer stalls too long is declared dead and skipped
 * for good, so nobody waits on it twice and no key can get two live rows. */
enum { SLOT_FREE = 0, SLOT_CLAIMED = 1, SLOT_READY = 2, SLOT_DEAD = 3 };

/* Zero-padded so that keys compare with one memcmp. */
typedef struct {
    char route[BL_METRICS_ROUTE_MAX];
    char method[BL_METRICS_METHOD_MAX];
    char status[BL_METRICS_STATUS_MAX];
} bl_metric_key;

/* Common head of both slot kinds, so one probe routine serves both. */
typedef struct {
    uint32_t state;
    bl_metric_key key;
} bl_slot_head;

typedef struct {
    bl_slot_head head;
    uint64_t count;
} bl_req_slot;

typedef struct {
    bl_slot_head head;
    uint64_t bucket[BL_NBUCKETS + 1];   /* per bucket, not cumulative; last is +Inf */
    uint64_t sum_usec;
} bl_hist_slot;

/* Request slots 0..4 are the overflow rows for status classes 1xx..5xx;
 * histogram slot 0 is the overflow row. */
#define BL_REQ_OVERFLOW_SLOTS  5
#define BL_HIST_OVERFLOW_SLOTS 1

/* Notification delivery (mod_beautiful_notify): fixed label sets. */
static const char *const notify_channels[] = {"email", "sms", "push", "in_app"};
static const char *const notify_outcomes[] = {"sent", "retry", "failed", "skipped"};
static const char *const notify_queue_statuses[] = {"pending", "sending", "failed"};
#define BL_N_CHANNELS 4
#define BL_N_OUTCOMES 4
#define BL_N_QUEUE_STATUSES 3

typedef struct {
    uint64_t magic;
    uint64_t size;
    uint64_t db_errors;
    uint64_t redis_errors;
    uint64_t notifications[BL_N_CHANNELS][BL_N_OUTCOMES];
    int64_t notification_queue[BL_N_CHANNELS][BL_N_QUEUE_STATUSES];
    bl_req_slot req[BL_METRICS_REQ_SLOTS];
    bl_hist_slot hist[BL_METRICS_HIST_SLOTS];
    uint64_t series_dropped;
    bl_req_slot series[BL_METRICS_SERIES_SLOTS];   /* key: series text, type */
} bl_metrics_table;

/* Set in the parent each generation; inherited by the children. */
static bl_metrics_table *metrics;

/* ---------------------------------------------------------------- keys */

static void key_init(bl_metric_key *key, const char *route, const char *method,
                     const char *status)
{
    memset(key, 0, sizeof(*key));
    apr_cpystrn(key->route, route, sizeof(key->route));
    apr_cpystrn(key->method, method, sizeof(key->method));
    apr_cpystrn(key->status, status, sizeof(key->status));
}

static uint32_t fnv1a(uint32_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h;
}

/* Hashes the text only, not the zero padding: most of the per-request cost. */
static uint32_t key_hash(const bl_metric_key *key)
{
    uint32_t h = fnv1a(2166136261u, key->route);
    h = fnv1a(h ^ 0xff, key->method);
    return fnv1a(h ^ 0xff, key->status);
}

/* Waits for a slot another process is filling in; that takes a few
 * instructions, so a long wait means the claimer died or stalled: the slot
 * is then declared dead. Returns the state it ended in. */
static uint32_t slot_wait_ready(bl_slot_head *slot)
{
    uint32_t st = SLOT_CLAIMED;
    for (int i = 0; i < 1000 && st == SLOT_CLAIMED; i++) {
        sched_yield();
        st = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
    }
    if (st == SLOT_CLAIMED
        && __atomic_compare_exchange_n(&slot->state, &st, SLOT_DEAD, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        st = SLOT_DEAD;
    return st;
}

/* Claims a free slot for key. Returns 1 when it is ours and ready, 0 when
 * someone else took it first or declared it dead meanwhile. */
static int slot_claim(bl_slot_head *slot, const bl_metric_key *key)
{
    uint32_t expected = SLOT_FREE;
    if (!__atomic_compare_exchange_n(&slot->state, &expected, SLOT_CLAIMED, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return 0;
    slot->key = *key;
    expected = SLOT_CLAIMED;
    return __atomic_compare_exchange_n(&slot->state, &expected, SLOT_READY, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Finds the slot for key in a table of n slots of size stride (linear
 * probing from the key's hash over slots first..n-1), claiming a free one
 * on the way. Returns NULL when the probe runs out (overflow). */
static bl_slot_head *slot_find(void *base, size_t stride, size_t first, size_t n,
                               const bl_metric_key *key)
{
    size_t usable = n - first;
    size_t start = key_hash(key) % usable;
    for (size_t i = 0; i < BL_METRICS_MAX_PROBE && i < usable; i++) {
        size_t idx = first + (start + i) % usable;
        bl_slot_head *slot = (bl_slot_head *)((char *)base + idx * stride);
        uint32_t st = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
        if (st == SLOT_FREE && slot_claim(slot, key))
            return slot;
        st = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
        if (st == SLOT_CLAIMED)
            st = slot_wait_ready(slot);
        if (st == SLOT_READY && memcmp(&slot->key, key, sizeof(*key)) == 0)
            return slot;
    }
    return NULL;
}

/* ---------------------------------------------------------------- recording */

/* A short list keeps the label bounded whatever method a client invents. */
static const char *method_label(const char *method)
{
    static const char *const known[] = {
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", NULL
    };
    for (int i = 0; method && known[i]; i++)
        if (strcmp(method, known[i]) == 0)
            return known[i];
    return "OTHER";
}

static int status_class(int status)
{
    int c = status / 100 - 1;
    return c < 0 ? 0 : c > 4 ? 4 : c;
}

/* The route template (never the raw URI: that would be unbounded). */
static const char *route_label(const request_rec *r, const request_rec *last)
{
    const char *route = apr_table_get(last->notes, BL_NOTE_ROUTE);
    if (!route)
        route = apr_table_get(r->notes, BL_NOTE_ROUTE);
    return route ? route : "unmatched";
}

static void count_request(const bl_metric_key *key, int status)
{
    bl_req_slot *slot = (bl_req_slot *)slot_find(metrics->req, sizeof(bl_req_slot),
                                                 BL_REQ_OVERFLOW_SLOTS,
                                                 BL_METRICS_REQ_SLOTS, key);
    if (!slot)
        slot = &metrics->req[status_class(status)];
    __atomic_add_fetch(&slot->count, 1, __ATOMIC_RELAXED);
}

static void observe_duration(const bl_metric_key *key, apr_interval_time_t usec)
{
    bl_hist_slot *slot = (bl_hist_slot *)slot_find(metrics->hist, sizeof(bl_hist_slot),
                                                   BL_HIST_OVERFLOW_SLOTS,
                                                   BL_METRICS_HIST_SLOTS, key);
    size_t b = 0;
    if (!slot)
        slot = &metrics->hist[0];
    if (usec < 0)
        usec = 0;
    while (b < BL_NBUCKETS && (uint64_t)usec > bucket_usec[b])
        b++;
    __atomic_add_fetch(&slot->bucket[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&slot->sum_usec, (uint64_t)usec, __ATOMIC_RELAXED);
}

int bl_metrics_log_transaction(request_rec *r)
{
    const request_rec *last = r;
    bl_metric_key key;
    char status[BL_METRICS_STATUS_MAX];
    const char *route, *method;

    if (!metrics)
        return DECLINED;
    while (last->next)              /* the final status after internal redirects */
        last = last->next;
    route = route_label(r, last);
    method = method_label(r->method);
    apr_snprintf(status, sizeof(status), "%03d", last->status % 1000);

    key_init(&key, route, method, status);
    count_request(&key, last->status);
    key_init(&key, route, method, "");
    observe_duration(&key, apr_time_now() - r->request_time);
    return DECLINED;
}

void bl_metrics_count_db_error(void)
{
    if (metrics)
        __atomic_add_fetch(&metrics->db_errors, 1, __ATOMIC_RELAXED);
}

void bl_metrics_count_redis_error(void)
{
    if (metrics)
        __atomic_add_fetch(&metrics->redis_errors, 1, __ATOMIC_RELAXED);
}

static int label_index(const char *value, const char *const *labels, int n)
{
    int i;

    for (i = 0; value && i < n; i++)
        if (strcmp(value, labels[i]) == 0)
            return i;
    return -1;
}

void bl_metrics_count_notification(const char *channel, const char *outcome)
{
    int c = label_index(channel, notify_channels, BL_N_CHANNELS);
    int o = label_index(outcome, notify_outcomes, BL_N_OUTCOMES);

    if (metrics && c >= 0 && o >= 0)
        __atomic_add_fetch(&metrics->notifications[c][o], 1, __ATOMIC_RELAXED);
}

void bl_metrics_set_notification_queue(const char *channel, const char *status, long n)
{
    int c = label_index(channel, notify_channels, BL_N_CHANNELS);
    int st = label_index(status, notify_queue_statuses, BL_N_QUEUE_STATUSES);

    if (metrics && c >= 0 && st >= 0)
        __atomic_store_n(&metrics->notification_queue[c][st], (int64_t)n, __ATOMIC_RELAXED);
}

/* A series of a domain module: the key's route holds its text
 * ("name{label=\"value\"}"), its method the type ("c" counter, "g" gauge). */
static bl_req_slot *series_slot(const char *series, const char *type)
{
    bl_metric_key key;
    bl_req_slot *slot;

    if (!metrics || strlen(series) >= BL_METRICS_ROUTE_MAX)
        return NULL;
    key_init(&key, series, type, "");
    slot = (bl_req_slot *)slot_find(metrics->series, sizeof(bl_req_slot), 0,
                                    BL_METRICS_SERIES_SLOTS, &key);
    if (!slot)
        __atomic_add_fetch(&metrics->series_dropped, 1, __ATOMIC_RELAXED);
    return slot;
}

void bl_metrics_count(const char *series, apr_uint64_t n)
{
    bl_req_slot *slot = series_slot(series, "c");

    if (slot)
        __atomic_add_fetch(&slot->count, (uint64_t)n, __ATOMIC_RELAXED);
}

void bl_metrics_gauge(const char *series, apr_int64_t value)
{
    bl_req_slot *slot = series_slot(series, "g");

    if (slot)
        __atomic_store_n(&slot->count, (uint64_t)value, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- set-up */

static void table_init(bl_metrics_table *t)
{
    static const char *const classes[BL_REQ_OVERFLOW_SLOTS] = {
        "1xx", "2xx", "3xx", "4xx", "5xx"
    };
    memset(t, 0, sizeof(*t));
    t->magic = BL_METRICS_MAGIC;
    t->size = sizeof(*t);
    for (int i = 0; i < BL_REQ_OVERFLOW_SLOTS; i++) {
        key_init(&t->req[i].head.key, BL_METRICS_OVERFLOW, "OTHER", classes[i]);
        t->req[i].head.state = SLOT_READY;
    }
    key_init(&t->hist[0].head.key, BL_METRICS_OVERFLOW, "OTHER", "");
    t->hist[0].head.state = SLOT_READY;
}

/* The segment lives in the process pool, so counters survive graceful
 * restarts (Prometheus copes with resets, but dashboards read better
 * without them); a layout change after an upgrade gets a fresh one. */
apr_status_t bl_metrics_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_pool_t *ppool = s->process->pool;
    apr_shm_t *shm = NULL;
    bl_metrics_table *t;
    apr_status_t rv;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return APR_SUCCESS;         /* the first, dry run of the config */

    apr_pool_userdata_get((void **)&shm, BL_METRICS_USERDATA, ppool);
    if (shm) {
        t = apr_shm_baseaddr_get(shm);
        if (apr_shm_size_get(shm) >= sizeof(*t) && t->magic == BL_METRICS_MAGIC
            && t->size == sizeof(*t)) {
            metrics = t;
            return APR_SUCCESS;
        }
    }
    rv = apr_shm_create(&shm, sizeof(bl_metrics_table), NULL, ppool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "metrics: cannot create the shared memory segment (%" APR_SIZE_T_FMT
                     " bytes)", sizeof(bl_metrics_table));
        return rv;
    }
    t = apr_shm_baseaddr_get(shm);
    table_init(t);
    apr_pool_userdata_set(shm, BL_METRICS_USERDATA, apr_pool_cleanup_null, ppool);
    metrics = t;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                 "metrics: %d request slots, %d histogram slots, %" APR_SIZE_T_FMT
                 " bytes of shared memory", BL_METRICS_REQ_SLOTS, BL_METRICS_HIST_SLOTS,
                 sizeof(bl_metrics_table));
    return APR_SUCCESS;
}

/* An anonymous segment is inherited through fork(): nothing to attach.
 * Kept so that a named segment or a lock could be re-opened here. */
void bl_metrics_child_init(apr_pool_t *pchild, server_rec *s)
{
    if (!metrics)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "metrics: no shared memory in this child; nothing will be counted");
}

/* ---------------------------------------------------------------- exposition */

/* Label values escaped as the text format requires: \\, \" and \n. */
static const char *label_escape(apr_pool_t *p, const char *s)
{
    size_t extra = 0;
    char *out, *o;
    for (const char *c = s; *c; c++)
        extra += (*c == '\\' || *c == '"' || *c == '\n');
    if (!extra)
        return s;
    o = out = apr_palloc(p, strlen(s) + extra + 1);
    for (const char *c = s; *c; c++) {
        if (*c == '\\' || *c == '"') {
            *o++ = '\\';
            *o++ = *c;
        } else if (*c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

static int slot_ready(const bl_slot_head *slot)
{
    return __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) == SLOT_READY;
}

static void write_requests(request_rec *r)
{
    ap_rputs("# HELP http_requests_total HTTP requests by route template, method and status.\n"
             "# TYPE http_requests_total counter\n", r);
    for (size_t i = 0; i < BL_METRICS_REQ_SLOTS; i++) {
        const bl_req_slot *slot = &metrics->req[i];
        uint64_t n;
        if (!slot_ready(&slot->head))
            continue;
        n = __atomic_load_n(&slot->count, __ATOMIC_RELAXED);
        if (n == 0 && i < BL_REQ_OVERFLOW_SLOTS)
            continue;               /* an unused overflow row is noise */
        ap_rprintf(r, "http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %"
                   APR_UINT64_T_FMT "\n", label_escape(r->pool, slot->head.key.route),
                   label_escape(r->pool, slot->head.key.method),
                   label_escape(r->pool, slot->head.key.status), n);
    }
}

static void write_histogram_slot(request_rec *r, const bl_hist_slot *slot)
{
    const char *labels = apr_psprintf(r->pool, "route=\"%s\",method=\"%s\"",
                                      label_escape(r->pool, slot->head.key.route),
                                      label_escape(r->pool, slot->head.key.method));
    uint64_t cumulative = 0;
    uint64_t sum = __atomic_load_n(&slot->sum_usec, __ATOMIC_RELAXED);
    for (size_t b = 0; b <= BL_NBUCKETS; b++) {
        cumulative += __atomic_load_n(&slot->bucket[b], __ATOMIC_RELAXED);
        ap_rprintf(r, "http_request_duration_seconds_bucket{%s,le=\"%s\"} %"
                   APR_UINT64_T_FMT "\n", labels,
                   b < BL_NBUCKETS ? bucket_label[b] : "+Inf", cumulative);
    }
    /* _count is the +Inf bucket, so the two always agree in one scrape. */
    ap_rprintf(r, "http_request_duration_seconds_sum{%s} %" APR_UINT64_T_FMT ".%06"
               APR_UINT64_T_FMT "\n", labels, sum / 1000000, sum % 1000000);
    ap_rprintf(r, "http_request_duration_seconds_count{%s} %" APR_UINT64_T_FMT "\n",
               labels, cumulative);
}

static void write_durations(request_rec *r)
{
    ap_rputs("# HELP http_request_duration_seconds Time from the request line to the "
             "log phase, by route template and method.\n"
             "# TYPE http_request_duration_seconds histogram\n", r);
    for (size_t i = 0; i < BL_METRICS_HIST_SLOTS; i++) {
        const bl_hist_slot *slot = &metrics->hist[i];
        int used = 0;
        if (!slot_ready(&slot->head))
            continue;
        for (size_t b = 0; b <= BL_NBUCKETS && !used; b++)
            used = __atomic_load_n(&slot->bucket[b], __ATOMIC_RELAXED) != 0;
        if (used)
            write_histogram_slot(r, slot);
    }
}

static void write_dependency_errors(request_rec *r)
{
    ap_rprintf(r, "# HELP beautiful_db_errors_total Database errors seen by requests.\n"
               "# TYPE beautiful_db_errors_total counter\n"
               "beautiful_db_errors_total %" APR_UINT64_T_FMT "\n",
               __atomic_load_n(&metrics->db_errors, __ATOMIC_RELAXED));
    ap_rprintf(r, "# HELP beautiful_redis_errors_total Redis errors seen by requests.\n"
               "# TYPE beautiful_redis_errors_total counter\n"
               "beautiful_redis_errors_total %" APR_UINT64_T_FMT "\n",
               __atomic_load_n(&metrics->redis_errors, __ATOMIC_RELAXED));
}

static int series_cmp(const void *a, const void *b)
{
    const bl_req_slot *x = *(bl_req_slot *const *)a, *y = *(bl_req_slot *const *)b;

    return strcmp(x->head.key.route, y->head.key.route);
}

/* The metric name of a series: the text before its labels. */
static apr_size_t series_name_len(const char *series)
{
    const char *brace = strchr(series, '{');

    return brace ? (apr_size_t)(brace - series) : strlen(series);
}

/* Sorted, so each name gets its one TYPE line before its series. */
static void write_series(request_rec *r)
{
    bl_req_slot **ready = apr_palloc(r->pool, sizeof(*ready) * BL_METRICS_SERIES_SLOTS);
    const char *prev = NULL;
    apr_size_t prev_len = 0;
    int n = 0, i;

    for (i = 0; i < BL_METRICS_SERIES_SLOTS; i++)
        if (__atomic_load_n(&metrics->series[i].head.state, __ATOMIC_ACQUIRE) == SLOT_READY)
            ready[n++] = &metrics->series[i];
    qsort(ready, (size_t)n, sizeof(*ready), series_cmp);
    for (i = 0; i < n; i++) {
        const char *text = ready[i]->head.key.route;
        apr_size_t len = series_name_len(text);
        int gauge = ready[i]->head.key.method[0] == 'g';
        uint64_t v = __atomic_load_n(&ready[i]->count, __ATOMIC_RELAXED);

        /* promtool wants a HELP line for every name. */
        if (!prev || len != prev_len || strncmp(text, prev, len) != 0)
            ap_rprintf(r, "# HELP %.*s A series of a domain module (docs/operations.md).\n"
                       "# TYPE %.*s %s\n", (int)len, text, (int)len, text,
                       gauge ? "gauge" : "counter");
        prev = text;
        prev_len = len;
        if (gauge)
            ap_rprintf(r, "%s %" APR_INT64_T_FMT "\n", text, (apr_int64_t)v);
        else
            ap_rprintf(r, "%s %" APR_UINT64_T_FMT "\n", text, (apr_uint64_t)v);
    }
    ap_rprintf(r, "# HELP beautiful_metrics_dropped_total Updates of series past the table's "
               "size, not shown.\n# TYPE beautiful_metrics_dropped_total counter\n"
               "beautiful_metrics_dropped_total %" APR_UINT64_T_FMT "\n",
               __atomic_load_n(&metrics->series_dropped, __ATOMIC_RELAXED));
}

static void write_notifications(request_rec *r)
{
    int c, i;

    ap_rputs("# HELP beautiful_notifications_total Notification delivery attempts by "
             "channel and outcome.\n# TYPE beautiful_notifications_total counter\n", r);
    for (c = 0; c < BL_N_CHANNELS; c++)
        for (i = 0; i < BL_N_OUTCOMES; i++)
            ap_rprintf(r, "beautiful_notifications_total{channel=\"%s\",outcome=\"%s\"} %"
                       APR_UINT64_T_FMT "\n", notify_channels[c], notify_outcomes[i],
                       __atomic_load_n(&metrics->notifications[c][i], __ATOMIC_RELAXED));
    ap_rputs("# HELP beautiful_notifications_queued Notifications waiting, being sent or "
             "failed, by channel (counted by the delivery worker every few seconds).\n"
             "# TYPE beautiful_notifications_queued gauge\n", r);
    for (c = 0; c < BL_N_CHANNELS; c++)
        for (i = 0; i < BL_N_QUEUE_STATUSES; i++)
            ap_rprintf(r, "beautiful_notifications_queued{channel=\"%s\",status=\"%s\"} %"
                       APR_INT64_T_FMT "\n", notify_channels[c], notify_queue_statuses[i],
                       (apr_int64_t)__atomic_load_n(&metrics->notification_queue[c][i],
                                                    __ATOMIC_RELAXED));
}

int bl_metrics_handler(request_rec *r)
{
    bl_set_route(r, "/metrics");
    if (r->method_number != M_GET) {
        apr_table_setn(r->err_headers_out, "Allow", "GET, HEAD");
        return bl_send_error(r, HTTP_METHOD_NOT_ALLOWED, BL_ERR_METHOD_NOT_ALLOWED,
                             "Only GET and HEAD are allowed here", NULL);
    }
    if (!metrics)
        return bl_send_unavailable(r, "metrics");

    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (r->header_only)
        return OK;
    write_requests(r);
    write_durations(r);
    write_dependency_errors(r);
    write_notifications(r);
    write_series(r);
    return OK;
}
