/* One process-wide APR parent pool for fuzz inputs. */
#include <stdlib.h>
#include <apr_general.h>

#include "fuzz.h"

apr_pool_t *bl_fuzz_input_pool(void)
{
    static apr_pool_t *parent;
    apr_pool_t *p;

    if (!parent) {
        /* Lives as long as the fuzzing process; nothing to release it for. */
        if (apr_initialize() != APR_SUCCESS || apr_pool_create(&parent, NULL) != APR_SUCCESS)
            abort();
    }
    if (apr_pool_create(&p, parent) != APR_SUCCESS)
        abort();
    return p;
}
