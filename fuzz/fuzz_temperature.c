/* Fuzz target: body temperatures in arbitrary text; the answer is -1 or a
 * body temperature. */
#include <apr_strings.h>

#include "fuzz.h"
#include "temperature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = bl_fuzz_input_pool();
    const char *text = apr_pstrmemdup(p, (const char *)data, size);
    double t = bl_text_temperature_c(text);

    if (t != -1 && !(t >= 30 && t <= 45))
        __builtin_trap();
    apr_pool_destroy(p);
    return 0;
}
