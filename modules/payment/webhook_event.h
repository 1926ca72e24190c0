/* A Razorpay webhook delivery's payload, read into the fields
 * mod_beautiful_payment acts on. Pure C (no request_rec) so it can be
 * fuzzed; json-c objects belong to the pool passed in. */
#ifndef BL_WEBHOOK_EVENT_H
#define BL_WEBHOOK_EVENT_H

#include <apr_pools.h>
#include <stddef.h>
#include <stdint.h>

/* Largest webhook body read (Razorpay's are a few KiB). */
#define BL_WEBHOOK_MAX_BODY (256 * 1024)

typedef struct {
    const char *event;              /* "payment.captured" ... */
    int64_t created_at;             /* unix seconds, -1 when absent */
    /* payload.payment.entity */
    const char *payment_id;
    const char *payment_order_id;
    const char *payment_status;
    const char *payment_currency;
    const char *payment_error;      /* error_description */
    int64_t payment_amount;         /* paise, -1 when absent */
    /* payload.order.entity */
    const char *order_id;
    /* payload.refund.entity */
    const char *refund_payment_id;
    int64_t refund_amount;
    /* payload.subscription.entity */
    const char *subscription_id;
    const char *subscription_status;
    int64_t subscription_start;     /* current_start */
    int64_t subscription_end;       /* current_end */
} bl_webhook_event;

/* Parses len bytes of body (bounded JSON parser): the top level must be an
 * object with a string "event" of 1..100 characters. Ids longer than 100
 * characters or of other characters than [A-Za-z0-9_] are dropped (NULL).
 * Returns 0, or -1 with *err set. */
int bl_webhook_event_parse(apr_pool_t *p, const char *body, size_t len,
                           bl_webhook_event *ev, const char **err);

#endif
