/* Validation of untrusted strings. Each returns 1 when valid, 0 otherwise. */
#ifndef BL_VALIDATE_H
#define BL_VALIDATE_H

#include <stddef.h>

int bl_valid_utf8(const char *s, size_t len);
/* Length of the valid UTF-8 sequence at s (at most avail bytes, avail >= 1),
 * 1 for ASCII, or 0 when it is not one: overlong forms, surrogates and code
 * points past U+10FFFF are refused. */
size_t bl_utf8_sequence_length(const unsigned char *s, size_t avail);
/* Number of code points in valid UTF-8 s. */
size_t bl_utf8_chars(const char *s, size_t len);
/* Pragmatic address check: one @, local part 1..64, domain with a dot,
 * labels of [A-Za-z0-9-], total at most 254, no spaces or control chars. */
int bl_valid_email(const char *s);
/* Canonical 8-4-4-4-12 hex form, either case. */
int bl_valid_uuid(const char *s);
/* RFC 3339 date-time with Z or +hh:mm offset, e.g. 2026-11-24T02:20:28Z. */
int bl_valid_rfc3339(const char *s);
/* Calendar date YYYY-MM-DD that exists (leap years checked). */
int bl_valid_date(const char *s);
int bl_valid_enum(const char *s, const char *const *allowed);
/* Length in code points within [min, max]; s must be valid UTF-8. */
int bl_valid_length(const char *s, size_t min_chars, size_t max_chars);

#endif
