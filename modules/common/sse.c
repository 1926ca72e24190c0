/* Server-Sent Events parser: see sse.h. Follows the WHATWG "interpreting
 * an event stream" steps; an event not ended by a blank line before the
 * stream ends is never dispatched (so a cut stream never yields half an
 * event). */
#include "sse.h"

#include <string.h>

#define SSE_DEFAULT_MAX (64 * 1024)
#define SSE_FIELD_MAX 64        /* event names */
#define SSE_ID_MAX 256

struct bl_sse_parser {
    bl_sse_event_fn *fn;
    void *ctx;
    apr_size_t max;
    char *line;             /* the line being read, max bytes */
    apr_size_t line_len;
    char *data;             /* the event's data so far, max + 1 bytes */
    apr_size_t data_len;
    int has_data;           /* a data field was seen for this event */
    char event[SSE_FIELD_MAX + 1];
    char id[SSE_ID_MAX + 1];
    int skip_lf;            /* the previous piece ended in CR */
    int bom;                /* bytes of a leading BOM matched; 3: done */
    int status;             /* sticky non-zero result */
    unsigned long dispatched;
};

bl_sse_parser *bl_sse_parser_create(apr_pool_t *p, apr_size_t max_bytes,
                                    bl_sse_event_fn *fn, void *ctx)
{
    bl_sse_parser *sp = apr_pcalloc(p, sizeof *sp);

    sp->fn = fn;
    sp->ctx = ctx;
    sp->max = max_bytes ? max_bytes : SSE_DEFAULT_MAX;
    if (sp->max < 16)
        sp->max = 16;
    sp->line = apr_palloc(p, sp->max);
    sp->data = apr_palloc(p, sp->max + 1);
    return sp;
}

unsigned long bl_sse_events(const bl_sse_parser *sp)
{
    return sp->dispatched;
}

/* Copies at most cap bytes of value into dst (NUL-terminated). */
static void set_small(char *dst, apr_size_t cap, const char *value, apr_size_t len)
{
    if (len > cap)
        len = cap;
    memcpy(dst, value, len);
    dst[len] = '\0';
}

static int dispatch(bl_sse_parser *sp)
{
    int rv = 0;

    if (sp->has_data) {
        /* The data buffer ends in the "\n" of its last line: drop it. */
        if (sp->data_len > 0)
            sp->data_len--;
        sp->data[sp->data_len] = '\0';
        sp->dispatched++;
        rv = sp->fn(sp->ctx, sp->event[0] ? sp->event : "message", sp->data,
                    sp->data_len, sp->id);
    }
    sp->data_len = 0;
    sp->has_data = 0;
    sp->event[0] = '\0';
    return rv;
}

/* One complete line (without its end). */
static int process_line(bl_sse_parser *sp, const char *line, apr_size_t len)
{
    const char *colon, *value;
    apr_size_t name_len, value_len;

    if (len == 0)
        return dispatch(sp);
    if (line[0] == ':')
        return 0;    /* comment (keep-alive) */
    colon = memchr(line, ':', len);
    if (colon) {
        name_len = (apr_size_t)(colon - line);
        value = colon + 1;
        value_len = len - name_len - 1;
        if (value_len > 0 && *value == ' ') {
            value++;
            value_len--;
        }
    } else {
        name_len = len;
        value = line + len;
        value_len = 0;
    }
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (sp->data_len + value_len + 1 > sp->max)
            return BL_SSE_TOO_LARGE;
        memcpy(sp->data + sp->data_len, value, value_len);
        sp->data_len += value_len;
        sp->data[sp->data_len++] = '\n';
        sp->has_data = 1;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        set_small(sp->event, SSE_FIELD_MAX, value, value_len);
    } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
        /* An id holding NUL is ignored, as the standard says. */
        if (!memchr(value, '\0', value_len))
            set_small(sp->id, SSE_ID_MAX, value, value_len);
    }
    /* "retry" and anything else: nothing for us to do. */
    return 0;
}

int bl_sse_feed(bl_sse_parser *sp, const char *buf, apr_size_t len)
{
    apr_size_t i = 0;

    if (sp->status)
        return sp->status;
    /* A UTF-8 byte order mark may open the stream, even split. */
    while (sp->bom < 3 && i < len) {
        static const char bom[] = "\xEF\xBB\xBF";
        if (buf[i] == bom[sp->bom]) {
            sp->bom++;
            i++;
            continue;
        }
        /* Not a BOM after all: what matched belongs to the first line. */
        memcpy(sp->line, bom, (apr_size_t)sp->bom);
        sp->line_len = (apr_size_t)sp->bom;
        sp->bom = 3;
    }
    while (i < len) {
        char c = buf[i];
        const char *end;
        apr_size_t run;

        if (sp->skip_lf) {
            sp->skip_lf = 0;
            if (c == '\n') {
                i++;
                continue;
            }
        }
        if (c == '\n' || c == '\r') {
            sp->skip_lf = (c == '\r');
            i++;
            if ((sp->status = process_line(sp, sp->line, sp->line_len)) != 0)
                return sp->status;
            sp->line_len = 0;
            continue;
        }
        /* The run of ordinary bytes up to the next line end. */
        end = buf + i;
        run = 0;
        while (i + run < len && end[run] != '\n' && end[run] != '\r')
            run++;
        if (sp->line_len + run > sp->max)
            return sp->status = BL_SSE_TOO_LARGE;
        memcpy(sp->line + sp->line_len, end, run);
        sp->line_len += run;
        i += run;
    }
    return 0;
}
