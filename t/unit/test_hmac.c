/* HMAC-SHA256 against RFC 4231 test cases 1-7, SHA-256 against FIPS 180-2
 * examples, and the constant-time comparisons. */
#include <stdio.h>
#include <string.h>

#include "hmac.h"
#include "unit.h"

/* Hex text to bytes in the pool. */
static unsigned char *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2, i;
    unsigned char *out = apr_palloc(pool, n + 1);

    for (i = 0; i < n; i++) {
        unsigned int byte;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &byte), 1);
        out[i] = (unsigned char)byte;
    }
    *len = n;
    return out;
}

static unsigned char *repeat(unsigned char byte, size_t n)
{
    unsigned char *out = apr_palloc(pool, n);

    memset(out, byte, n);
    return out;
}

static void assert_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len,
                        const char *expected_hex)
{
    unsigned char mac[BL_SHA256_LEN];
    size_t prefix = strlen(expected_hex) / 2;   /* case 5 is truncated to 128 bits */

    ck_assert_int_eq(bl_hmac_sha256(key, key_len, msg, msg_len, mac), 1);
    ck_assert_str_eq(bl_hex(pool, mac, prefix), expected_hex);
}

START_TEST(rfc4231_case1)
{
    assert_hmac(repeat(0x0b, 20), 20, "Hi There", 8,
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}
END_TEST

START_TEST(rfc4231_case2)
{
    const char *msg = "what do ya want for nothing?";
    assert_hmac("Jefe", 4, msg, strlen(msg),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
END_TEST

START_TEST(rfc4231_case3)
{
    assert_hmac(repeat(0xaa, 20), 20, repeat(0xdd, 50), 50,
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}
END_TEST

START_TEST(rfc4231_case4)
{
    size_t key_len;
    unsigned char *key = unhex("0102030405060708090a0b0c0d0e0f10111213141516171819", &key_len);
    assert_hmac(key, key_len, repeat(0xcd, 50), 50,
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}
END_TEST

START_TEST(rfc4231_case5)
{
    assert_hmac(repeat(0x0c, 20), 20, "Test With Truncation", 20,
                "a3b6167473100ee06e0c796c2955552b");
}
END_TEST

START_TEST(rfc4231_case6)
{
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    assert_hmac(repeat(0xaa, 131), 131, msg, strlen(msg),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}
END_TEST

START_TEST(rfc4231_case7)
{
    const char *msg = "This is a test using a larger than block-size key and a larger "
                      "than block-size data. The key needs to be hashed before being "
                      "used by the HMAC algorithm.";
    assert_hmac(repeat(0xaa, 131), 131, msg, strlen(msg),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}
END_TEST

START_TEST(empty_key_and_message)
{
    /* Known value of HMAC-SHA256 with empty key and empty message. */
    assert_hmac("", 0, "", 0,
                "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}
END_TEST

START_TEST(sha256_vectors)
{
    ck_assert_str_eq(bl_sha256_hex(pool, "abc", 3),
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_str_eq(bl_sha256_hex(pool, "", 0),
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(constant_time_compare)
{
    ck_assert_int_eq(bl_ct_equal("abcdef", "abcdef", 6), 1);
    ck_assert_int_eq(bl_ct_equal("abcdef", "abcdeg", 6), 0);
    ck_assert_int_eq(bl_ct_equal("xbcdef", "abcdef", 6), 0);
    ck_assert_int_eq(bl_ct_equal("a", "b", 0), 1);
    ck_assert_int_eq(bl_ct_streq("token", "token"), 1);
    ck_assert_int_eq(bl_ct_streq("token", "tokem"), 0);
    ck_assert_int_eq(bl_ct_streq("token", "token2"), 0);
    ck_assert_int_eq(bl_ct_streq("token2", "token"), 0);
    ck_assert_int_eq(bl_ct_streq("", ""), 1);
    ck_assert_int_eq(bl_ct_streq("", "a"), 0);
}
END_TEST

START_TEST(hex_encoding)
{
    static const unsigned char bytes[] = {0x00, 0x7f, 0x80, 0xff};

    ck_assert_str_eq(bl_hex(pool, bytes, sizeof bytes), "007f80ff");
    ck_assert_str_eq(bl_hex(pool, bytes, 0), "");
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("hmac");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, rfc4231_case1);
    tcase_add_test(tc, rfc4231_case2);
    tcase_add_test(tc, rfc4231_case3);
    tcase_add_test(tc, rfc4231_case4);
    tcase_add_test(tc, rfc4231_case5);
    tcase_add_test(tc, rfc4231_case6);
    tcase_add_test(tc, rfc4231_case7);
    tcase_add_test(tc, empty_key_and_message);
    tcase_add_test(tc, sha256_vectors);
    tcase_add_test(tc, constant_time_compare);
    tcase_add_test(tc, hex_encoding);
    suite_add_tcase(s, tc);
    return s;
}
