/* JSON helpers over json-c: bounded parsing and typed getters.
 *
 * Duplicate keys: the last occurrence wins (json-c's behaviour, and what
 * ECMAScript's JSON.parse does), so the web and mobile clients and this
 * server read the same value from the same text. */
#include "json.h"

#include <string.h>
#include <apr_strings.h>

#include "validate.h"

static apr_status_t json_object_release(void *obj)
{
    json_object_put(obj);
    return APR_SUCCESS;
}

static void attach_to_pool(apr_pool_t *p, json_object *obj)
{
    apr_pool_cleanup_register(p, obj, json_object_release, apr_pool_cleanup_null);
}

/* Offset of the first byte that starts no valid UTF-8 sequence, or len. */
static size_t first_invalid_utf8(const char *buf, size_t len)
{
    size_t lo = 0;

    /* Fast path over the whole buffer; on failure walk sequence by
     * sequence to report the exact offset. */
    if (bl_valid_utf8(buf, len))
        return len;
    while (lo < len) {
        size_t n = 1;
        unsigned char c = (unsigned char)buf[lo];
        if (c >= 0xf0) n = 4;
        else if (c >= 0xe0) n = 3;
        else if (c >= 0xc0) n = 2;
        if (n > len - lo || !bl_valid_utf8(buf + lo, n))
            return lo;
        lo += n;
    }
    return len;
}

/* json-c accepts 'single-quoted' member names even in strict mode; no
 * single quote is valid JSON outside a string, so find one first. */
static size_t first_single_quote(const char *buf, size_t len)
{
    int in_string = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if (in_string) {
            if (buf[i] == '\\')
                i++;
            else if (buf[i] == '"')
                in_string = 0;
        } else if (buf[i] == '"') {
            in_string = 1;
        } else if (buf[i] == '\'') {
            return i;
        }
    }
    return len;
}

static int only_whitespace(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

json_object *bl_json_parse(apr_pool_t *p, const char *buf, size_t len,
                           int max_depth, const char **err)
{
    json_tokener *tok;
    json_object *obj;
    enum json_tokener_error jerr;
    const char *nul;
    size_t bad, end;

    if (max_depth <= 0)
        max_depth = BL_JSON_DEFAULT_MAX_DEPTH;
    if (!buf || len == 0) {
        *err = "empty body";
        return NULL;
    }
    if (len > (size_t)INT32_MAX) {
        *err = "document too large";
        return NULL;
    }
    nul = memchr(buf, '\0', len);
    if (nul) {
        *err = apr_psprintf(p, "NUL byte at byte %" APR_SIZE_T_FMT, (apr_size_t)(nul - buf));
        return NULL;
    }
    bad = first_invalid_utf8(buf, len);
    if (bad < len) {
        *err = apr_psprintf(p, "invalid UTF-8 at byte %" APR_SIZE_T_FMT, (apr_size_t)bad);
        return NULL;
    }
    bad = first_single_quote(buf, len);
    if (bad < len) {
        *err = apr_psprintf(p, "unexpected character ' at byte %" APR_SIZE_T_FMT,
                            (apr_size_t)bad);
        return NULL;
    }
    /* Depth counts containers: "[]" is 1, json-c agrees. */
    tok = json_tokener_new_ex(max_depth);
    if (!tok) {
        *err = "out of memory";
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue && !obj) {
        /* A bare number may still be waiting for its end: the terminating
         * NUL tells json-c the input is over. */
        obj = json_tokener_parse_ex(tok, "", 1);
        if (json_tokener_get_error(tok) == json_tokener_success) {
            jerr = json_tokener_success;
            end = len;
        }
    }
    json_tokener_free(tok);

    if (jerr == json_tokener_continue) {
        *err = apr_psprintf(p, "unexpected end of input at byte %" APR_SIZE_T_FMT,
                            (apr_size_t)len);
        return NULL;
    }
    if (jerr == json_tokener_error_depth) {
        *err = apr_psprintf(p, "nesting deeper than %d at byte %" APR_SIZE_T_FMT,
                            max_depth, (apr_size_t)end);
        return NULL;
    }
    if (jerr != json_tokener_success) {
        *err = apr_psprintf(p, "%s at byte %" APR_SIZE_T_FMT,
                            json_tokener_error_desc(jerr), (apr_size_t)end);
        return NULL;
    }
    if (obj)
        attach_to_pool(p, obj);
    if (!only_whitespace(buf + end, len - end)) {
        *err = apr_psprintf(p, "trailing characters after the JSON value at byte %"
                            APR_SIZE_T_FMT, (apr_size_t)end);
        return NULL;
    }
    if (!obj) {
        /* A bare null parses to NULL: callers always want a value. */
        *err = "document is null";
        return NULL;
    }
    return obj;
}

json_object *bl_json_parse_object(apr_pool_t *p, const char *buf, size_t len,
                                  int max_depth, const char **err)
{
    json_object *obj = bl_json_parse(p, buf, len, max_depth, err);

    if (obj && !json_object_is_type(obj, json_type_object)) {
        *err = "the top-level JSON value must be an object";
        return NULL;
    }
    return obj;
}

/* Shared first step of every getter: absent, null or the value. */
static bl_field_status lookup_field(apr_pool_t *p, json_object *obj, const char *field,
                                    int required, json_object **value, const char **err)
{
    *value = NULL;
    if (obj && json_object_is_type(obj, json_type_object))
        json_object_object_get_ex(obj, field, value);
    if (*value)
        return BL_FIELD_OK;
    if (required) {
        *err = apr_psprintf(p, "%s is required", field);
        return BL_FIELD_INVALID;
    }
    return BL_FIELD_ABSENT;
}

static bl_field_status invalid(const char **err, const char *msg)
{
    *err = msg;
    return BL_FIELD_INVALID;
}

/* No C0 control characters except tab, newline and carriage return. */
static int has_forbidden_control(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
            return 1;
    }
    return 0;
}

