/* Validation of untrusted strings. */
#include "validate.h"

#include <string.h>

size_t bl_utf8_sequence_length(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t need, i;
    unsigned long cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) { need = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { need = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 4; cp = c & 0x07; }
    else return 0;
    if (avail < need)
        return 0;
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return need;
}

int bl_valid_utf8(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t n = bl_utf8_sequence_length((const unsigned char *)s + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

size_t bl_utf8_chars(const char *s, size_t len)
{
    size_t i, count = 0;

    /* Every byte that is not a continuation byte starts a code point. */
    for (i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            count++;
    return count;
}

static int is_ascii_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext (dot-atom local part without quoting). */
static int is_local_char(char c)
{
    return is_ascii_alnum(c) || (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

static int valid_local_part(const char *s, size_t len)
{
    size_t i;

    if (len < 1 || len > 64 || s[0] == '.' || s[len - 1] == '.')
        return 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return 0;
        } else if (!is_local_char(s[i])) {
            return 0;
        }
    }
    return 1;
}

static int valid_domain(const char *s, size_t len)
{
    size_t i, label_len = 0, labels = 1;

    if (len < 3 || len > 253)
        return 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (label_len == 0 || s[i - 1] == '-')
                return 0;
            label_len = 0;
            labels++;
            continue;
        }
        if (!is_ascii_alnum(s[i]) && s[i] != '-')
            return 0;
        if (s[i] == '-' && label_len == 0)
            return 0;
        if (++label_len > 63)
            return 0;
    }
    return labels >= 2 && label_len > 0 && s[len - 1] != '-';
}

int bl_valid_email(const char *s)
{
    const char *at;
    size_t len;

    if (!s)
        return 0;
    len = strlen(s);
    at = strchr(s, '@');
    if (len > 254 || !at || strchr(at + 1, '@'))
        return 0;
    return valid_local_part(s, (size_t)(at - s)) &&
           valid_domain(at + 1, len - (size_t)(at - s) - 1);
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int bl_valid_uuid(const char *s)
{
    int i;

    if (!s)
        return 0;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_hex(s[i])) {
            return 0;
        }
    }
    return s[36] == '\0';
}

/* Reads exactly n decimal digits; returns the value or -1. */
static int read_digits(const char *s, int n)
{
    int i, v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* YYYY-MM-DD at s (exactly 10 bytes, no terminator check). */
static int valid_date_prefix(const char *s)
{
    int year = read_digits(s, 4), month, day;

    if (year < 0 || s[4] != '-' || s[7] != '-')
        return 0;
    month = read_digits(s + 5, 2);
    day = read_digits(s + 8, 2);
    if (month < 1 || month > 12 || day < 1)
        return 0;
    return day <= days_in_month(year, month);
}

int bl_valid_date(const char *s)
{
    if (!s || strlen(s) != 10)
        return 0;
    return valid_date_prefix(s);
}

/* HH:MM:SS at s. Leap second 60 is refused: the stores behind the API do not
 * keep it and a client never needs to send one. */
static int valid_time_prefix(const char *s)
{
    int h = read_digits(s, 2), m = read_digits(s + 3, 2), sec = read_digits(s + 6, 2);

    return s[2] == ':' && s[5] == ':' && h >= 0 && h <= 23 && m >= 0 && m <= 59 &&
           sec >= 0 && sec <= 59;
}

int bl_valid_rfc3339(const char *s)
{
    const char *t;
    int oh, om;

    if (!s || strnlen(s, 11) < 11 || !valid_date_prefix(s))
        return 0;
    if (s[10] != 'T' && s[10] != 't')
        return 0;
    t = s + 11;
    if (strnlen(t, 8) < 8 || !valid_time_prefix(t))
        return 0;
    t += 8;
    if (*t == '.') {
        const char *frac = ++t;
        while (*t >= '0' && *t <= '9')
            t++;
        if (t == frac || t - frac > 9)
            return 0;
    }
    if ((*t == 'Z' || *t == 'z') && t[1] == '\0')
        return 1;
    if ((*t != '+' && *t != '-') || strlen(t) != 6 || t[3] != ':')
        return 0;
    oh = read_digits(t + 1, 2);
    om = read_digits(t + 4, 2);
    return oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

int bl_valid_enum(const char *s, const char *const *allowed)
{
    if (!s || !allowed)
        return 0;
    for (; *allowed; allowed++)
        if (strcmp(s, *allowed) == 0)
            return 1;
    return 0;
}

int bl_valid_length(const char *s, size_t min_chars, size_t max_chars)
{
    size_t len, chars;

    if (!s)
        return 0;
    len = strlen(s);
    if (!bl_valid_utf8(s, len))
        return 0;
    chars = bl_utf8_chars(s, len);
    return chars >= min_chars && chars <= max_chars;
}
