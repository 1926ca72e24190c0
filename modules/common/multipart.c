/* multipart/form-data (RFC 7578 over RFC 2046), parsed incrementally.
 *
 * Only what a form upload needs: Content-Disposition form-data with name
 * and filename, and Content-Type. The parser keeps a small buffer: part
 * bodies pass through it and go to the caller as they arrive, holding back
 * only the bytes that could be the start of the next delimiter. */
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

/* ------------------------------------------------------------ part headers */

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
    const char *err;
} multipart_reader;

static int fail(multipart_reader *r, const char *err)
{
    r->err = err;
    return -1;
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

/* ------------------------------------------------------------ stream */

/* Part bodies flow through this buffer; it must hold a whole header
 * section plus a delimiter. */
#define MULTIPART_BUFFER (4 * MULTIPART_MAX_HEADER_BYTES)

typedef enum {
    MP_PREAMBLE,        /* before the first delimiter: discarded */
    MP_AFTER_DELIMITER, /* "--" (close) or padding + CRLF (a part) */
    MP_HEADERS,
    MP_BODY,
    MP_EPILOGUE,        /* after the close delimiter: ignored (RFC 2046) */
    MP_FAILED
} multipart_state;

struct bl_multipart_stream {
    apr_pool_t *pool;
    const bl_multipart_callbacks *cb;
    void *ctx;
    const char *delimiter;       /* "\r\n--" boundary */
    size_t delimiter_len;
    int max_parts, parts;
    multipart_state state;
    int padding;                 /* after a delimiter: padding seen */
    int header_lines;
    size_t header_bytes;
    bl_multipart_part part;      /* the current part's headers */
    char *buf;
    size_t pos, len;             /* unprocessed bytes: buf[pos..len) */
    apr_off_t buf_offset;        /* stream offset of buf[0] */
    int result;                  /* the failure every later call repeats */
    const char *err;
};

static int stream_fail(bl_multipart_stream *s, const char *err)
{
    s->state = MP_FAILED;
    s->err = err;
    s->result = BL_MULTIPART_ERROR;
    return BL_MULTIPART_ERROR;
}

static int stream_abort(bl_multipart_stream *s)
{
    s->state = MP_FAILED;
    s->err = "stopped by the caller";
    s->result = BL_MULTIPART_ABORTED;
    return BL_MULTIPART_ABORTED;
}

bl_multipart_stream *bl_multipart_stream_create(apr_pool_t *p, const char *boundary,
                                                int max_parts,
                                                const bl_multipart_callbacks *cb,
                                                void *ctx)
{
    bl_multipart_stream *s;

    if (!boundary || !*boundary || strlen(boundary) > MULTIPART_MAX_BOUNDARY)
        return NULL;
    s = apr_pcalloc(p, sizeof *s);
    s->pool = p;
    s->cb = cb;
    s->ctx = ctx;
    s->delimiter = apr_pstrcat(p, "\r\n--", boundary, NULL);
    s->delimiter_len = strlen(s->delimiter);
    s->max_parts = max_parts;
    s->state = MP_PREAMBLE;
    s->buf = apr_palloc(p, MULTIPART_BUFFER);
    /* A CRLF in front makes a delimiter at the very start look like any
     * other; the preamble it then belongs to is discarded anyway. */
    memcpy(s->buf, "\r\n", 2);
    s->len = 2;
    s->buf_offset = -2;
    return s;
}

/* Hands buf[from..to) of the current part to the caller. */
static int emit_data(bl_multipart_stream *s, size_t from, size_t to)
{
    if (s->state != MP_BODY || to <= from || !s->cb->part_data)
        return 0;
    return s->cb->part_data(s->ctx, s->buf + from, to - from,
                            s->buf_offset + (apr_off_t)from);
}

/* Preamble or body: up to the next delimiter. Returns 1 when it moved to
 * the next state, 0 when it needs more bytes, or a failure. */
static int step_body(bl_multipart_stream *s)
{
    size_t at = find_bytes(s->buf, s->len, s->pos, s->delimiter, s->delimiter_len);

    if (at < s->len) {
        if (emit_data(s, s->pos, at))
            return stream_abort(s);
        if (s->state == MP_BODY && s->cb->part_end && s->cb->part_end(s->ctx))
            return stream_abort(s);
        s->pos = at + s->delimiter_len;
        s->state = MP_AFTER_DELIMITER;
        s->padding = 0;
        return 1;
    }
    /* The last delimiter_len - 1 bytes may begin a delimiter: keep them. */
    if (s->len - s->pos >= s->delimiter_len) {
        size_t keep_from = s->len - (s->delimiter_len - 1);
        if (emit_data(s, s->pos, keep_from))
            return stream_abort(s);
        s->pos = keep_from;
    }
    return 0;
}

static int step_after_delimiter(bl_multipart_stream *s)
{
    if (!s->padding) {
        if (s->len - s->pos < 2)
            return 0;
        if (memcmp(s->buf + s->pos, "--", 2) == 0) {
            s->state = MP_EPILOGUE;
            return 1;
        }
        s->padding = 1;
    }
    /* RFC 2046 transport padding before the line break. */
    while (s->pos < s->len && (s->buf[s->pos] == ' ' || s->buf[s->pos] == '\t'))
        s->pos++;
    if (s->len - s->pos < 2)
        return 0;
    if (memcmp(s->buf + s->pos, "\r\n", 2) != 0)
        return stream_fail(s, "boundary line not followed by CRLF");
    s->pos += 2;
    if (s->parts >= s->max_parts)
        return stream_fail(s, apr_psprintf(s->pool, "too many parts (at most %d)",
                                           s->max_parts));
    memset(&s->part, 0, sizeof s->part);
    s->header_lines = 0;
    s->header_bytes = 0;
    s->state = MP_HEADERS;
    return 1;
}

static int step_headers(bl_multipart_stream *s)
{
    multipart_reader r;
    size_t eol = find_bytes(s->buf, s->len, s->pos, "\r\n", 2);

    if (eol == s->len) {
        if (s->header_bytes + (s->len - s->pos) > MULTIPART_MAX_HEADER_BYTES)
            return stream_fail(s, "part header section too large");
        return 0;
    }
    s->header_bytes += eol - s->pos + 2;
    if (s->header_bytes > MULTIPART_MAX_HEADER_BYTES)
        return stream_fail(s, "part header section too large");
    if (eol == s->pos) {
        s->pos = eol + 2;
        if (!s->part.name)
            return stream_fail(s, "part without a Content-Disposition form-data name");
        s->parts++;
        s->state = MP_BODY;
        if (s->cb->part_begin && s->cb->part_begin(s->ctx, &s->part))
            return stream_abort(s);
        return 1;
    }
    if (++s->header_lines > MULTIPART_MAX_HEADER_LINES)
        return stream_fail(s, "too many part header lines");
    memset(&r, 0, sizeof r);
    r.pool = s->pool;
    if (parse_header_line(&r, s->buf + s->pos, eol - s->pos, &s->part) < 0)
        return stream_fail(s, r.err);
    s->pos = eol + 2;
    return 1;
}

/* Processes what is buffered as far as it goes. */
static int process(bl_multipart_stream *s)
{
    int rc = 1;

    while (rc == 1) {
        switch (s->state) {
        case MP_PREAMBLE:
        case MP_BODY:
            rc = step_body(s);
            break;
        case MP_AFTER_DELIMITER:
            rc = step_after_delimiter(s);
            break;
        case MP_HEADERS:
            rc = step_headers(s);
            break;
        case MP_EPILOGUE:
            s->pos = s->len;
            rc = 0;
            break;
        default:
            return s->result;
        }
    }
    return rc;
}

int bl_multipart_feed(bl_multipart_stream *s, const char *data, size_t len)
{
    while (len > 0) {
        size_t n;
        int rc;

        if (s->state == MP_FAILED)
            return s->result;
        /* Move what is left to the front, then fill up. */
        if (s->pos > 0) {
            memmove(s->buf, s->buf + s->pos, s->len - s->pos);
            s->len -= s->pos;
            s->buf_offset += (apr_off_t)s->pos;
            s->pos = 0;
        }
        n = MULTIPART_BUFFER - s->len;
        if (n > len)
            n = len;
        memcpy(s->buf + s->len, data, n);
        s->len += n;
        data += n;
        len -= n;
        if ((rc = process(s)) < 0)
            return rc;
    }
    return s->state == MP_FAILED ? s->result : 0;
}

int bl_multipart_finish(bl_multipart_stream *s)
{
    switch (s->state) {
    case MP_EPILOGUE:
        return 0;
    case MP_FAILED:
        return s->result;
    case MP_PREAMBLE:
        return stream_fail(s, "body does not contain the boundary");
    case MP_HEADERS:
        return stream_fail(s, "part headers not terminated");
    default:
        return stream_fail(s, "missing final boundary");
    }
}

const char *bl_multipart_stream_error(const bl_multipart_stream *s)
{
    return s->err;
}

/* ------------------------------------------------------------ whole body */

typedef struct {
    const char *body;
    apr_array_header_t *found;
    bl_multipart_part *current;
} whole_body;

static int whole_part_begin(void *ctx, const bl_multipart_part *part)
{
    whole_body *w = ctx;

    w->current = apr_array_push(w->found);
    *w->current = *part;
    w->current->data = w->body;
    w->current->len = 0;
    return 0;
}

/* Parts' data are not copied: the first piece fixes where they start. */
static int whole_part_data(void *ctx, const char *data, size_t len, apr_off_t offset)
{
    whole_body *w = ctx;

    (void)data;
    if (w->current->len == 0)
        w->current->data = w->body + offset;
    w->current->len += len;
    return 0;
}

int bl_multipart_parse(apr_pool_t *p, const char *body, size_t len,
                       const char *boundary, int max_parts,
                       bl_multipart_part **parts, const char **err)
{
    static const bl_multipart_callbacks cb = {whole_part_begin, whole_part_data, NULL};
    whole_body w;
    bl_multipart_stream *s;

    *parts = NULL;
    if (!body || !(s = bl_multipart_stream_create(p, boundary, max_parts, &cb, &w))) {
        *err = "missing or invalid boundary";
        return -1;
    }
    w.body = body;
    w.found = apr_array_make(p, 4, sizeof(bl_multipart_part));
    w.current = NULL;
    if (bl_multipart_feed(s, body, len) != 0 || bl_multipart_finish(s) != 0) {
        *err = bl_multipart_stream_error(s);
        return -1;
    }
    *parts = (bl_multipart_part *)w.found->elts;
    return w.found->nelts;
}
