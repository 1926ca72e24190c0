/* Redaction of personal identifiers: see redact.h. The text is scanned
 * once; at each word start the kinds are tried in turn (email, date, phone,
 * name) and the first that matches is replaced. */
#include "redact.h"

#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    apr_pool_t *p;
    char *buf;
    apr_size_t len, cap;
} out_buf;

static void out_add(out_buf *o, const char *s, apr_size_t n)
{
    if (o->len + n + 1 > o->cap) {
        apr_size_t cap = o->cap ? o->cap : 64;
        char *nb;
        while (cap < o->len + n + 1)
            cap *= 2;
        nb = apr_palloc(o->p, cap);
        memcpy(nb, o->buf, o->len);
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
/* Letters, counting every byte of a multi-byte UTF-8 sequence as one. */
static int is_letter(unsigned char c) { return is_lower(c) || is_upper(c) || c >= 0x80; }
static int is_alnum(unsigned char c) { return is_letter(c) || is_digit(c); }
static unsigned char lower(unsigned char c) { return is_upper(c) ? (unsigned char)(c + 32) : c; }

static int is_local_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int is_domain_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '-';
}

/* Length of an email address at s (s starts a word), or 0. */
static apr_size_t match_email(const unsigned char *s)
{
    apr_size_t i = 0, at, end, last_dot = 0, tld = 0;

    while (is_local_char(s[i]))
        i++;
    if (i == 0 || s[i] != '@')
        return 0;
    at = i++;
    while (is_domain_char(s[i])) {
        if (s[i] == '.')
            last_dot = i;
        i++;
    }
    end = i;
    /* A sentence's full stop is not part of the domain. */
    while (end > at + 1 && (s[end - 1] == '.' || s[end - 1] == '-'))
        end--;
    if (last_dot >= end)
        for (last_dot = 0, i = at + 1; i < end; i++)
            if (s[i] == '.')
                last_dot = i;
    if (last_dot <= at + 1)
        return 0;
    for (i = last_dot + 1; i < end; i++)
        if (is_letter(s[i]))
            tld++;
    return tld >= 2 ? end : 0;
}

/* A date at s: digit groups with one separator (- / .), shaped Y-M-D
 * (4,1-2,1-2) or D/M/Y (1-2,1-2,2 or 4). Fills the three numbers in the
 * order written. Returns its length, or 0. */
static apr_size_t match_date(const unsigned char *s, int *a, int *b, int *c, int *year_first)
{
    int v[3] = {0, 0, 0}, w[3] = {0, 0, 0}, g;
    unsigned char sep = 0;
    apr_size_t i = 0;

    for (g = 0; g < 3; g++) {
        while (is_digit(s[i]) && w[g] < 5) {
            v[g] = v[g] * 10 + (s[i] - '0');
            w[g]++;
            i++;
        }
        if (w[g] == 0 || is_digit(s[i]))
            return 0;
        if (g < 2) {
            if (s[i] != '-' && s[i] != '/' && s[i] != '.')
                return 0;
            if (sep && s[i] != sep)
                return 0;
            sep = s[i++];
        }
    }
    if (is_alnum(s[i]))
        return 0;
    if (w[0] == 4 && w[1] <= 2 && w[2] <= 2)
        *year_first = 1;
    else if (w[0] <= 2 && w[1] <= 2 && (w[2] == 2 || w[2] == 4))
        *year_first = 0;
    else
        return 0;
    *a = v[0];
    *b = v[1];
    *c = v[2];
    return i;
}

/* Length of a phone number at s, or 0. */
static apr_size_t match_phone(const unsigned char *s)
{
    apr_size_t i = 0, end = 0;
    int digits = 0;

    if (s[0] == '+' || s[0] == '(')
        i = 1;
    if (!is_digit(s[i]) && !(s[0] == '+' && s[i] == '('))
        return 0;
    while (s[i]) {
        if (is_digit(s[i])) {
            digits++;
            end = i + 1;
        } else if (s[i] == ' ' || s[i] == '-' || s[i] == '.' || s[i] == '(' || s[i] == ')') {
            /* One separator between digit groups (two for ") "). */
            if (!is_digit(s[i + 1]) && !(s[i + 1] == ' ' && is_digit(s[i + 2]))
                && !(s[i + 1] == '(' && is_digit(s[i + 2])))
                break;
        } else {
            break;
        }
        i++;
        if (digits > 15)
            return 0;
    }
    if (digits < 9 || is_letter(s[end]))
        return 0;
    return end;
}

/* Does one of the words before pos (within a few) say "born" or "birth"? */
static int after_birth_word(const char *text, apr_size_t pos)
{
    static const char *const words[] = {"born", "birth", "birthday", "dob", "b.", NULL};
    apr_size_t from = pos > 24 ? pos - 24 : 0;
    char window[32];
    apr_size_t n = pos - from, i;
    int k;

    for (i = 0; i < n; i++)
        window[i] = (char)lower((unsigned char)text[from + i]);
    window[n] = '\0';
    for (k = 0; words[k]; k++)
        if (strstr(window, words[k]))
            return 1;
    return 0;
}

static int is_dob(const char *dob, int a, int b, int c, int year_first)
{
    int y, m, d, yy;

    if (!dob || strlen(dob) != 10)
        return 0;
    y = atoi(dob);
    m = atoi(dob + 5);
    d = atoi(dob + 8);
    if (year_first)
        return a == y && b == m && c == d;
    yy = c < 100 ? y % 100 : y;
    return c == yy && ((a == d && b == m) || (a == m && b == d));
}

/* Length of the word at s (letters, apostrophes and hyphens inside). */
static apr_size_t word_len(const unsigned char *s)
{
    apr_size_t i = 0;

    while (is_letter(s[i]) || ((s[i] == '\'' || s[i] == '-') && i > 0 && is_letter(s[i + 1])))
        i++;
    return i;
}

static int word_is_name(const unsigned char *w, apr_size_t n, const char *const *names)
{
    int k;

    if (!names)
        return 0;
    for (k = 0; names[k]; k++) {
        const unsigned char *nm = (const unsigned char *)names[k];
        /* Each word of the name on its own. */
        while (*nm) {
            apr_size_t len, i;
            while (*nm && !is_letter(*nm))
                nm++;
            len = word_len(nm);
            if (len == 0)
                break;
            if (len >= 2 && len == n) {
                for (i = 0; i < n && lower(w[i]) == lower(nm[i]); i++)
                    ;
                if (i == n)
                    return 1;
            }
            nm += len;
        }
    }
    return 0;
}

/* After a phrase that introduces a name, the number of bytes of the
 * name that follows (capitalised words, at most three, or one word). */
static apr_size_t introduced_name(const unsigned char *s)
{
    apr_size_t i = 0, end = 0, len;
    int words = 0;

    while (s[i] == ' ')
        i++;
    while (words < 3 && (len = word_len(s + i)) > 0) {
        if (words > 0 && !is_upper(s[i]))
            break;
        end = i + len;
        words++;
        if (!is_upper(s[i]))
            break;
        if (s[end] != ' ')
            break;
        i = end + 1;
    }
    return end;
}

/* Does an introducing phrase end right at pos (case-insensitive)? */
static int introduces_name(const char *text, apr_size_t pos)
{
    static const char *const phrases[] = {"name is", "name's", "call me", "i'm called",
                                          "i am called", "name:", NULL};
    int k;

    for (k = 0; phrases[k]; k++) {
        apr_size_t n = strlen(phrases[k]), i;
        if (pos < n)
            continue;
        for (i = 0; i < n && lower((unsigned char)text[pos - n + i]) == (unsigned char)phrases[k][i]; i++)
            ;
        if (i == n && (pos == n || !is_alnum((unsigned char)text[pos - n - 1])))
            return 1;
    }
    return 0;
}

const char *bl_redact(apr_pool_t *p, const char *text, const char *const *names,
                      const char *dob)
{
    out_buf o = {p, NULL, 0, 0};
    const unsigned char *s = (const unsigned char *)text;
    apr_size_t i = 0, copied = 0, n;
    int changed = 0;

    if (!text)
        return NULL;
    while (s[i]) {
        int a, b, c, year_first;
        const char *with = NULL;

        /* Only at the start of a word (or of a "+" / "(" phone). */
        if (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '.' || s[i - 1] == '_'
                      || s[i - 1] == '@' || s[i - 1] == '+' || s[i - 1] == '-')) {
            i++;
            continue;
        }
        n = 0;
        if ((n = match_email(s + i)) > 0) {
            with = "[email]";
        } else if ((n = match_date(s + i, &a, &b, &c, &year_first)) > 0) {
            if (is_dob(dob, a, b, c, year_first) || after_birth_word(text, i))
                with = "[date of birth]";
        } else if ((n = match_phone(s + i)) > 0) {
            with = "[phone]";
        } else if ((n = word_len(s + i)) > 0) {
            if (word_is_name(s + i, n, names))
                with = "[name]";
        }
        if (!with && i > 0 && s[i - 1] == ' '
            && introduces_name(text, i - 1) && (n = introduced_name(s + i)) > 0)
            with = "[name]";
        if (with) {
            out_add(&o, text + copied, i - copied);
            out_add(&o, with, strlen(with));
            i += n;
            copied = i;
            changed = 1;
        } else {
            i += n ? n : 1;
        }
    }
    if (!changed)
        return text;
    out_add(&o, text + copied, i - copied);
    return o.buf;
}
