/* JSON: bounded parsing (depth, UTF-8, trailing data, NUL), the duplicate
 * key rule, and each typed getter's results and messages. */
#include <string.h>

#include "json.h"
#include "unit.h"

static json_object *parse(const char *text, int depth, const char **err)
{
    *err = NULL;
    return bl_json_parse(pool, text, strlen(text), depth, err);
}

static json_object *object(const char *text)
{
    const char *err = NULL;
    json_object *o = bl_json_parse_object(pool, text, strlen(text), 0, &err);

    ck_assert_msg(o != NULL, "parse failed: %s", err);
    return o;
}

static char *nested_arrays(int depth)
{
    char *s = apr_palloc(pool, (apr_size_t)depth * 2 + 1);

    memset(s, '[', (size_t)depth);
    memset(s + depth, ']', (size_t)depth);
    s[depth * 2] = '\0';
    return s;
}

START_TEST(valid_documents)
{
    const char *err;

    ck_assert_ptr_nonnull(parse("{\"a\":[1,2,{\"b\":null}],\"c\":\"\xc3\xa9\"}", 0, &err));
    ck_assert_ptr_nonnull(parse("  [1]\n", 0, &err));
    ck_assert_ptr_nonnull(parse("42", 0, &err));
}
END_TEST

START_TEST(depth_limit)
{
    const char *err;

    ck_assert_ptr_nonnull(parse(nested_arrays(16), 16, &err));
    ck_assert_ptr_null(parse(nested_arrays(17), 16, &err));
    ck_assert_str_eq(err, "nesting deeper than 16 at byte 16");
    ck_assert_ptr_null(parse(nested_arrays(1000), 0, &err));
    ck_assert_ptr_nonnull(strstr(err, "nesting deeper than 16"));
    ck_assert_ptr_nonnull(parse(nested_arrays(3), 3, &err));
    ck_assert_ptr_null(parse(nested_arrays(4), 3, &err));
}
END_TEST

START_TEST(invalid_utf8)
{
    static const char *const bad[] = {
        "\"\xff\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"", "\"\xc3\"", "\"abc\xe2\x82\"", NULL
    };
    const char *const *b;
    const char *err;

    for (b = bad; *b; b++) {
        ck_assert_msg(parse(*b, 0, &err) == NULL, "accepted %s", *b);
        ck_assert_ptr_nonnull(strstr(err, "invalid UTF-8 at byte"));
    }
    ck_assert_ptr_null(parse("{\"k\":\"ok\xff\"}", 0, &err));
    ck_assert_str_eq(err, "invalid UTF-8 at byte 8");
    /* Four-byte sequences (emoji) are fine. */
    ck_assert_ptr_nonnull(parse("\"\xf0\x9f\x8e\x97\"", 0, &err));
}
END_TEST

START_TEST(trailing_garbage)
{
    const char *err;

    ck_assert_ptr_null(parse("{} x", 0, &err));
    ck_assert_ptr_nonnull(strstr(err, "at byte"));
    ck_assert_ptr_null(parse("{}{}", 0, &err));
    ck_assert_ptr_null(parse("[1] [2]", 0, &err));
    ck_assert_ptr_null(parse("{\"a\":1", 0, &err));
    ck_assert_str_eq(err, "unexpected end of input at byte 6");
    ck_assert_ptr_null(parse("{\"a\":1,}", 0, &err));
    ck_assert_ptr_null(parse("{'a':1}", 0, &err));
    ck_assert_ptr_null(parse("", 0, &err));
    ck_assert_str_eq(err, "empty body");
    ck_assert_ptr_null(parse("null", 0, &err));
}
END_TEST

START_TEST(embedded_nul)
{
    static const char doc[] = "{\"a\":\"b\0c\"}";
    const char *err;

    ck_assert_ptr_null(bl_json_parse(pool, doc, sizeof doc - 1, 0, &err));
    ck_assert_str_eq(err, "NUL byte at byte 7");
}
END_TEST

START_TEST(top_level_must_be_object)
{
    const char *err;

    ck_assert_ptr_null(bl_json_parse_object(pool, "[]", 2, 0, &err));
    ck_assert_str_eq(err, "the top-level JSON value must be an object");
    ck_assert_ptr_nonnull(bl_json_parse_object(pool, "{}", 2, 0, &err));
}
END_TEST

