/* Removes personal identifiers from text before it leaves for an outside
 * service (the AI provider): email addresses, phone numbers, dates of
 * birth and given names. Pure; no regex engine, one pass per kind.
 *
 * Replaced by "[email]", "[phone]", "[date of birth]" and "[name]":
 *  - email: local@domain.tld;
 *  - phone: 9 to 15 digits with optional "+", spaces, dots, dashes and
 *    parentheses between them (dates such as 2024-01-05 are not phones);
 *  - date of birth: the date dob (YYYY-MM-DD) written as Y-M-D, D/M/Y,
 *    M/D/Y, D.M.Y or D-M-Y, and any date right after "born", "birth",
 *    "birthday" or "dob";
 *  - names: each word of each entry of names (case-insensitive, whole
 *    words of two letters or more), and the words after "my name is",
 *    "name is", "call me", "i'm called" and "name:". */
#ifndef BL_REDACT_H
#define BL_REDACT_H

#include <apr_pools.h>

/* names: NULL-terminated list (or NULL); dob: "YYYY-MM-DD" or NULL.
 * Returns a new string; text itself when there was nothing to replace. */
const char *bl_redact(apr_pool_t *p, const char *text, const char *const *names,
                      const char *dob);

#endif
