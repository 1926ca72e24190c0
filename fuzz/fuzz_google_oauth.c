/* Fuzz target: what comes back from outside for Google's OAuth — a token
 * endpoint's answer and a service-account document — through their
 * parsers. Either may be hostile or broken; neither may crash or leak. */
#include <string.h>

#include "fuzz.h"
#include "google_oauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = bl_fuzz_input_pool();
    const char *text = (const char *)data, *token = NULL, *err = NULL;
    apr_interval_time_t ttl = 0;
    bl_google_account *sa;

    if (bl_google_token_parse(p, text, size, &token, &ttl, &err) == 0) {
        if (!token || ttl <= 0)
            __builtin_trap();
    }
    else if (!err)
        __builtin_trap();
    err = NULL;
    sa = bl_google_account_parse(p, text, size, &err);
    if (sa ? !(sa->client_email && sa->token_uri && sa->key) : !err)
        __builtin_trap();
    apr_pool_destroy(p);
    return 0;
}
