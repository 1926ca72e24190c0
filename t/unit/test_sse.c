/* Server-Sent Events parser: the WHATWG examples, line ends of every kind
 * split at every byte, limits, and a callback that stops the stream. */
#include <string.h>

#include "sse.h"
#include "unit.h"

typedef struct {
    apr_pool_t *p;
    int n;
    const char *events[16];
    const char *data[16];
    const char *ids[16];
    int stop_after;        /* 0: never */
} seen;

static int record(void *ctx, const char *event, const char *data, apr_size_t len,
                  const char *id)
{
    seen *s = ctx;

    ck_assert_uint_eq(strlen(data), len);
    if (s->n < 16) {
        s->events[s->n] = apr_pstrdup(s->p, event);
        s->data[s->n] = apr_pstrmemdup(s->p, data, len);
        s->ids[s->n] = apr_pstrdup(s->p, id);
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? 7 : 0;
}

/* Feeds text in pieces of step bytes (0: whole). */
static int feed(seen *s, const char *text, apr_size_t step, apr_size_t max)
{
    bl_sse_parser *sp = bl_sse_parser_create(pool, max, record, s);
    apr_size_t len = strlen(text), i;
    int rv = 0;

    s->p = pool;
    if (step == 0)
        return bl_sse_feed(sp, text, len);
    for (i = 0; i < len && rv == 0; i += step)
        rv = bl_sse_feed(sp, text + i, len - i < step ? len - i : step);
    return rv;
}

START_TEST(provider_stream)
{
    const char *text =
        ": keep-alive\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"
        "data: [DONE]\n\n";
    apr_size_t step;

    for (step = 0; step <= 7; step++) {
        seen s = {0};
        ck_assert_int_eq(feed(&s, text, step, 0), 0);
        ck_assert_int_eq(s.n, 3);
        ck_assert_str_eq(s.events[0], "message");
        ck_assert_str_eq(s.data[0], "{\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}");
        ck_assert_str_eq(s.data[2], "[DONE]");
    }
}
END_TEST

START_TEST(whatwg_examples)
{
    seen s = {0};

    /* Multi-line data, event names, ids that persist, no space after ':'. */
    ck_assert_int_eq(feed(&s, "data: YHOO\ndata: +2\ndata: 10\n\n"
                              "event: add\nid: 7\ndata:73857293\n\n"
                              "data\n\n"
                              "data:\ndata\n\n"
                              "data:  two spaces\n\n", 0, 0), 0);
    ck_assert_int_eq(s.n, 5);
    ck_assert_str_eq(s.data[0], "YHOO\n+2\n10");
    ck_assert_str_eq(s.events[1], "add");
    ck_assert_str_eq(s.ids[1], "7");
    ck_assert_str_eq(s.data[1], "73857293");
    ck_assert_str_eq(s.events[2], "message");   /* the name does not carry over */
    ck_assert_str_eq(s.ids[2], "7");            /* the id does */
    ck_assert_str_eq(s.data[2], "");
    ck_assert_str_eq(s.data[3], "\n");
    ck_assert_str_eq(s.data[4], " two spaces");
}
END_TEST

START_TEST(line_ends)
{
    const char *texts[] = {"data: a\r\n\r\ndata: b\r\n\r\n", "data: a\r\rdata: b\r\r",
                           "data: a\n\ndata: b\n\n", "\xEF\xBB\xBF" "data: a\r\n\ndata: b\r\r"};
    apr_size_t t, step;

    for (t = 0; t < sizeof texts / sizeof *texts; t++) {
        for (step = 0; step <= 3; step++) {
            seen s = {0};
            ck_assert_int_eq(feed(&s, texts[t], step, 0), 0);
            ck_assert_int_eq(s.n, 2);
            ck_assert_str_eq(s.data[0], "a");
            ck_assert_str_eq(s.data[1], "b");
        }
    }
}
END_TEST

START_TEST(unended_event_and_ignored_fields)
{
    seen s = {0};

    /* Comments, retry and unknown fields are no events; an event without
     * its blank line never dispatches; an event without data neither. */
    ck_assert_int_eq(feed(&s, ":c\nretry: 10\nfoo: bar\nevent: x\n\n"
                              "data: cut off", 1, 0), 0);
    ck_assert_int_eq(s.n, 0);
}
END_TEST

START_TEST(limits)
{
    seen s = {0};
    char big[200];

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(feed(&s, big, 0, 100), BL_SSE_TOO_LARGE);
    memset(&s, 0, sizeof s);
    /* Many short data lines add up past the limit too. */
    ck_assert_int_eq(feed(&s, "data: 0123456789\ndata: 0123456789\ndata: 0123456789\n"
                              "data: 0123456789\n\n", 5, 40), BL_SSE_TOO_LARGE);
    ck_assert_int_eq(s.n, 0);
    /* Exactly at the limit is fine. */
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(feed(&s, "data: 012345678\n\n", 0, 16), 0);
    ck_assert_int_eq(s.n, 1);
}
END_TEST

START_TEST(callback_stops)
{
    seen s = {0};
    bl_sse_parser *sp;

    s.stop_after = 1;
    s.p = pool;
    sp = bl_sse_parser_create(pool, 0, record, &s);
    ck_assert_int_eq(bl_sse_feed(sp, "data: 1\n\ndata: 2\n\n", 18), 7);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(bl_sse_feed(sp, "data: 3\n\n", 9), 7);   /* sticky */
    ck_assert_int_eq(s.n, 1);
    ck_assert_uint_eq(bl_sse_events(sp), 1);
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("sse");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, provider_stream);
    tcase_add_test(tc, whatwg_examples);
    tcase_add_test(tc, line_ends);
    tcase_add_test(tc, unended_event_and_ignored_fields);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, callback_stops);
    suite_add_tcase(s, tc);
    return s;
}
