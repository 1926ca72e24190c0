/* RFC 5322 messages for email notifications.
 *
 * Titles and bodies are user-influenced text: no byte of them may end a
 * header line. The title is folded to one line and, unless it is short
 * printable ASCII, written as RFC 2047 encoded words; the recipient must be
 * a plain address; the body has CRLF line ends and goes quoted-printable
 * only when a line is longer than SMTP allows. */
#include "notify_private.h"
#include "validate.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_base64.h>

/* RFC 5322 2.1.1: a line is at most 998 octets without its CRLF. */
#define BL_MAX_LINE 998
/* Longest title written as is; longer ones are encoded and folded. */
#define BL_MAX_PLAIN_SUBJECT 900
/* Octets per encoded word: 45 bytes -> 60 base64 chars, 72 with the
 * "=?UTF-8?B?" and "?=" around them (RFC 2047 allows 75). */
#define BL_WORD_OCTETS 45
/* Quoted-printable lines (RFC 2045 6.7): at most 76 chars with the '='. */
#define BL_QP_LINE 75

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

const char *bl_mail_parse_from(apr_pool_t *p, const char *from,
                               const char **addr, const char **domain)
{
    const char *lt = strrchr(from, '<');
    const char *a;

    if (has_control(from))
        return "control characters are not allowed";
    for (a = from; *a; a++)
        if ((unsigned char)*a >= 0x80)
            return "use ASCII only";
    if (lt) {
        size_t len = strlen(lt + 1);
        if (len < 2 || lt[len] != '>')
            return "expected \"Name <address>\" or address";
        a = apr_pstrndup(p, lt + 1, len - 1);
    }
    else {
        a = from;
    }
    if (!bl_valid_email(a))
        return "not a valid address";
    *addr = a;
    *domain = strrchr(a, '@') + 1;
    return NULL;
}

/* "Tue, 24 Nov 2026 02:20:28 +0000", independent of the locale. */
static const char *rfc5322_date(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t tm;

    apr_time_exp_gmt(&tm, t);
    return apr_psprintf(p, "%s, %02d %s %d %02d:%02d:%02d +0000",
                        apr_day_snames[tm.tm_wday], tm.tm_mday,
                        apr_month_snames[tm.tm_mon], tm.tm_year + 1900,
                        tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The title on one line: each run of control characters (CR, LF, TAB ...)
 * becomes one space, so it can never start a new header. */
static char *one_line(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, strlen(s) + 1);
    char *o = out;
    int in_ctl = 0;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) {
            if (!in_ctl)
                *o++ = ' ';
            in_ctl = 1;
            continue;
        }
        in_ctl = 0;
        *o++ = (char)c;
    }
    /* Trailing white space would be lost or misread by mail readers. */
    while (o > out && o[-1] == ' ')
        o--;
    *o = '\0';
    return out;
}

static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* Bytes of s that fit in one encoded word without splitting a UTF-8
 * sequence (words are decoded separately, RFC 2047 section 5). */
static size_t word_chunk(const char *s, size_t left)
{
    size_t n = left < BL_WORD_OCTETS ? left : BL_WORD_OCTETS;

    while (n < left && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n ? n : (left < BL_WORD_OCTETS ? left : BL_WORD_OCTETS);
}

/* RFC 2047 B encoded words, one per continuation line. */
static const char *encoded_words(apr_pool_t *p, const char *s)
{
    apr_array_header_t *words = apr_array_make(p, 4, sizeof(const char *));
    size_t left = strlen(s);

    while (left > 0) {
        size_t n = word_chunk(s, left);
        char *b64 = apr_palloc(p, apr_base64_encode_len((int)n));

        apr_base64_encode(b64, s, (int)n);
        APR_ARRAY_PUSH(words, const char *) = apr_pstrcat(p, "=?UTF-8?B?", b64, "?=", NULL);
        s += n;
        left -= n;
    }
    return apr_array_pstrcat(p, words, '\n');
}

static const char *subject(apr_pool_t *p, const char *title)
{
    char *line = one_line(p, title ? title : "");
    const char *words;
    char *out, *o;

    if (printable_ascii(line) && strlen(line) <= BL_MAX_PLAIN_SUBJECT)
        return line;
    /* Fold between words: "word1\r\n word2". */
    words = encoded_words(p, line);
    out = o = apr_palloc(p, strlen(words) * 3 + 1);
    for (; *words; words++) {
        if (*words == '\n') {
            memcpy(o, "\r\n ", 3);
            o += 3;
            continue;
        }
        *o++ = *words;
    }
    *o = '\0';
    return out;
}

/* Body with every line end (CRLF, CR or LF) as CRLF and a final CRLF;
 * reports the longest line and whether there are 8-bit bytes. */
static char *crlf_body(apr_pool_t *p, const char *s, size_t *longest, int *eightbit)
{
    char *out = apr_palloc(p, strlen(s) * 2 + 3);
    char *o = out;
    size_t line = 0;

    *longest = 0;
    *eightbit = 0;
    for (; *s; s++) {
        if (*s == '\r' || *s == '\n') {
            if (*s == '\r' && s[1] == '\n')
                s++;
            *o++ = '\r';
            *o++ = '\n';
            line = 0;
            continue;
        }
        if ((unsigned char)*s >= 0x80)
            *eightbit = 1;
        *o++ = *s;
        if (++line > *longest)
            *longest = line;
    }
    if (o == out || o[-1] != '\n') {
        *o++ = '\r';
        *o++ = '\n';
    }
    *o = '\0';
    return out;
}

/* Quoted-printable (RFC 2045 6.7) of a CRLF-terminated body. */
static const char *quoted_printable(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 4 + 1);
    char *o = out;
    size_t col = 0;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int at_eol = (s[1] == '\r' && s[2] == '\n');
        int literal;

        if (c == '\r' && s[1] == '\n') {
            *o++ = '\r';
            *o++ = '\n';
            s++;
            col = 0;
            continue;
        }
        /* Space and tab are literal except before a line end. */
        literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
        if (col + (literal ? 1 : 3) > BL_QP_LINE) {
            memcpy(o, "=\r\n", 3);
            o += 3;
            col = 0;
        }
        if (literal) {
            *o++ = (char)c;
            col++;
        }
        else {
            *o++ = '=';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
            col += 3;
        }
    }
    *o = '\0';
    return out;
}

const char *bl_mail_format(apr_pool_t *p, const bl_mail_conf *conf,
                           const bl_notification *n, apr_time_t now,
                           const char **error)
{
    size_t longest;
    int eightbit;
    const char *body, *cte;

    if (!n->email || !bl_valid_email(n->email)) {
        *error = "recipient address is not valid";
        return NULL;
    }
    if (!bl_valid_uuid(n->id)) {
        *error = "notification id is not a uuid";
        return NULL;
    }
    body = crlf_body(p, n->body ? n->body : "", &longest, &eightbit);
    if (longest > BL_MAX_LINE) {
        body = quoted_printable(p, body);
        cte = "quoted-printable";
    }
    else {
        cte = eightbit ? "8bit" : "7bit";
    }
    return apr_pstrcat(p,
        "Date: ", rfc5322_date(p, now), "\r\n",
        "From: ", conf->from, "\r\n",
        "To: ", n->email, "\r\n",
        "Subject: ", subject(p, n->title), "\r\n",
        "Message-ID: <", n->id, "@", conf->from_domain, ">\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Content-Transfer-Encoding: ", cte, "\r\n",
        "\r\n",
        body, NULL);
}
