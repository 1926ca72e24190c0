/* base64url without padding (RFC 4648 section 5). */
#include "base64url.h"

#include <apr_strings.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *bl_base64url_encode(apr_pool_t *p, const unsigned char *data, size_t len)
{
    char *out = apr_palloc(p, (len + 2) / 3 * 4 + 1);
    char *o = out;
    size_t i = 0;

    for (; i + 3 <= len; i += 3) {
        unsigned long v = ((unsigned long)data[i] << 16) |
                          ((unsigned long)data[i + 1] << 8) | data[i + 2];
        *o++ = alphabet[(v >> 18) & 63];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned long v = (unsigned long)data[i] << 16;
        *o++ = alphabet[(v >> 18) & 63];
        *o++ = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned long v = ((unsigned long)data[i] << 16) | ((unsigned long)data[i + 1] << 8);
        *o++ = alphabet[(v >> 18) & 63];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
    }
    *o = '\0';
    return out;
}

/* Value of one base64url character, or -1 for anything outside the alphabet. */
static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

unsigned char *bl_base64url_decode(apr_pool_t *p, const char *in, size_t len, size_t *out_len)
{
    size_t rem = len % 4;
    size_t full = len - rem;
    unsigned char *out, *o;
    size_t i;

    if (rem == 1)
        return NULL;
    out = apr_palloc(p, len / 4 * 3 + 3);
    o = out;
    for (i = 0; i < full; i += 4) {
        int a = sextet((unsigned char)in[i]), b = sextet((unsigned char)in[i + 1]);
        int c = sextet((unsigned char)in[i + 2]), d = sextet((unsigned char)in[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0)
            return NULL;
        *o++ = (unsigned char)((a << 2) | (b >> 4));
        *o++ = (unsigned char)(((b & 15) << 4) | (c >> 2));
        *o++ = (unsigned char)(((c & 3) << 6) | d);
    }
    if (rem >= 2) {
        int a = sextet((unsigned char)in[full]), b = sextet((unsigned char)in[full + 1]);
        int c = rem == 3 ? sextet((unsigned char)in[full + 2]) : 0;
        if (a < 0 || b < 0 || c < 0)
            return NULL;
        /* Strict: the bits past the last whole octet must be zero, so each
         * octet string has exactly one encoding. */
        if (rem == 2 && (b & 15) != 0)
            return NULL;
        if (rem == 3 && (c & 3) != 0)
            return NULL;
        *o++ = (unsigned char)((a << 2) | (b >> 4));
        if (rem == 3)
            *o++ = (unsigned char)(((b & 15) << 4) | (c >> 2));
    }
    *o = '\0';
    if (out_len)
        *out_len = (size_t)(o - out);
    return out;
}
