/* Fuzz target: a request body through the bounded parser and the typed
 * getters, as a handler would read it. */
#include <string.h>

#include "fuzz.h"
#include "json.h"

static void read_like_a_handler(apr_pool_t *p, json_object *body)
{
    static const char *const roles[] = {"patient", "caregiver", "doctor", NULL};
    static const char *const allowed[] = {"email", "password", "role", "page", "profile",
                                          "is_public", NULL};
    json_object *profile = NULL;
    const char *s, *err;
    int64_t n;
    int b;

    bl_json_get_string(p, body, "email", BL_REQUIRED, 3, 254, &s, &err);
    bl_json_get_string(p, body, "password", BL_OPTIONAL, 12, 128, &s, &err);
    bl_json_get_enum(p, body, "role", BL_REQUIRED, roles, &s, &err);
    bl_json_get_int(p, body, "page", BL_OPTIONAL, 1, 1000, &n, &err);
    bl_json_get_bool(p, body, "is_public", BL_OPTIONAL, &b, &err);
    if (bl_json_get_object(p, body, "profile", BL_OPTIONAL, &profile, &err) == BL_FIELD_OK) {
        bl_json_get_string(p, profile, "first_name", BL_REQUIRED, 1, 100, &s, &err);
        bl_json_get_int(p, profile, "age", BL_OPTIONAL, 0, 150, &n, &err);
    }
    bl_json_unknown_field(body, allowed);
    s = bl_json_to_string(p, body);
    if (s)
        bl_json_quote(p, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = bl_fuzz_input_pool();
    const char *err = NULL;
    json_object *body = bl_json_parse_object(p, (const char *)data, size,
                                             BL_JSON_DEFAULT_MAX_DEPTH, &err);

    if (body)
        read_like_a_handler(p, body);
    else if (!err)
        __builtin_trap();            /* every refusal must say why */
    apr_pool_destroy(p);
    return 0;
}
