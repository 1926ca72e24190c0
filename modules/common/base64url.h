/* base64url without padding (RFC 4648 section 5), as JWS uses it. */
#ifndef BL_BASE64URL_H
#define BL_BASE64URL_H

#include <stddef.h>
#include <apr_pools.h>

const char *bl_base64url_encode(apr_pool_t *p, const unsigned char *data, size_t len);
/* Strict: refuses '=', '+', '/', whitespace and impossible lengths (len % 4 == 1),
 * and non-zero trailing bits. Returns NULL on invalid input; the output is
 * NUL-terminated (not counted in *out_len). */
unsigned char *bl_base64url_decode(apr_pool_t *p, const char *in, size_t len, size_t *out_len);

#endif
