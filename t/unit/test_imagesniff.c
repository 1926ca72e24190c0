/* Image sniffing from magic numbers only. */
#include <string.h>

#include "imagesniff.h"
#include "unit.h"

START_TEST(known_types)
{
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13};
    static const unsigned char jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F'};
    static const unsigned char webp[] = {'R', 'I', 'F', 'F', 0x24, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8'};

    ck_assert_str_eq(bl_sniff_image_type(png, sizeof png), "image/png");
    ck_assert_str_eq(bl_sniff_image_type(jpeg, sizeof jpeg), "image/jpeg");
    ck_assert_str_eq(bl_sniff_image_type(webp, sizeof webp), "image/webp");
    ck_assert_str_eq(bl_image_extension("image/png"), "png");
    ck_assert_str_eq(bl_image_extension("image/jpeg"), "jpg");
    ck_assert_str_eq(bl_image_extension("image/webp"), "webp");
}
END_TEST

START_TEST(refused)
{
    static const unsigned char short_png[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a};
    static const unsigned char wave[] = {'R', 'I', 'F', 'F', 0x24, 0, 0, 0, 'W', 'A', 'V', 'E'};
    static const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a'};
    static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
    static const char html[] = "<html><script>alert(1)</script>";

    ck_assert_ptr_null(bl_sniff_image_type(short_png, sizeof short_png));
    ck_assert_ptr_null(bl_sniff_image_type(wave, sizeof wave));
    ck_assert_ptr_null(bl_sniff_image_type(gif, sizeof gif));
    ck_assert_ptr_null(bl_sniff_image_type((const unsigned char *)svg, strlen(svg)));
    ck_assert_ptr_null(bl_sniff_image_type((const unsigned char *)html, strlen(html)));
    ck_assert_ptr_null(bl_sniff_image_type((const unsigned char *)"\xff\xd8", 2));
    ck_assert_ptr_null(bl_sniff_image_type(NULL, 0));
    ck_assert_ptr_null(bl_image_extension("image/gif"));
    ck_assert_ptr_null(bl_image_extension(NULL));
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("imagesniff");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, known_types);
    tcase_add_test(tc, refused);
    suite_add_tcase(s, tc);
    return s;
}
