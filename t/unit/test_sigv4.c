/* Unit tests for common/sigv4.c against AWS's published examples: the
 * Signature Version 4 test suite (get-vanilla, get-vanilla-query-order-key-case)
 * and the S3 documentation's "GET Object" and "PUT Object" examples
 * (Authenticating Requests: Using the Authorization Header). */
#include <string.h>

#include "unit.h"
#include "sigv4.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

START_TEST(suite_get_vanilla)
{
    bl_sigv4_header h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
    bl_sigv4_request req = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                            "us-east-1", "service", "GET", "/", NULL, h, 2, EMPTY_SHA256,
                            "20150830T123600Z"};
    const char *canonical;

    ck_assert_str_eq(bl_sigv4_authorization(pool, &req, &canonical),
                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                     "SignedHeaders=host;x-amz-date, "
                     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    ck_assert_str_eq(canonical, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                                "host;x-amz-date\n" EMPTY_SHA256);
}
END_TEST

START_TEST(suite_query_order)
{
    bl_sigv4_header h[] = {{"X-Amz-Date", "20150830T123600Z"}, {"host", "example.amazonaws.com"}};
    bl_sigv4_request req = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                            "us-east-1", "service", "GET", "/", "Param2=value2&Param1=value1", h, 2,
                            EMPTY_SHA256, "20150830T123600Z"};

    ck_assert_str_eq(bl_sigv4_authorization(pool, &req, NULL),
                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                     "SignedHeaders=host;x-amz-date, "
                     "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}
END_TEST

START_TEST(s3_get_object)
{
    bl_sigv4_header h[] = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"},
                           {"x-amz-content-sha256", EMPTY_SHA256},
                           {"x-amz-date", "20130524T000000Z"}};
    bl_sigv4_request req = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                            "us-east-1", "s3", "GET", "/test.txt", NULL, h, 4, EMPTY_SHA256,
                            "20130524T000000Z"};

    ck_assert_str_eq(bl_sigv4_authorization(pool, &req, NULL),
                     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                     "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                     "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}
END_TEST

START_TEST(s3_put_object)
{
    static const char body_sha[] = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    bl_sigv4_header h[] = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                           {"Host", "examplebucket.s3.amazonaws.com"},
                           {"x-amz-content-sha256", body_sha},
                           {"x-amz-date", "20130524T000000Z"},
                           {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
    bl_sigv4_request req = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                            "us-east-1", "s3", "PUT", "/test%24file.text", NULL, h, 5, body_sha,
                            "20130524T000000Z"};

    ck_assert_str_eq(bl_sigv4_authorization(pool, &req, NULL),
                     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                     "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
                     "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}
END_TEST

START_TEST(helpers)
{
    ck_assert_str_eq(bl_sigv4_uri_encode(pool, "a b/c~d$e", 1), "a%20b/c~d%24e");
    ck_assert_str_eq(bl_sigv4_uri_encode(pool, "a/b", 0), "a%2Fb");
    ck_assert_str_eq(bl_sigv4_amz_date(pool, apr_time_from_sec(1369353600)), "20130524T000000Z");
    {
        bl_sigv4_request bad = {0};
        ck_assert_ptr_null(bl_sigv4_authorization(pool, &bad, NULL));
    }
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("sigv4");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, suite_get_vanilla);
    tcase_add_test(tc, suite_query_order);
    tcase_add_test(tc, s3_get_object);
    tcase_add_test(tc, s3_put_object);
    tcase_add_test(tc, helpers);
    suite_add_tcase(s, tc);
    return s;
}
