/* Fuzz target: a Razorpay webhook body through the payload reader of
 * mod_beautiful_payment (modules/payment/webhook_event.c), as the webhook
 * route reads it after the signature check. */
#include "fuzz.h"
#include "webhook_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = bl_fuzz_input_pool();
    bl_webhook_event ev;
    const char *err = NULL;

    if (size <= BL_WEBHOOK_MAX_BODY)
        (void)bl_webhook_event_parse(p, (const char *)data, size, &ev, &err);
    apr_pool_destroy(p);
    return 0;
}
