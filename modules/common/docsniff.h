/* Medical document types judged from the bytes, never from a header or a
 * file name: PDF, PNG, JPEG, WebP, DICOM (Part 10) and plain UTF-8 text. */
#ifndef BL_DOCSNIFF_H
#define BL_DOCSNIFF_H

#include <stddef.h>

/* Enough leading bytes for every signature (DICOM's is at 128..131). */
#define BL_DOCSNIFF_HEAD 512

/* The type of a file whose first len bytes (at least BL_DOCSNIFF_HEAD, or
 * the whole file when shorter) are head: "application/pdf", "image/png",
 * "image/jpeg", "image/webp", "application/dicom"; or "text/plain" when no
 * signature matches, which holds only if the whole file passes
 * bl_text_check (the caller checks it as the bytes go by). */
const char *bl_sniff_document_type(const unsigned char *head, size_t len);

/* Incremental check that a file is plain UTF-8 text: valid UTF-8 (no
 * overlong forms, surrogates or code points past U+10FFFF) and no control
 * characters but tab, line feed, form feed and carriage return. */
typedef struct {
    unsigned char seq[4];
    int have, want;
    int bad;
} bl_text_check;

void bl_text_check_init(bl_text_check *t);
void bl_text_check_feed(bl_text_check *t, const unsigned char *data, size_t len);
/* 1 while everything so far is text (a sequence may still be open). */
int bl_text_check_ok_so_far(const bl_text_check *t);
/* 1 when the whole file was text (no sequence left open). */
int bl_text_check_ok(const bl_text_check *t);

#endif
