/* Escaping untrusted text for log lines. */
#include "escape.h"

#include <stdint.h>
#include <string.h>

const char *bl_escape_log(apr_pool_t *p, const char *s, size_t max)
{
    static const char digits[] = "0123456789abcdef";
    size_t len, i;
    char *out, *o;

    if (!s)
        return "-";
    /* Look one byte past max to know whether to cut (max + 1 must not wrap). */
    len = max == SIZE_MAX ? strlen(s) : strnlen(s, max + 1);
    /* Worst case every byte becomes \xHH, plus "..." and the NUL. */
    out = apr_palloc(p, (len > max ? max : len) * 4 + 4);
    o = out;
    for (i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\\' || c == '"') {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = digits[c >> 4];
            *o++ = digits[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    if (len > max) {
        memcpy(o, "...", 3);
        o += 3;
    }
    *o = '\0';
    return out;
}
