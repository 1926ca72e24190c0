/* multipart/form-data: boundary extraction and parsing, good and bad bodies. */
#include <string.h>

#include "multipart.h"
#include "unit.h"

#define CRLF "\r\n"

static int parse(const char *body, const char *boundary, int max_parts,
                 bl_multipart_part **parts, const char **err)
{
    *err = NULL;
    return bl_multipart_parse(pool, body, strlen(body), boundary, max_parts, parts, err);
}

START_TEST(boundary_extraction)
{
    ck_assert_str_eq(bl_multipart_boundary(pool, "multipart/form-data; boundary=abc123"), "abc123");
    ck_assert_str_eq(bl_multipart_boundary(pool, "Multipart/Form-Data;boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"),
                     "----WebKitFormBoundary7MA4YWxkTrZu0gW");
    ck_assert_str_eq(bl_multipart_boundary(pool, "multipart/form-data; charset=utf-8; BOUNDARY=\"a b:c\""),
                     "a b:c");
    ck_assert_str_eq(bl_multipart_boundary(pool, "multipart/form-data; boundary=\"quoted\" ; x=y"), "quoted");
    ck_assert_ptr_null(bl_multipart_boundary(pool, "multipart/form-data"));
    ck_assert_ptr_null(bl_multipart_boundary(pool, "multipart/mixed; boundary=abc"));
    ck_assert_ptr_null(bl_multipart_boundary(pool, "application/json; boundary=abc"));
    ck_assert_ptr_null(bl_multipart_boundary(pool, "multipart/form-data; boundary="));
    ck_assert_ptr_null(bl_multipart_boundary(pool, "multipart/form-data; boundary=\"\""));
    ck_assert_ptr_null(bl_multipart_boundary(pool, "multipart/form-data; boundary=\"unterminated"));
    ck_assert_ptr_null(bl_multipart_boundary(pool, "multipart/form-data; boundary=\"ends with space \""));
    ck_assert_ptr_null(bl_multipart_boundary(pool, "multipart/form-data; boundary=a; boundary=b"));
    ck_assert_ptr_null(bl_multipart_boundary(pool, "multipart/form-data; boundary=bad\x01" "char"));
    ck_assert_ptr_null(bl_multipart_boundary(pool, "multipart/form-data; boundary="
        "12345678901234567890123456789012345678901234567890123456789012345678901"));
    ck_assert_ptr_null(bl_multipart_boundary(pool, NULL));
}
END_TEST

START_TEST(good_body)
{
    const char *body =
        "--XyZ" CRLF
        "Content-Disposition: form-data; name=\"title\"" CRLF
        CRLF
        "Hello" CRLF
        "--XyZ" CRLF
        "Content-Disposition: form-data; name=\"avatar\"; filename=\"../../etc/passwd\"" CRLF
        "Content-Type: image/png" CRLF
        CRLF
        "\x89PNG\r\n\x1a\n--not-a-boundary" CRLF
        "--XyZ--" CRLF;
    bl_multipart_part *parts;
    const char *err;

    ck_assert_int_eq(parse(body, "XyZ", 10, &parts, &err), 2);
    ck_assert_str_eq(parts[0].name, "title");
    ck_assert_ptr_null(parts[0].filename);
    ck_assert_ptr_null(parts[0].content_type);
    ck_assert_uint_eq(parts[0].len, 5);
    ck_assert_mem_eq(parts[0].data, "Hello", 5);
    ck_assert_str_eq(parts[1].name, "avatar");
    ck_assert_str_eq(parts[1].filename, "../../etc/passwd");
    ck_assert_str_eq(parts[1].content_type, "image/png");
    ck_assert_uint_eq(parts[1].len, 24);
    ck_assert_mem_eq(parts[1].data, "\x89PNG\r\n\x1a\n--not-a-boundary", 24);
}
END_TEST

START_TEST(quoted_boundary_preamble_and_empty_part)
{
    const char *boundary = bl_multipart_boundary(pool, "multipart/form-data; boundary=\"with space\"");
    const char *body =
        "this preamble is ignored" CRLF
        "--with space" CRLF
        "content-disposition: FORM-DATA; name=empty" CRLF
        CRLF
        CRLF
        "--with space--";
    bl_multipart_part *parts;
    const char *err;

    ck_assert_str_eq(boundary, "with space");
    ck_assert_int_eq(parse(body, boundary, 10, &parts, &err), 1);
    ck_assert_str_eq(parts[0].name, "empty");
    ck_assert_uint_eq(parts[0].len, 0);
}
END_TEST

