/* multipart/form-data (RFC 7578 over RFC 2046) on a complete body.
 *
 * Only what a form upload needs: Content-Disposition form-data with name
 * and filename, and Content-Type. Parts' data are not copied. */
#include "multipart.h"

#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_tables.h>

#define MULTIPART_MAX_BOUNDARY 70
#define MULTIPART_MAX_HEADER_BYTES 4096   /* one part's header section */
#define MULTIPART_MAX_HEADER_LINES 8

/* ------------------------------------------------------------ parameters */

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* RFC 2046 bchars, without the space that may not end a boundary. */
static int is_bchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("'()+_,-./:=? ", c) != NULL);
}

/* Reads a parameter value (token or quoted-string) at *s into the pool,
 * advancing *s past it. NULL when malformed. */
static const char *read_param_value(apr_pool_t *p, const char **s)
{
    const char *in = *s;
    char *out, *o;

    if (*in != '"') {
        size_t n = strcspn(in, ";");
        while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\t'))
            n--;
        *s = in + strcspn(in, ";");
        return n ? apr_pstrmemdup(p, in, n) : NULL;
    }
    out = o = apr_palloc(p, strlen(in));
    for (in++; *in && *in != '"'; in++) {
        if (*in == '\\' && in[1])
            in++;
        *o++ = *in;
    }
    if (*in != '"')
        return NULL;
    *o = '\0';
    *s = skip_ws(in + 1);
    return out;
}

/* Finds parameter name (case-insensitive) in "type; a=b; c=\"d\"". Returns
 * NULL when absent; *malformed is set when the parameter list is broken. */
static const char *find_param(apr_pool_t *p, const char *header, const char *name,
                              int *malformed)
{
    const char *s = strchr(header, ';');
    size_t name_len = strlen(name);
    const char *found = NULL;

    *malformed = 0;
    while (s && *s == ';') {
        const char *key = skip_ws(s + 1), *eq = strchr(key, '='), *value;
        size_t key_len;
        if (!eq) {
            *malformed = 1;
            return NULL;
        }
        key_len = (size_t)(eq - key);
        while (key_len > 0 && (key[key_len - 1] == ' ' || key[key_len - 1] == '\t'))
            key_len--;
        s = skip_ws(eq + 1);
        value = read_param_value(p, &s);
        if (!value || (*s && *s != ';')) {
            *malformed = 1;
            return NULL;
        }
        /* A repeated parameter is ambiguous: refuse rather than pick one. */
        if (key_len == name_len && strncasecmp(key, name, name_len) == 0) {
            if (found) {
                *malformed = 1;
                return NULL;
            }
            found = value;
        }
    }
    return found;
}

const char *bl_multipart_boundary(apr_pool_t *p, const char *content_type)
{
    static const char type[] = "multipart/form-data";
    const char *boundary;
    size_t len, i;
    int malformed;

    if (!content_type)
        return NULL;
    content_type = skip_ws(content_type);
    if (strncasecmp(content_type, type, sizeof type - 1) != 0)
        return NULL;
    if (*skip_ws(content_type + sizeof type - 1) != ';')
        return NULL;
    boundary = find_param(p, content_type, "boundary", &malformed);
    if (!boundary || malformed)
        return NULL;
    len = strlen(boundary);
    if (len < 1 || len > MULTIPART_MAX_BOUNDARY || boundary[len - 1] == ' ')
        return NULL;
    for (i = 0; i < len; i++)
        if (!is_bchar(boundary[i]))
            return NULL;
    return boundary;
}

/* ------------------------------------------------------------ body */

/* First occurrence of needle in hay[from..len), or len when absent. The
 * needle is at most 74 bytes, so the plain scan stays linear enough. */
static size_t find_bytes(const char *hay, size_t len, size_t from,
                         const char *needle, size_t needle_len)
{
    size_t i;

    if (needle_len == 0 || len < needle_len)
        return len;
    for (i = from; i + needle_len <= len; i++) {
        const char *hit = memchr(hay + i, needle[0], len - needle_len + 1 - i);
        if (!hit)
            return len;
        i = (size_t)(hit - hay);
        if (memcmp(hit, needle, needle_len) == 0)
            return i;
    }
    return len;
}

typedef struct {
    apr_pool_t *pool;
    const char *body;
    size_t len;
    const char *delimiter;       /* "\r\n--" boundary */
    size_t delimiter_len;
    const char *err;
} multipart_reader;

static int fail(multipart_reader *r, const char *err)
{
    r->err = err;
    return -1;
}

/* After a delimiter at pos: returns 1 for the close delimiter ("--"),
 * 0 for a part delimiter (then *next is past its CRLF), -1 on error. */
static int after_delimiter(multipart_reader *r, size_t pos, size_t *next)
{
    if (pos + 2 <= r->len && memcmp(r->body + pos, "--", 2) == 0)
        return 1;
    /* RFC 2046 transport padding before the line break. */
    while (pos < r->len && (r->body[pos] == ' ' || r->body[pos] == '\t'))
        pos++;
    if (pos + 2 > r->len || memcmp(r->body + pos, "\r\n", 2) != 0)
        return fail(r, pos >= r->len ? "missing final boundary"
                                     : "boundary line not followed by CRLF");
    *next = pos + 2;
    return 0;
}