bl_field_status bl_json_get_string(apr_pool_t *p, json_object *obj,
                                   const char *field, int required,
                                   size_t min_chars, size_t max_chars,
                                   const char **out, const char **err)
{
    json_object *v;
    bl_field_status st = lookup_field(p, obj, field, required, &v, err);
    const char *s;
    size_t len, chars;

    if (st != BL_FIELD_OK)
        return st;
    if (!json_object_is_type(v, json_type_string))
        return invalid(err, apr_psprintf(p, "%s must be a string", field));
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    if (!bl_valid_utf8(s, len))
        return invalid(err, apr_psprintf(p, "%s must be valid UTF-8", field));
    if (has_forbidden_control(s, len))
        return invalid(err, apr_psprintf(p, "%s must not contain control characters", field));
    chars = bl_utf8_chars(s, len);
    if (chars < min_chars)
        return invalid(err, min_chars == 1
                       ? apr_psprintf(p, "%s must not be empty", field)
                       : apr_psprintf(p, "%s must be at least %" APR_SIZE_T_FMT " characters",
                                      field, (apr_size_t)min_chars));
    if (chars > max_chars)
        return invalid(err, apr_psprintf(p, "%s must be at most %" APR_SIZE_T_FMT " characters",
                                         field, (apr_size_t)max_chars));
    *out = apr_pstrmemdup(p, s, len);
    return BL_FIELD_OK;
}

bl_field_status bl_json_get_int(apr_pool_t *p, json_object *obj,
                                const char *field, int required,
                                int64_t min, int64_t max,
                                int64_t *out, const char **err)
{
    json_object *v;
    bl_field_status st = lookup_field(p, obj, field, required, &v, err);
    int64_t n;

    if (st != BL_FIELD_OK)
        return st;
    if (!json_object_is_type(v, json_type_int))
        return invalid(err, apr_psprintf(p, "%s must be an integer", field));
    n = json_object_get_int64(v);
    /* json-c clamps integers it cannot hold to the int64 limits: treat the
     * limits themselves as out of range rather than trust a clamped value. */
    if (n < min || n > max || n == INT64_MAX || n == INT64_MIN)
        return invalid(err, apr_psprintf(p, "%s must be between %" APR_INT64_T_FMT
                                         " and %" APR_INT64_T_FMT, field, min, max));
    *out = n;
    return BL_FIELD_OK;
}

bl_field_status bl_json_get_bool(apr_pool_t *p, json_object *obj,
                                 const char *field, int required,
                                 int *out, const char **err)
{
    json_object *v;
    bl_field_status st = lookup_field(p, obj, field, required, &v, err);

    if (st != BL_FIELD_OK)
        return st;
    if (!json_object_is_type(v, json_type_boolean))
        return invalid(err, apr_psprintf(p, "%s must be true or false", field));
    *out = json_object_get_boolean(v) ? 1 : 0;
    return BL_FIELD_OK;
}

bl_field_status bl_json_get_object(apr_pool_t *p, json_object *obj,
                                   const char *field, int required,
                                   json_object **out, const char **err)
{
    json_object *v;
    bl_field_status st = lookup_field(p, obj, field, required, &v, err);

    if (st != BL_FIELD_OK)
        return st;
    if (!json_object_is_type(v, json_type_object))
        return invalid(err, apr_psprintf(p, "%s must be an object", field));
    *out = v;
    return BL_FIELD_OK;
}

bl_field_status bl_json_get_enum(apr_pool_t *p, json_object *obj,
                                 const char *field, int required,
                                 const char *const *allowed,
                                 const char **out, const char **err)
{
    const char *s = NULL;
    bl_field_status st = bl_json_get_string(p, obj, field, required, 0, 256, &s, err);
    const char *list = "";
    const char *const *a;

    if (st != BL_FIELD_OK)
        return st;
    if (bl_valid_enum(s, allowed)) {
        *out = s;
        return BL_FIELD_OK;
    }
    for (a = allowed; a && *a; a++)
        list = *list ? apr_pstrcat(p, list, ", ", *a, NULL) : *a;
    return invalid(err, apr_psprintf(p, "%s must be one of: %s", field, list));
}

const char *bl_json_unknown_field(json_object *obj, const char *const *allowed)
{
    if (!obj || !json_object_is_type(obj, json_type_object))
        return NULL;
    json_object_object_foreach(obj, key, value) {
        (void)value;
        if (!bl_valid_enum(key, allowed))
            return key;
    }
    return NULL;
}

const char *bl_json_to_string(apr_pool_t *p, json_object *obj)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

    return s ? apr_pstrmemdup(p, s, len) : NULL;
}

const char *bl_json_quote(apr_pool_t *p, const char *s)
{
    static const char digits[] = "0123456789abcdef";
    size_t len, i;
    char *out, *o;

    if (!s)
        return "null";
    len = strlen(s);
    out = apr_palloc(p, len * 6 + 3);   /* worst case: every byte as \u00XX */
    o = out;
    *o++ = '"';
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':  *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\b': *o++ = '\\'; *o++ = 'b'; break;
        case '\f': *o++ = '\\'; *o++ = 'f'; break;
        default:
            if (c < 0x20) {
                memcpy(o, "\\u00", 4);
                o += 4;
                *o++ = digits[c >> 4];
                *o++ = digits[c & 15];
            } else {
                *o++ = (char)c;
            }
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}
