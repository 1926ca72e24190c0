/* Red-flag triage: the rules file (JSON, see data/ai-triage-rules.json),
 * compiled once at start-up with httpd's regex engine (PCRE), and matched
 * against every message before any model call. A match answers at once
 * with emergency guidance; the model never sees the message. */
#include "ai_private.h"
#include "json.h"

#include <httpd.h>

#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

#define RULES_MAX_BYTES (256 * 1024)

static ap_regex_t *compile(apr_pool_t *p, const char *pattern, const char **err)
{
    /* Freed with the pool (ap_pregcomp registers the cleanup). */
    ap_regex_t *re = ap_pregcomp(p, pattern, AP_REG_ICASE | AP_REG_NOSUB);

    if (!re)
        *err = apr_psprintf(p, "pattern %s does not compile", pattern);
    return re;
}

/* A JSON array of pattern strings into an array of compiled patterns. */
static apr_array_header_t *compile_list(apr_pool_t *p, json_object *list, const char *what,
                                        const char **err)
{
    apr_array_header_t *out;
    size_t i, n;

    if (!json_object_is_type(list, json_type_array) || (n = json_object_array_length(list)) == 0) {
        *err = apr_psprintf(p, "%s must be a non-empty list of patterns", what);
        return NULL;
    }
    out = apr_array_make(p, (int)n, sizeof(ap_regex_t *));
    for (i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(list, i);
        ap_regex_t *re;
        if (!json_object_is_type(item, json_type_string)) {
            *err = apr_psprintf(p, "%s must hold strings", what);
            return NULL;
        }
        if (!(re = compile(p, json_object_get_string(item), err)))
            return NULL;
        APR_ARRAY_PUSH(out, ap_regex_t *) = re;
    }
    return out;
}

static const char *string_field(apr_pool_t *p, json_object *o, const char *name)
{
    json_object *v;

    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string)
        || json_object_get_string_len(v) == 0)
        return NULL;
    return apr_pstrdup(p, json_object_get_string(v));
}

static int load_rule(apr_pool_t *p, json_object *o, ai_rule *rule, const char **err)
{
    json_object *v, *groups;
    size_t i, n;

    if (!json_object_is_type(o, json_type_object)) {
        *err = "each rule must be an object";
        return -1;
    }
    rule->id = string_field(p, o, "id");
    rule->guidance = string_field(p, o, "guidance");
    if (!rule->id || strspn(rule->id, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(rule->id)
        || strlen(rule->id) > 64 || !rule->guidance) {
        *err = "each rule needs an id (a-z, 0-9, _) and a guidance text";
        return -1;
    }
    if (!json_object_object_get_ex(o, "match", &groups)
        || !json_object_is_type(groups, json_type_array)
        || (n = json_object_array_length(groups)) == 0) {
        *err = apr_psprintf(p, "rule %s: match must be a list of pattern lists", rule->id);
        return -1;
    }
    rule->groups = apr_array_make(p, (int)n, sizeof(apr_array_header_t *));
    for (i = 0; i < n; i++) {
        apr_array_header_t *g = compile_list(p, json_object_array_get_idx(groups, i),
                                             apr_psprintf(p, "rule %s: match[%d]", rule->id, (int)i),
                                             err);
        if (!g)
            return -1;
        APR_ARRAY_PUSH(rule->groups, apr_array_header_t *) = g;
    }
    if (json_object_object_get_ex(o, "unless", &v)
        && !(rule->unless = compile_list(p, v, apr_psprintf(p, "rule %s: unless", rule->id), err)))
        return -1;
    if (json_object_object_get_ex(o, "min_temperature_c", &v)) {
        rule->min_temperature_c = json_object_get_double(v);
        if (rule->min_temperature_c < 30 || rule->min_temperature_c > 45) {
            *err = apr_psprintf(p, "rule %s: min_temperature_c must be 30 to 45", rule->id);
            return -1;
        }
    }
    rule->crisis_line = json_object_object_get_ex(o, "crisis_line", &v) && json_object_get_boolean(v);
    return 0;
}

ai_rules *ai_rules_load(apr_pool_t *p, const char *path, const char **err)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t len;
    char *buf;
    json_object *doc, *list;
    ai_rules *rules;
    size_t i, n;

    if (apr_file_open(&f, path, APR_FOPEN_READ, 0, p) != APR_SUCCESS
        || apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS) {
        *err = "cannot read the file";
        return NULL;
    }
    if (fi.size <= 0 || fi.size > RULES_MAX_BYTES) {
        apr_file_close(f);
        *err = "empty or larger than 256 KiB";
        return NULL;
    }
    len = (apr_size_t)fi.size;
    buf = apr_palloc(p, len + 1);
    if (apr_file_read_full(f, buf, len, &len) != APR_SUCCESS) {
        apr_file_close(f);
        *err = "cannot read the file";
        return NULL;
    }
    apr_file_close(f);
    if (!(doc = bl_json_parse_object(p, buf, len, 0, err)))
        return NULL;
    if (!json_object_object_get_ex(doc, "rules", &list) || !json_object_is_type(list, json_type_array)
        || (n = json_object_array_length(list)) == 0) {
        *err = "the file needs a non-empty \"rules\" list";
        return NULL;
    }
    rules = apr_pcalloc(p, sizeof *rules);
    rules->rules = apr_array_make(p, (int)n, sizeof(ai_rule));
    for (i = 0; i < n; i++) {
        ai_rule *rule = apr_array_push(rules->rules);
        memset(rule, 0, sizeof *rule);
        if (load_rule(p, json_object_array_get_idx(list, i), rule, err) != 0)
            return NULL;
    }
    return rules;
}

