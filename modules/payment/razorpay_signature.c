/* Razorpay signature checks (see razorpay_signature.h). */
#include "razorpay_signature.h"
#include "hmac.h"

#include <string.h>

int payment_signature_ok(const char *secret, const char *msg, size_t len, const char *sig)
{
    static const char hexdigits[] = "0123456789abcdef";
    unsigned char mac[BL_SHA256_LEN];
    char hex[BL_SHA256_LEN * 2 + 1];
    size_t i;

    if (!secret || !sig || strlen(sig) != BL_SHA256_LEN * 2)
        return 0;
    if (!bl_hmac_sha256(secret, strlen(secret), msg, len, mac))
        return 0;
    for (i = 0; i < BL_SHA256_LEN; i++) {
        hex[2 * i] = hexdigits[mac[i] >> 4];
        hex[2 * i + 1] = hexdigits[mac[i] & 0x0f];
    }
    hex[BL_SHA256_LEN * 2] = '\0';
    return bl_ct_equal(hex, sig, BL_SHA256_LEN * 2);
}