START_TEST(no_parts)
{
    bl_multipart_part *parts;
    const char *err;

    ck_assert_int_eq(parse("--b--" CRLF, "b", 10, &parts, &err), 0);
}
END_TEST

START_TEST(missing_final_boundary)
{
    const char *err;
    bl_multipart_part *parts;

    ck_assert_int_eq(parse("--b" CRLF "Content-Disposition: form-data; name=\"a\"" CRLF CRLF "data",
                           "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "missing final boundary");
    ck_assert_int_eq(parse("--b" CRLF "Content-Disposition: form-data; name=\"a\"" CRLF CRLF "x" CRLF "--b",
                           "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "missing final boundary");
    ck_assert_int_eq(parse("--b" CRLF "Content-Disposition: form-data; name=\"a\"",
                           "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "part headers not terminated");
}
END_TEST

START_TEST(too_many_parts)
{
    const char *part = "--b" CRLF "Content-Disposition: form-data; name=\"f\"" CRLF CRLF "v" CRLF;
    const char *body = apr_pstrcat(pool, part, part, part, "--b--", NULL);
    bl_multipart_part *parts;
    const char *err;

    ck_assert_int_eq(parse(body, "b", 3, &parts, &err), 3);
    ck_assert_int_eq(parse(body, "b", 2, &parts, &err), -1);
    ck_assert_str_eq(err, "too many parts (at most 2)");
}
END_TEST

START_TEST(header_limits)
{
    char *big = apr_palloc(pool, 5000);
    const char *body, *err;
    bl_multipart_part *parts;
    int i;

    memset(big, 'a', 4999);
    big[4999] = '\0';
    body = apr_pstrcat(pool, "--b" CRLF "X-Big: ", big, CRLF
                       "Content-Disposition: form-data; name=\"f\"" CRLF CRLF "v" CRLF "--b--", NULL);
    ck_assert_int_eq(parse(body, "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "part header section too large");

    body = "--b" CRLF;
    for (i = 0; i < 20; i++)
        body = apr_pstrcat(pool, body, "X-A: b" CRLF, NULL);
    body = apr_pstrcat(pool, body, "Content-Disposition: form-data; name=\"f\"" CRLF CRLF "v" CRLF "--b--", NULL);
    ck_assert_int_eq(parse(body, "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "too many part header lines");
}
END_TEST

START_TEST(malformed_parts)
{
    const char *err;
    bl_multipart_part *parts;

    ck_assert_int_eq(parse("no boundary here", "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "body does not contain the boundary");
    ck_assert_int_eq(parse("--b" CRLF "Content-Type: text/plain" CRLF CRLF "v" CRLF "--b--", "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "part without a Content-Disposition form-data name");
    ck_assert_int_eq(parse("--b" CRLF "Content-Disposition: attachment; name=\"f\"" CRLF CRLF "v" CRLF "--b--", "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "part Content-Disposition is not form-data");
    ck_assert_int_eq(parse("--b" CRLF "no colon" CRLF CRLF "v" CRLF "--b--", "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "malformed part header");
    ck_assert_int_eq(parse("--b" CRLF "Content-Disposition: form-data; name=\"f" CRLF CRLF "v" CRLF "--b--", "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "malformed Content-Disposition parameters");
    ck_assert_int_eq(parse("--bX" CRLF "Content-Disposition: form-data; name=f" CRLF CRLF "v" CRLF "--b--", "b", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "boundary line not followed by CRLF");
    ck_assert_int_eq(parse("--b--", "", 10, &parts, &err), -1);
    ck_assert_str_eq(err, "missing or invalid boundary");
}
END_TEST


/* ------------------------------------------------------------ streaming */

typedef struct {
    apr_pool_t *p;
    int begins, ends;
    char names[4][32];
    char *data[4];
    size_t len[4];
    int stop_at_data;           /* abort on the first data of this part (1-based), 0: never */
} collected;

static int c_begin(void *ctx, const bl_multipart_part *part)
{
    collected *c = ctx;

    ck_assert_int_lt(c->begins, 4);
    apr_cpystrn(c->names[c->begins], part->name, sizeof c->names[0]);
    c->data[c->begins] = apr_pcalloc(c->p, 1 << 20);
    c->len[c->begins] = 0;
    c->begins++;
    return 0;
}

static int c_data(void *ctx, const char *data, size_t len, apr_off_t offset)
{
    collected *c = ctx;
    int i = c->begins - 1;

    (void)offset;
    if (c->stop_at_data == c->begins)
        return 1;
    ck_assert_uint_le(c->len[i] + len, 1 << 20);
    memcpy(c->data[i] + c->len[i], data, len);
    c->len[i] += len;
    return 0;
}

static int c_end(void *ctx)
{
    collected *c = ctx;

    c->ends++;
    return 0;
}

static const bl_multipart_callbacks c_callbacks = {c_begin, c_data, c_end};

/* The same body fed in pieces of every size from 1 byte up: the parts come
 * out whole and unchanged, however the delimiter is split. */
START_TEST(stream_any_split)
{
    static const char head[] =
        "preamble" CRLF "--XyZ" CRLF
        "Content-Disposition: form-data; name=\"title\"" CRLF CRLF "Hello" CRLF
        "--XyZ" CRLF
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.bin\"" CRLF CRLF;
    static const char tail[] = CRLF "--XyZ--" CRLF "epilogue";
    size_t file_len = 70000, total, step, i;
    char *body, *file;

    file = apr_palloc(pool, file_len);
    for (i = 0; i < file_len; i++)
        file[i] = (i % 97 == 0) ? '\r' : (i % 89 == 0) ? '\n' : (i % 83 == 0) ? '-' : (char)('a' + i % 26);
    /* Near-delimiters inside the data. */
    memcpy(file + 1000, "\r\n--XyY", 7);
    memcpy(file + 5000, "\r\n--Xy", 6);
    total = strlen(head) + file_len + strlen(tail);
    body = apr_palloc(pool, total);
    memcpy(body, head, strlen(head));
    memcpy(body + strlen(head), file, file_len);
    memcpy(body + strlen(head) + file_len, tail, strlen(tail));

    for (step = 1; step <= total; step = step < 16 ? step + 1 : step * 3) {
        collected c;
        bl_multipart_stream *s;
        size_t off;

        memset(&c, 0, sizeof c);
        c.p = pool;
        s = bl_multipart_stream_create(pool, "XyZ", 4, &c_callbacks, &c);
        ck_assert_ptr_nonnull(s);
        for (off = 0; off < total; off += step)
            ck_assert_int_eq(bl_multipart_feed(s, body + off, total - off < step ? total - off : step), 0);
        ck_assert_int_eq(bl_multipart_finish(s), 0);
        ck_assert_int_eq(c.begins, 2);
        ck_assert_int_eq(c.ends, 2);
        ck_assert_str_eq(c.names[0], "title");
        ck_assert_uint_eq(c.len[0], 5);
        ck_assert_mem_eq(c.data[0], "Hello", 5);
        ck_assert_str_eq(c.names[1], "file");
        ck_assert_uint_eq(c.len[1], file_len);
        ck_assert_mem_eq(c.data[1], file, file_len);
    }
}
END_TEST

START_TEST(stream_truncated_and_aborted)
{
    static const char body[] = "--b" CRLF "Content-Disposition: form-data; name=\"f\"" CRLF CRLF "some data, longer than a delimiter";
    collected c;
    bl_multipart_stream *s;

    memset(&c, 0, sizeof c);
    c.p = pool;
    s = bl_multipart_stream_create(pool, "b", 4, &c_callbacks, &c);
    ck_assert_int_eq(bl_multipart_feed(s, body, strlen(body)), 0);
    ck_assert_int_eq(bl_multipart_finish(s), BL_MULTIPART_ERROR);
    ck_assert_str_eq(bl_multipart_stream_error(s), "missing final boundary");

    memset(&c, 0, sizeof c);
    c.p = pool;
    c.stop_at_data = 1;
    s = bl_multipart_stream_create(pool, "b", 4, &c_callbacks, &c);
    ck_assert_int_eq(bl_multipart_feed(s, body, strlen(body)), BL_MULTIPART_ABORTED);
    /* Failed once, failed for good. */
    ck_assert_int_eq(bl_multipart_feed(s, "x", 1), BL_MULTIPART_ABORTED);
    ck_assert_ptr_null(bl_multipart_stream_create(pool, "", 4, &c_callbacks, &c));
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("multipart");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, boundary_extraction);
    tcase_add_test(tc, good_body);
    tcase_add_test(tc, quoted_boundary_preamble_and_empty_part);
    tcase_add_test(tc, no_parts);
    tcase_add_test(tc, missing_final_boundary);
    tcase_add_test(tc, too_many_parts);
    tcase_add_test(tc, header_limits);
    tcase_add_test(tc, malformed_parts);
    tcase_add_test(tc, stream_any_split);
    tcase_add_test(tc, stream_truncated_and_aborted);
    suite_add_tcase(s, tc);
    return s;
}
