/* JSON helpers over json-c: bounded parsing and typed field getters.
 * Parsed objects belong to the pool passed in (a cleanup drops them). */
#ifndef BL_JSON_H
#define BL_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <apr_pools.h>
#include <json-c/json.h>

#define BL_JSON_DEFAULT_MAX_DEPTH 16

/* Parses exactly len bytes (no NUL terminator needed). Refuses invalid
 * UTF-8, nesting deeper than max_depth (containers: "[]" is depth 1; 0 or
 * less means BL_JSON_DEFAULT_MAX_DEPTH), trailing garbage, embedded NULs,
 * single-quoted strings and a bare null. Duplicate keys: the last one wins,
 * as in ECMAScript's JSON.parse, so clients and server read the same value. On failure returns NULL and
 * sets *err to a short human-readable reason ("unexpected end of input at
 * byte 12", "nesting deeper than 16"). */
json_object *bl_json_parse(apr_pool_t *p, const char *buf, size_t len,
                           int max_depth, const char **err);

/* Same, but the top level must be an object. */
json_object *bl_json_parse_object(apr_pool_t *p, const char *buf, size_t len,
                                  int max_depth, const char **err);

/* Result of a typed getter. */
typedef enum {
    BL_FIELD_OK = 0,      /* present and valid; *out set */
    BL_FIELD_ABSENT,      /* missing (or JSON null when null is allowed) */
    BL_FIELD_INVALID      /* present but wrong type/length/range; *err set */
} bl_field_status;

#define BL_REQUIRED 1
#define BL_OPTIONAL 0

/* Each getter: a required field that is absent is BL_FIELD_INVALID with
 * *err "<field> is required". Messages always name the field, e.g.
 * "email must be a string", "password must be at most 128 characters".
 * Lengths count UTF-8 code points; strings must be valid UTF-8 without NUL
 * or other C0 control characters except \t \n \r. */
bl_field_status bl_json_get_string(apr_pool_t *p, json_object *obj,
                                   const char *field, int required,
                                   size_t min_chars, size_t max_chars,
                                   const char **out, const char **err);
bl_field_status bl_json_get_int(apr_pool_t *p, json_object *obj,
                                const char *field, int required,
                                int64_t min, int64_t max,
                                int64_t *out, const char **err);
bl_field_status bl_json_get_bool(apr_pool_t *p, json_object *obj,
                                 const char *field, int required,
                                 int *out, const char **err);
bl_field_status bl_json_get_object(apr_pool_t *p, json_object *obj,
                                   const char *field, int required,
                                   json_object **out, const char **err);
/* String that must be one of allowed (NULL-terminated list). */
bl_field_status bl_json_get_enum(apr_pool_t *p, json_object *obj,
                                 const char *field, int required,
                                 const char *const *allowed,
                                 const char **out, const char **err);

/* Returns NULL when every key of obj is in allowed (NULL-terminated),
 * otherwise the first unknown key. Our rule: unknown fields are rejected. */
const char *bl_json_unknown_field(json_object *obj, const char *const *allowed);

/* Compact serialisation copied into the pool. */
const char *bl_json_to_string(apr_pool_t *p, json_object *obj);

/* Quotes and escapes s as a JSON string literal (with the quotes). */
const char *bl_json_quote(apr_pool_t *p, const char *s);

#endif
