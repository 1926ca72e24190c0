/* Unit tests for common/docsniff.c: types from signatures, and the
 * streaming plain-text check across split sequences. */
#include <string.h>

#include "unit.h"
#include "docsniff.h"

START_TEST(signatures)
{
    unsigned char dicom[200];

    ck_assert_str_eq(bl_sniff_document_type((const unsigned char *)"%PDF-1.7\n", 9), "application/pdf");
    ck_assert_str_eq(bl_sniff_document_type((const unsigned char *)"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), "image/png");
    ck_assert_str_eq(bl_sniff_document_type((const unsigned char *)"\xff\xd8\xff\xe0", 4), "image/jpeg");
    memset(dicom, 0, sizeof dicom);
    memcpy(dicom + 128, "DICM", 4);
    ck_assert_str_eq(bl_sniff_document_type(dicom, sizeof dicom), "application/dicom");
    /* The preamble without its signature is nothing in particular. */
    memcpy(dicom + 128, "DICN", 4);
    ck_assert_str_eq(bl_sniff_document_type(dicom, sizeof dicom), "text/plain");
    ck_assert_str_eq(bl_sniff_document_type((const unsigned char *)"", 0), "text/plain");
}
END_TEST

static int text_ok(const char *s, size_t len, size_t step)
{
    bl_text_check t;
    size_t off;

    bl_text_check_init(&t);
    for (off = 0; off < len; off += step)
        bl_text_check_feed(&t, (const unsigned char *)s + off, len - off < step ? len - off : step);
    return bl_text_check_ok(&t);
}

START_TEST(text_check)
{
    static const char good[] = "Blood count\r\n\tHb 12.1 g/dL \xc2\xb5g \xe2\x82\xac \xf0\x9f\x98\x80\f";
    size_t step;

    for (step = 1; step <= sizeof good; step++)
        ck_assert_int_eq(text_ok(good, sizeof good - 1, step), 1);
    ck_assert_int_eq(text_ok("", 0, 1), 1);
    ck_assert_int_eq(text_ok("a\0b", 3, 1), 0);             /* NUL */
    ck_assert_int_eq(text_ok("a\x1b[0m", 5, 1), 0);         /* escape */
    ck_assert_int_eq(text_ok("\xc0\xaf", 2, 1), 0);         /* overlong */
    ck_assert_int_eq(text_ok("\xed\xa0\x80", 3, 1), 0);     /* surrogate */
    ck_assert_int_eq(text_ok("\xf4\x90\x80\x80", 4, 2), 0); /* past U+10FFFF */
    ck_assert_int_eq(text_ok("ok \xe2\x82", 5, 1), 0);      /* cut mid-sequence */
    ck_assert_int_eq(text_ok("\xff", 1, 1), 0);
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("docsniff");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, signatures);
    tcase_add_test(tc, text_check);
    suite_add_tcase(s, tc);
    return s;
}