static int has_control_chars(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return 1;
    return 0;
}

/* Fills part's name/filename/content_type from one header line. */
static int parse_header_line(multipart_reader *r, const char *line, size_t len,
                             bl_multipart_part *part)
{
    const char *colon = memchr(line, ':', len);
    const char *name, *value;
    int malformed;

    if (!colon || colon == line || has_control_chars(line, len))
        return fail(r, "malformed part header");
    name = apr_pstrmemdup(r->pool, line, (size_t)(colon - line));
    value = skip_ws(apr_pstrmemdup(r->pool, colon + 1, len - (size_t)(colon + 1 - line)));
    if (strcasecmp(name, "Content-Disposition") == 0) {
        if (strncasecmp(value, "form-data", 9) != 0 || *skip_ws(value + 9) != ';')
            return fail(r, "part Content-Disposition is not form-data");
        part->name = find_param(r->pool, value, "name", &malformed);
        if (!malformed)
            part->filename = find_param(r->pool, value, "filename", &malformed);
        if (malformed)
            return fail(r, "malformed Content-Disposition parameters");
    } else if (strcasecmp(name, "Content-Type") == 0) {
        part->content_type = value;
    }
    return 0;
}

/* Reads the header section at *pos up to and past its blank line. */
static int parse_part_headers(multipart_reader *r, size_t *pos, bl_multipart_part *part)
{
    size_t limit = r->len - *pos < MULTIPART_MAX_HEADER_BYTES
                   ? r->len : *pos + MULTIPART_MAX_HEADER_BYTES;
    int lines = 0;

    for (;;) {
        size_t eol = find_bytes(r->body, limit, *pos, "\r\n", 2);
        if (eol == limit)
            return fail(r, limit == r->len ? "part headers not terminated"
                                           : "part header section too large");
        if (eol == *pos) {
            *pos = eol + 2;
            break;
        }
        if (++lines > MULTIPART_MAX_HEADER_LINES)
            return fail(r, "too many part header lines");
        if (parse_header_line(r, r->body + *pos, eol - *pos, part) < 0)
            return -1;
        *pos = eol + 2;
    }
    if (!part->name)
        return fail(r, "part without a Content-Disposition form-data name");
    return 0;
}

/* Position of the first delimiter line: at the very start, or after a
 * preamble ending in CRLF. */
static size_t first_delimiter(const multipart_reader *r)
{
    const char *dash_boundary = r->delimiter + 2;
    size_t dash_len = r->delimiter_len - 2;

    if (r->len >= dash_len && memcmp(r->body, dash_boundary, dash_len) == 0)
        return dash_len;
    {
        size_t at = find_bytes(r->body, r->len, 0, r->delimiter, r->delimiter_len);
        return at == r->len ? 0 : at + r->delimiter_len;
    }
}

int bl_multipart_parse(apr_pool_t *p, const char *body, size_t len,
                       const char *boundary, int max_parts,
                       bl_multipart_part **parts, const char **err)
{
    multipart_reader r;
    apr_array_header_t *found;
    size_t pos = 0;
    int state;

    *parts = NULL;
    if (!body || !boundary || !*boundary || strlen(boundary) > MULTIPART_MAX_BOUNDARY) {
        *err = "missing or invalid boundary";
        return -1;
    }
    memset(&r, 0, sizeof r);
    r.pool = p;
    r.body = body;
    r.len = len;
    r.delimiter = apr_pstrcat(p, "\r\n--", boundary, NULL);
    r.delimiter_len = strlen(r.delimiter);
    found = apr_array_make(p, 4, sizeof(bl_multipart_part));

    pos = first_delimiter(&r);
    if (pos == 0) {
        *err = "body does not contain the boundary";
        return -1;
    }
    while ((state = after_delimiter(&r, pos, &pos)) == 0) {
        bl_multipart_part part;
        size_t end;

        if (found->nelts >= max_parts) {
            *err = apr_psprintf(p, "too many parts (at most %d)", max_parts);
            return -1;
        }
        memset(&part, 0, sizeof part);
        if (parse_part_headers(&r, &pos, &part) < 0)
            break;
        end = find_bytes(body, len, pos, r.delimiter, r.delimiter_len);
        if (end == len) {
            fail(&r, "missing final boundary");
            break;
        }
        part.data = body + pos;
        part.len = end - pos;
        *(bl_multipart_part *)apr_array_push(found) = part;
        pos = end + r.delimiter_len;
    }
    if (state != 1) {
        *err = r.err;
        return -1;
    }
    /* Anything after the close delimiter is an epilogue, which RFC 2046
     * tells us to ignore. */
    *parts = (bl_multipart_part *)found->elts;
    return found->nelts;
}
