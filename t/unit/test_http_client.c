/* The HTTP client against a loopback server that answers from a script
 * and records what it received: retries on 5xx with Retry-After, no retry
 * on 4xx, auth headers and bodies as sent, the response cap, streaming and
 * its abort, transport errors; plus the pure helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <apr_date.h>
#include <apr_thread_proc.h>

#include "http_client.h"
#include "unit.h"

#define MAX_SCRIPT 4

/* The loopback server: answers connection i with script[i], stores the
 * request it read in seen[i]. */
typedef struct {
    int listen_fd;
    int port;
    int count;
    const char *script[MAX_SCRIPT];
    char seen[MAX_SCRIPT][8192];
    apr_thread_t *thread;
} fake_server;

static fake_server server;

static size_t read_request(int fd, char *buf, size_t cap)
{
    size_t len = 0, want = 0;
    char *end;

    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (!want && (end = strstr(buf, "\r\n\r\n"))) {
            const char *cl = strstr(buf, "Content-Length:");
            want = (size_t)(end + 4 - buf) + (cl && cl < end ? (size_t)atol(cl + 15) : 0);
        }
        if (want && len >= want)
            break;
    }
    buf[len] = '\0';
    return len;
}

static void *APR_THREAD_FUNC serve(apr_thread_t *t, void *data)
{
    int i;

    for (i = 0; i < server.count; i++) {
        int fd = accept(server.listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        read_request(fd, server.seen[i], sizeof server.seen[i]);
        if (write(fd, server.script[i], strlen(server.script[i])) < 0)
            perror("write");
        close(fd);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Starts the server with count scripted answers (NULL-terminated list). */
static void server_start(const char *first, ...)
{
    struct sockaddr_in addr = {0};
    socklen_t alen = sizeof addr;
    va_list ap;
    const char *s;
    int one = 1;

    memset(&server, 0, sizeof server);
    va_start(ap, first);
    for (s = first; s && server.count < MAX_SCRIPT; s = va_arg(ap, const char *))
        server.script[server.count++] = s;
    va_end(ap);
    server.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(server.listen_fd, 0);
    setsockopt(server.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(server.listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(listen(server.listen_fd, 8), 0);
    getsockname(server.listen_fd, (struct sockaddr *)&addr, &alen);
    server.port = ntohs(addr.sin_port);
    ck_assert_int_eq(apr_thread_create(&server.thread, NULL, serve, NULL, pool), APR_SUCCESS);
}

static void server_stop(void)
{
    apr_status_t rv;

    apr_thread_join(&rv, server.thread);
    close(server.listen_fd);
}

static const char *server_url(const char *path)
{
    return apr_psprintf(pool, "http://127.0.0.1:%d%s", server.port, path);
}

START_TEST(retries_5xx_then_succeeds)
{
    bl_http_request req = {0};
    bl_http_response resp;

    server_start("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n"
                 "Content-Length: 4\r\nConnection: close\r\n\r\nbusy",
                 "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                 "X-Thing: one\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"sid\":\"1\"}",
                 NULL);
    req.method = "POST";
    req.url = server_url("/2010-04-01/Accounts/AC1/Messages.json");
    req.body = "To=%2B1&Body=hi";
    req.body_len = strlen(req.body);
    req.content_type = "application/x-www-form-urlencoded";
    req.basic_user = "user";
    req.basic_password = "pass";
    req.max_attempts = 3;
    req.backoff_base = apr_time_from_msec(10);
    ck_assert_int_eq(bl_http_perform(pool, &req, &resp), BL_HTTP_OK);
    server_stop();
    ck_assert_int_eq(resp.attempts, 2);
    ck_assert_int_eq(resp.status, 201);
    ck_assert_str_eq(resp.body, "{\"sid\":\"1\"}");
    ck_assert_str_eq(apr_table_get(resp.headers, "X-Thing"), "one");
    ck_assert_ptr_null(resp.error);
    /* Both attempts sent the same authenticated request. */
    ck_assert_ptr_nonnull(strstr(server.seen[1], "POST /2010-04-01/Accounts/AC1/Messages.json HTTP/1.1"));
    ck_assert_ptr_nonnull(strstr(server.seen[0], "Authorization: Basic dXNlcjpwYXNz\r\n"));
    ck_assert_ptr_nonnull(strstr(server.seen[1], "Authorization: Basic dXNlcjpwYXNz\r\n"));
    ck_assert_ptr_nonnull(strstr(server.seen[1], "Content-Type: application/x-www-form-urlencoded\r\n"));
    ck_assert_ptr_nonnull(strstr(server.seen[1], "\r\n\r\nTo=%2B1&Body=hi"));
    ck_assert_ptr_null(strstr(server.seen[1], "Expect:"));
    /* No trace given: a new one, the same on both attempts. */
    ck_assert_ptr_nonnull(strstr(server.seen[0], "traceparent: 00-"));
    ck_assert_int_eq(bl_traceparent_valid(apr_pstrmemdup(pool,
        strstr(server.seen[0], "traceparent: ") + 13, 55)), 1);
    ck_assert_int_eq(strncmp(strstr(server.seen[0], "traceparent: "),
                             strstr(server.seen[1], "traceparent: "), 13 + 55), 0);
}
END_TEST

START_TEST(no_retry_on_4xx)
{
    bl_http_request req = {0};
    bl_http_response resp;

    server_start("HTTP/1.1 400 Bad Request\r\nContent-Length: 14\r\n"
                 "Connection: close\r\n\r\n{\"code\":21211}", NULL);
    req.method = "PATCH";
    req.url = server_url("/v1/thing?x=1");
    req.bearer = "tok-123";
    req.headers = (const char *const[]){"X-Request-Id: abc", NULL};
    req.body = "{}";
    req.body_len = 2;
    req.content_type = "application/json";
    req.max_attempts = 3;
    req.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    ck_assert_int_eq(bl_http_perform(pool, &req, &resp), BL_HTTP_OK);
    server_stop();
    ck_assert_ptr_nonnull(strstr(server.seen[0],
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"));
    ck_assert_int_eq(resp.attempts, 1);
    ck_assert_int_eq(resp.status, 400);
    ck_assert_str_eq(resp.body, "{\"code\":21211}");
    ck_assert_ptr_nonnull(strstr(server.seen[0], "PATCH /v1/thing?x=1 HTTP/1.1"));
    ck_assert_ptr_nonnull(strstr(server.seen[0], "Authorization: Bearer tok-123\r\n"));
    ck_assert_ptr_nonnull(strstr(server.seen[0], "X-Request-Id: abc\r\n"));
}
END_TEST

START_TEST(post_without_body)
{
    bl_http_request req = {0};
    bl_http_response resp;

    server_start("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", NULL);
    req.method = "POST";
    req.url = server_url("/v1/subscriptions/sub_1/cancel");
    ck_assert_int_eq(bl_http_perform(pool, &req, &resp), BL_HTTP_OK);
    server_stop();
    ck_assert_ptr_nonnull(strstr(server.seen[0], "POST /v1/subscriptions/sub_1/cancel HTTP/1.1"));
    ck_assert_ptr_nonnull(strstr(server.seen[0], "Content-Length: 0\r\n"));
}
END_TEST

START_TEST(gives_up_after_max_attempts)
{
    bl_http_request req = {0};
    bl_http_response resp;
    const char *busy = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    server_start(busy, busy, NULL);
    req.url = server_url("/");
    req.max_attempts = 2;
    req.backoff_base = apr_time_from_msec(1);
    ck_assert_int_eq(bl_http_perform(pool, &req, &resp), BL_HTTP_OK);
    server_stop();
    ck_assert_int_eq(resp.attempts, 2);
    ck_assert_int_eq(resp.status, 500);
    ck_assert_ptr_nonnull(strstr(server.seen[0], "GET / HTTP/1.1"));
}
END_TEST

START_TEST(transport_error_is_retried_and_reported)
{
    bl_http_request req = {0};
    bl_http_response resp;

    /* A port just closed: connection refused. */
    server_start(NULL);
    server_stop();
    req.url = server_url("/");
    req.max_attempts = 2;
    req.backoff_base = apr_time_from_msec(1);
    ck_assert_int_eq(bl_http_perform(pool, &req, &resp), BL_HTTP_TRANSPORT);
    ck_assert_int_eq(resp.attempts, 2);
    ck_assert_int_eq(resp.status, 0);
    ck_assert_ptr_nonnull(resp.error);
    ck_assert_str_eq(resp.body, "");
}
END_TEST

START_TEST(deadline_stops_retries)
{
    bl_http_request req = {0};
    bl_http_response resp;

    server_start("HTTP/1.1 429 Slow Down\r\nRetry-After: 30\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n", NULL);
    req.url = server_url("/");
    req.max_attempts = 5;
    req.backoff_max = apr_time_from_sec(60);
    req.deadline = apr_time_now() + apr_time_from_sec(2);
    ck_assert_int_eq(bl_http_perform(pool, &req, &resp), BL_HTTP_OK);
    server_stop();
    ck_assert_int_eq(resp.attempts, 1);
    ck_assert_int_eq(resp.status, 429);
    ck_assert_int_eq(resp.retry_after, apr_time_from_sec(30));
}
END_TEST

START_TEST(response_cap)
{
    bl_http_request req = {0};
    bl_http_response resp;
    char *big = apr_palloc(pool, 5000);

    memset(big, 'x', 4999);
    big[4999] = '\0';
    server_start(apr_pstrcat(pool, "HTTP/1.1 200 OK\r\nContent-Length: 4999\r\n"
                             "Connection: close\r\n\r\n", big, NULL), NULL);
    req.url = server_url("/");
    req.max_response = 1024;
    ck_assert_int_eq(bl_http_perform(pool, &req, &resp), BL_HTTP_TOO_LARGE);
    server_stop();
    ck_assert_str_eq(resp.error, "response too large");
}
END_TEST

typedef struct {
    char text[256];
    size_t len;
    int stop_after;
    int calls;
} sink;

static int collect(void *ctx, const char *data, apr_size_t len)
{
    sink *s = ctx;

    if (s->len + len < sizeof s->text) {
        memcpy(s->text + s->len, data, len);
        s->len += len;
        s->text[s->len] = '\0';
    }
    return s->stop_after && ++s->calls >= s->stop_after;
}

START_TEST(streams_and_aborts)
{
    bl_http_request req = {0};
    bl_http_response resp;
    sink s = {.len = 0};
    const char *events = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         "Connection: close\r\n\r\ndata: a\n\ndata: b\n\n";

    server_start(events, events, NULL);
    req.url = server_url("/v1/chat/completions");
    req.on_data = collect;
    req.on_data_ctx = &s;
    ck_assert_int_eq(bl_http_perform(pool, &req, &resp), BL_HTTP_OK);
    ck_assert_str_eq(s.text, "data: a\n\ndata: b\n\n");
    ck_assert_str_eq(resp.body, "");

    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    ck_assert_int_eq(bl_http_perform(pool, &req, &resp), BL_HTTP_ABORTED);
    ck_assert_int_eq(resp.attempts, 1);
    server_stop();
}
END_TEST

START_TEST(error_body_not_streamed)
{
    bl_http_request req = {0};
    bl_http_response resp;
    sink s = {.len = 0};

    server_start("HTTP/1.1 401 Unauthorized\r\nContent-Length: 9\r\n"
                 "Connection: close\r\n\r\n{\"e\":\"x\"}", NULL);
    req.url = server_url("/");
    req.on_data = collect;
    req.on_data_ctx = &s;
    ck_assert_int_eq(bl_http_perform(pool, &req, &resp), BL_HTTP_OK);
    server_stop();
    ck_assert_int_eq(resp.status, 401);
    ck_assert_str_eq(resp.body, "{\"e\":\"x\"}");
    ck_assert_int_eq((int)s.len, 0);
}
END_TEST

START_TEST(retry_after_parsing)
{
    apr_time_t now = apr_date_parse_http("Tue, 01 Dec 2026 10:00:00 GMT");

    ck_assert_int_eq(bl_http_parse_retry_after("120", now), apr_time_from_sec(120));
    ck_assert_int_eq(bl_http_parse_retry_after(" 0", now), 0);
    ck_assert_int_eq(bl_http_parse_retry_after("Tue, 01 Dec 2026 10:00:30 GMT", now),
                     apr_time_from_sec(30));
    ck_assert_int_eq(bl_http_parse_retry_after("Tue, 01 Dec 2026 09:00:00 GMT", now), 0);
    ck_assert_int_eq(bl_http_parse_retry_after("soon", now), 0);
    ck_assert_int_eq(bl_http_parse_retry_after("-5", now), 0);
    ck_assert_int_eq(bl_http_parse_retry_after("12abc", now), 0);
    ck_assert_int_eq(bl_http_parse_retry_after(NULL, now), 0);
    ck_assert_int_eq(bl_http_parse_retry_after("99999999999999999999", now),
                     apr_time_from_sec(999999999));
}
END_TEST

START_TEST(backoff_doubles_and_caps)
{
    apr_interval_time_t base = apr_time_from_msec(100), max = apr_time_from_sec(1);

    ck_assert_int_eq(bl_http_backoff(1, base, max, 0), apr_time_from_msec(100));
    ck_assert_int_eq(bl_http_backoff(2, base, max, 0), apr_time_from_msec(200));
    ck_assert_int_eq(bl_http_backoff(4, base, max, 0), apr_time_from_msec(800));
    ck_assert_int_eq(bl_http_backoff(5, base, max, 0), max);
    ck_assert_int_eq(bl_http_backoff(40, base, max, 0), max);
    ck_assert_int_eq(bl_http_backoff(1, base, max, apr_time_from_msec(500)),
                     apr_time_from_msec(500));
    ck_assert_int_eq(bl_http_backoff(1, base, max, apr_time_from_sec(60)), max);
    ck_assert_int_eq(bl_http_status_retryable(429), 1);
    ck_assert_int_eq(bl_http_status_retryable(503), 1);
    ck_assert_int_eq(bl_http_status_retryable(404), 0);
    ck_assert_int_eq(bl_http_status_retryable(200), 0);
}
END_TEST

START_TEST(traceparent_format)
{
    const char *given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const char *fresh = bl_traceparent_child(pool, NULL);
    const char *child = bl_traceparent_child(pool, given);

    ck_assert_int_eq(bl_traceparent_valid(given), 1);
    ck_assert_int_eq(bl_traceparent_valid(fresh), 1);
    ck_assert_int_eq(bl_traceparent_valid(child), 1);
    ck_assert_int_eq(strncmp(child, given, 35), 0);          /* same trace */
    ck_assert_int_ne(strcmp(child + 36, given + 36), 0);     /* new span */
    ck_assert_int_ne(strncmp(fresh, given, 35), 0);
    ck_assert_int_eq(bl_traceparent_valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), 0);
    ck_assert_int_eq(bl_traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"), 0);
    ck_assert_int_eq(bl_traceparent_valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), 0);
    ck_assert_int_eq(bl_traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"), 0);
    ck_assert_int_eq(bl_traceparent_valid(NULL), 0);
}
END_TEST

START_TEST(form_escape)
{
    ck_assert_str_eq(bl_http_form_escape(pool, "+91 98123&x=é"), "%2B91+98123%26x%3D%C3%A9");
    ck_assert_str_eq(bl_http_form_escape(pool, "a-b_c.d*"), "a-b_c.d*");
    ck_assert_str_eq(bl_http_form_escape(pool, ""), "");
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("http_client");
    TCase *tc = unit_tcase("http_client");

    bl_http_global_init();
    tcase_add_test(tc, retries_5xx_then_succeeds);
    tcase_add_test(tc, no_retry_on_4xx);
    tcase_add_test(tc, post_without_body);
    tcase_add_test(tc, gives_up_after_max_attempts);
    tcase_add_test(tc, transport_error_is_retried_and_reported);
    tcase_add_test(tc, deadline_stops_retries);
    tcase_add_test(tc, response_cap);
    tcase_add_test(tc, streams_and_aborts);
    tcase_add_test(tc, error_body_not_streamed);
    tcase_add_test(tc, retry_after_parsing);
    tcase_add_test(tc, backoff_doubles_and_caps);
    tcase_add_test(tc, traceparent_format);
    tcase_add_test(tc, form_escape);
    suite_add_tcase(s, tc);
    return s;
}
