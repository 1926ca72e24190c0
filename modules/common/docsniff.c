/* Document type sniffing and the streaming plain-text check. */
#include "docsniff.h"
#include "imagesniff.h"
#include "validate.h"

#include <string.h>

const char *bl_sniff_document_type(const unsigned char *head, size_t len)
{
    const char *image;

    if (len >= 5 && memcmp(head, "%PDF-", 5) == 0)
        return "application/pdf";
    /* DICOM Part 10: a 128-byte preamble, then "DICM". */
    if (len >= 132 && memcmp(head + 128, "DICM", 4) == 0)
        return "application/dicom";
    if ((image = bl_sniff_image_type(head, len)) != NULL)
        return image;
    return "text/plain";
}

void bl_text_check_init(bl_text_check *t)
{
    memset(t, 0, sizeof *t);
}

/* Expected length of a sequence from its lead byte, 0 when invalid. */
static int sequence_length(unsigned char c)
{
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

void bl_text_check_feed(bl_text_check *t, const unsigned char *data, size_t len)
{
    size_t i;

    for (i = 0; i < len && !t->bad; i++) {
        unsigned char c = data[i];

        if (t->want == 0) {
            if (c < 0x80) {
                if ((c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r') || c == 0x7f)
                    t->bad = 1;
                continue;
            }
            if (!(t->want = sequence_length(c))) {
                t->bad = 1;
                continue;
            }
            t->seq[0] = c;
            t->have = 1;
            continue;
        }
        t->seq[t->have++] = c;
        if (t->have == t->want) {
            /* The full check (overlongs, surrogates, range) on one sequence. */
            if (!bl_valid_utf8((const char *)t->seq, (size_t)t->have))
                t->bad = 1;
            t->want = t->have = 0;
        }
    }
}

int bl_text_check_ok_so_far(const bl_text_check *t)
{
    return !t->bad;
}

int bl_text_check_ok(const bl_text_check *t)
{
    return !t->bad && t->want == 0;
}