/* The rule: the last occurrence wins, as with ECMAScript's JSON.parse. */
START_TEST(duplicate_keys_last_wins)
{
    json_object *o = object("{\"role\":\"admin\",\"role\":\"patient\"}");
    const char *role, *err;

    ck_assert_int_eq(bl_json_get_string(pool, o, "role", BL_REQUIRED, 1, 20, &role, &err),
                     BL_FIELD_OK);
    ck_assert_str_eq(role, "patient");
    ck_assert_int_eq(json_object_object_length(o), 1);
}
END_TEST

START_TEST(string_getter)
{
    json_object *o = object("{\"email\":\"a@b.co\",\"n\":5,\"name\":\"\xc3\xa9t\xc3\xa9\","
                            "\"empty\":\"\",\"ctl\":\"a\\u0001b\",\"nul\":\"a\\u0000b\","
                            "\"tab\":\"a\\tb\\nc\",\"nothing\":null}");
    const char *out = NULL, *err = NULL;

    ck_assert_int_eq(bl_json_get_string(pool, o, "email", BL_REQUIRED, 3, 254, &out, &err), BL_FIELD_OK);
    ck_assert_str_eq(out, "a@b.co");
    ck_assert_int_eq(bl_json_get_string(pool, o, "missing", BL_REQUIRED, 0, 10, &out, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "missing is required");
    ck_assert_int_eq(bl_json_get_string(pool, o, "missing", BL_OPTIONAL, 0, 10, &out, &err), BL_FIELD_ABSENT);
    ck_assert_int_eq(bl_json_get_string(pool, o, "nothing", BL_OPTIONAL, 0, 10, &out, &err), BL_FIELD_ABSENT);
    ck_assert_int_eq(bl_json_get_string(pool, o, "nothing", BL_REQUIRED, 0, 10, &out, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "nothing is required");
    ck_assert_int_eq(bl_json_get_string(pool, o, "n", BL_REQUIRED, 0, 10, &out, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "n must be a string");
    /* Three code points, five bytes. */
    ck_assert_int_eq(bl_json_get_string(pool, o, "name", BL_REQUIRED, 3, 3, &out, &err), BL_FIELD_OK);
    ck_assert_int_eq(bl_json_get_string(pool, o, "name", BL_REQUIRED, 0, 2, &out, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "name must be at most 2 characters");
    ck_assert_int_eq(bl_json_get_string(pool, o, "name", BL_REQUIRED, 4, 10, &out, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "name must be at least 4 characters");
    ck_assert_int_eq(bl_json_get_string(pool, o, "empty", BL_REQUIRED, 1, 10, &out, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "empty must not be empty");
    ck_assert_int_eq(bl_json_get_string(pool, o, "ctl", BL_REQUIRED, 0, 10, &out, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "ctl must not contain control characters");
    ck_assert_int_eq(bl_json_get_string(pool, o, "nul", BL_REQUIRED, 0, 10, &out, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "nul must not contain control characters");
    ck_assert_int_eq(bl_json_get_string(pool, o, "tab", BL_REQUIRED, 0, 10, &out, &err), BL_FIELD_OK);
}
END_TEST

START_TEST(int_getter)
{
    json_object *o = object("{\"page\":3,\"neg\":-5,\"f\":1.5,\"s\":\"3\",\"huge\":99999999999999999999,"
                            "\"big\":1e400}");
    int64_t n = 0;
    const char *err;

    ck_assert_int_eq(bl_json_get_int(pool, o, "page", BL_REQUIRED, 1, 100, &n, &err), BL_FIELD_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(bl_json_get_int(pool, o, "neg", BL_REQUIRED, 0, 100, &n, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "neg must be between 0 and 100");
    ck_assert_int_eq(bl_json_get_int(pool, o, "f", BL_REQUIRED, 0, 100, &n, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "f must be an integer");
    ck_assert_int_eq(bl_json_get_int(pool, o, "s", BL_REQUIRED, 0, 100, &n, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "s must be an integer");
    ck_assert_int_eq(bl_json_get_int(pool, o, "huge", BL_REQUIRED, INT64_MIN, INT64_MAX, &n, &err),
                     BL_FIELD_INVALID);
    ck_assert_int_eq(bl_json_get_int(pool, o, "big", BL_REQUIRED, 0, 100, &n, &err), BL_FIELD_INVALID);
    ck_assert_int_eq(bl_json_get_int(pool, o, "page", BL_OPTIONAL, 0, 100, &n, &err), BL_FIELD_OK);
    ck_assert_int_eq(bl_json_get_int(pool, o, "none", BL_OPTIONAL, 0, 100, &n, &err), BL_FIELD_ABSENT);
    ck_assert_int_eq(bl_json_get_int(pool, o, "none", BL_REQUIRED, 0, 100, &n, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "none is required");
}
END_TEST

START_TEST(bool_object_enum_getters)
{
    json_object *o = object("{\"is_public\":true,\"flag\":1,\"profile\":{\"city\":\"Pune\"},"
                            "\"loc\":[],\"role\":\"doctor\",\"bad_role\":\"admin\"}");
    static const char *const roles[] = {"patient", "caregiver", "doctor", NULL};
    json_object *sub = NULL;
    const char *role, *err;
    int b = 0;

    ck_assert_int_eq(bl_json_get_bool(pool, o, "is_public", BL_REQUIRED, &b, &err), BL_FIELD_OK);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(bl_json_get_bool(pool, o, "flag", BL_REQUIRED, &b, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "flag must be true or false");
    ck_assert_int_eq(bl_json_get_object(pool, o, "profile", BL_REQUIRED, &sub, &err), BL_FIELD_OK);
    ck_assert(json_object_is_type(sub, json_type_object));
    ck_assert_int_eq(bl_json_get_object(pool, o, "loc", BL_REQUIRED, &sub, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "loc must be an object");
    ck_assert_int_eq(bl_json_get_enum(pool, o, "role", BL_REQUIRED, roles, &role, &err), BL_FIELD_OK);
    ck_assert_str_eq(role, "doctor");
    ck_assert_int_eq(bl_json_get_enum(pool, o, "bad_role", BL_REQUIRED, roles, &role, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "bad_role must be one of: patient, caregiver, doctor");
    ck_assert_int_eq(bl_json_get_enum(pool, o, "is_public", BL_REQUIRED, roles, &role, &err), BL_FIELD_INVALID);
    ck_assert_str_eq(err, "is_public must be a string");
    /* A getter on a non-object sees every field as absent. */
    ck_assert_int_eq(bl_json_get_bool(pool, NULL, "x", BL_OPTIONAL, &b, &err), BL_FIELD_ABSENT);
}
END_TEST

START_TEST(unknown_fields)
{
    static const char *const allowed[] = {"email", "password", NULL};

    ck_assert_ptr_null(bl_json_unknown_field(object("{\"email\":1,\"password\":2}"), allowed));
    ck_assert_str_eq(bl_json_unknown_field(object("{\"email\":1,\"is_admin\":true}"), allowed),
                     "is_admin");
}
END_TEST

START_TEST(serialise_and_quote)
{
    ck_assert_str_eq(bl_json_to_string(pool, object("{ \"a\" : [1, \"x/y\"] }")),
                     "{\"a\":[1,\"x/y\"]}");
    ck_assert_str_eq(bl_json_quote(pool, "a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    ck_assert_str_eq(bl_json_quote(pool, "\xc3\xa9"), "\"\xc3\xa9\"");
    ck_assert_str_eq(bl_json_quote(pool, NULL), "null");
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("json");
    TCase *parsing = unit_tcase("parse");
    TCase *getters = unit_tcase("getters");

    tcase_add_test(parsing, valid_documents);
    tcase_add_test(parsing, depth_limit);
    tcase_add_test(parsing, invalid_utf8);
    tcase_add_test(parsing, trailing_garbage);
    tcase_add_test(parsing, embedded_nul);
    tcase_add_test(parsing, top_level_must_be_object);
    tcase_add_test(parsing, duplicate_keys_last_wins);
    tcase_add_test(getters, string_getter);
    tcase_add_test(getters, int_getter);
    tcase_add_test(getters, bool_object_enum_getters);
    tcase_add_test(getters, unknown_fields);
    tcase_add_test(getters, serialise_and_quote);
    suite_add_tcase(s, parsing);
    suite_add_tcase(s, getters);
    return s;
}
