/* base64url: RFC 4648 section 10 vectors (url alphabet, no padding), the
 * RFC 7515 appendix A.2 header octets, and strict refusals. */
#include <string.h>

#include "base64url.h"
#include "unit.h"

static void assert_roundtrip(const char *plain, const char *encoded)
{
    size_t len = 0;
    unsigned char *decoded;

    ck_assert_str_eq(bl_base64url_encode(pool, (const unsigned char *)plain, strlen(plain)),
                     encoded);
    decoded = bl_base64url_decode(pool, encoded, strlen(encoded), &len);
    ck_assert_ptr_nonnull(decoded);
    ck_assert_uint_eq(len, strlen(plain));
    ck_assert_mem_eq(decoded, plain, len);
    ck_assert_int_eq(decoded[len], '\0');
}

START_TEST(rfc4648_vectors)
{
    assert_roundtrip("", "");
    assert_roundtrip("f", "Zg");
    assert_roundtrip("fo", "Zm8");
    assert_roundtrip("foo", "Zm9v");
    assert_roundtrip("foob", "Zm9vYg");
    assert_roundtrip("fooba", "Zm9vYmE");
    assert_roundtrip("foobar", "Zm9vYmFy");
}
END_TEST

START_TEST(url_alphabet)
{
    static const unsigned char bytes[] = {0xfb, 0xff, 0xbf};
    size_t len;
    unsigned char *decoded;

    ck_assert_str_eq(bl_base64url_encode(pool, bytes, sizeof bytes), "-_-_");
    decoded = bl_base64url_decode(pool, "-_-_", 4, &len);
    ck_assert_ptr_nonnull(decoded);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(decoded, bytes, 3);
}
END_TEST

/* RFC 7515 appendix A.2.1: the JWS Protected Header octets and their encoding. */
START_TEST(rfc7515_header)
{
    static const unsigned char header[] = {123, 34, 97, 108, 103, 34, 58, 34, 82, 83, 50, 53, 54, 34, 125};

    ck_assert_str_eq(bl_base64url_encode(pool, header, sizeof header), "eyJhbGciOiJSUzI1NiJ9");
}
END_TEST

START_TEST(strict_refusals)
{
    static const char *const bad[] = {
        "Zg==", "Zm9v+A", "Zm9v/A", "Zm 9v", "Zm9v\n", "Z", "Zm9vY", "Zh", "Zm9", "Zm=v", NULL
    };
    const char *const *b;
    size_t len;

    for (b = bad; *b; b++)
        ck_assert_msg(bl_base64url_decode(pool, *b, strlen(*b), &len) == NULL,
                      "accepted \"%s\"", *b);
    /* An embedded NUL is not part of the alphabet either. */
    ck_assert_ptr_null(bl_base64url_decode(pool, "Zm\0v", 4, &len));
}
END_TEST

START_TEST(binary_roundtrip)
{
    unsigned char all[256];
    size_t i, len, n;

    for (i = 0; i < sizeof all; i++)
        all[i] = (unsigned char)i;
    for (n = 0; n <= sizeof all; n++) {
        const char *enc = bl_base64url_encode(pool, all, n);
        unsigned char *dec = bl_base64url_decode(pool, enc, strlen(enc), &len);
        ck_assert_ptr_nonnull(dec);
        ck_assert_uint_eq(len, n);
        if (n)
            ck_assert_mem_eq(dec, all, n);
    }
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("base64url");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, rfc4648_vectors);
    tcase_add_test(tc, url_alphabet);
    tcase_add_test(tc, rfc7515_header);
    tcase_add_test(tc, strict_refusals);
    tcase_add_test(tc, binary_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}
