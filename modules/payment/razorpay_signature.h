/* Razorpay's signatures: lower-case hex HMAC-SHA256. Checkout signs
 * "order_id|payment_id" (a subscription "payment_id|subscription_id") with
 * the key secret; webhooks sign the raw body with the webhook secret.
 * Pure C, unit-tested (t/unit/test_razorpay.c). */
#ifndef BL_RAZORPAY_SIGNATURE_H
#define BL_RAZORPAY_SIGNATURE_H

#include <stddef.h>

/* 1 when sig is hex(HMAC-SHA256(secret, msg[0..len))), lower case, 64
 * characters; compared in constant time. 0 otherwise (also for a NULL
 * secret or sig). */
int payment_signature_ok(const char *secret, const char *msg, size_t len, const char *sig);

#endif