/* ---------------------------------------------------------------- matching */

/* Lower-cased copy with typographic apostrophes made plain, so one pattern
 * covers "can’t" and "can't". */
static char *normalise(apr_pool_t *p, const char *text)
{
    size_t len = strlen(text), i, o = 0;
    char *out = apr_palloc(p, len + 1);

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == 0xE2 && i + 2 < len && (unsigned char)text[i + 1] == 0x80
            && ((unsigned char)text[i + 2] == 0x98 || (unsigned char)text[i + 2] == 0x99)) {
            out[o++] = '\'';
            i += 2;
            continue;
        }
        out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[o] = '\0';
    return out;
}

/* The highest body temperature written in the text, in °C, or -1:
 * "38.5", "38,5 °c", "101 f", "102 degrees". Unitless numbers count as
 * Celsius from 35 to 43.5 and as Fahrenheit from 95 to 110. */
static double text_temperature(const char *s)
{
    double best = -1;
    size_t i = 0;

    while (s[i]) {
        double v, frac = 0.1;
        size_t j;
        int unit = 0;   /* 'c', 'f' or 0 */

        if (!(s[i] >= '0' && s[i] <= '9') || (i > 0 && ((s[i - 1] >= '0' && s[i - 1] <= '9')
                                                        || s[i - 1] == '.' || s[i - 1] == ','))) {
            i++;
            continue;
        }
        v = 0;
        for (j = i; s[j] >= '0' && s[j] <= '9' && j - i < 4; j++)
            v = v * 10 + (s[j] - '0');
        if ((s[j] == '.' || s[j] == ',') && s[j + 1] >= '0' && s[j + 1] <= '9') {
            for (j++; s[j] >= '0' && s[j] <= '9'; j++, frac /= 10)
                v += (s[j] - '0') * frac;
        }
        i = j;
        while (s[j] == ' ')
            j++;
        if ((unsigned char)s[j] == 0xC2 && ((unsigned char)s[j + 1] == 0xB0
                                            || (unsigned char)s[j + 1] == 0xBA))
            j += 2;
        else if (strncmp(s + j, "degrees", 7) == 0)
            j += 7;
        else if (strncmp(s + j, "degree", 6) == 0)
            j += 6;
        else if (strncmp(s + j, "deg", 3) == 0)
            j += 3;
        while (s[j] == ' ')
            j++;
        if ((s[j] == 'c' || s[j] == 'f') && !(s[j + 1] >= 'a' && s[j + 1] <= 'z'))
            unit = s[j];
        else if (strncmp(s + j, "celsius", 7) == 0 || strncmp(s + j, "centigrade", 10) == 0)
            unit = 'c';
        else if (strncmp(s + j, "fahrenheit", 10) == 0)
            unit = 'f';
        if (unit == 'f' || (unit == 0 && v >= 95 && v <= 110))
            v = (v - 32) * 5 / 9;
        else if (unit == 0 && !(v >= 35 && v <= 43.5))
            continue;
        if (v >= 30 && v <= 45 && v > best)
            best = v;
    }
    return best;
}

static int any_matches(const apr_array_header_t *list, const char *text)
{
    int i;

    for (i = 0; list && i < list->nelts; i++)
        if (ap_regexec(APR_ARRAY_IDX(list, i, ap_regex_t *), text, 0, NULL, 0) == 0)
            return 1;
    return 0;
}

static int rule_fires(const ai_rule *rule, const char *text, double temperature)
{
    int g;

    for (g = 0; g < rule->groups->nelts; g++)
        if (!any_matches(APR_ARRAY_IDX(rule->groups, g, apr_array_header_t *), text))
            return 0;
    if (any_matches(rule->unless, text))
        return 0;
    return rule->min_temperature_c <= 0 || temperature >= rule->min_temperature_c;
}

const ai_rule *ai_triage(apr_pool_t *p, const ai_rules *rules, const char *text,
                         double temperature_c)
{
    char *norm;
    double found;
    int i;

    if (!rules || !text)
        return NULL;
    norm = normalise(p, text);
    found = text_temperature(norm);
    if (temperature_c > found)
        found = temperature_c;
    for (i = 0; i < rules->rules->nelts; i++) {
        const ai_rule *rule = &APR_ARRAY_IDX(rules->rules, i, ai_rule);
        if (rule_fires(rule, norm, found))
            return rule;
    }
    return NULL;
}
