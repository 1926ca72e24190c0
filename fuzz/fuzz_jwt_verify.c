/* Fuzz target: hostile tokens against the verifier with a fixed key set
 * (the RFC 7515 appendix A.2 public key under kid "k1"). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "jwt.h"
#include "rfc7515_key.h"

/* APR may keep pool memory in mmap'd blocks that LeakSanitizer does not
 * scan; a global reference keeps the long-lived key visibly reachable. */
static EVP_PKEY *fixed_pkey;

static const bl_jwt_keyset *fixed_keyset(void)
{
    static bl_jwt_keyset *ks;
    const bl_jwt_key *key;
    const char *err;

    if (!ks) {
        /* Built once and kept for the whole run, like a server's key set. */
        ks = bl_jwt_keyset_create(bl_fuzz_input_pool());
        key = bl_jwt_keyset_add_pem(ks, rfc7515_public_pem, sizeof rfc7515_public_pem - 1, "k1", &err);
        if (!key)
            abort();
        fixed_pkey = key->pkey;
    }
    return ks;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const bl_jwt_keyset *ks = fixed_keyset();
    apr_pool_t *p = bl_fuzz_input_pool();
    char *token = apr_palloc(p, size + 1);
    bl_jwt_expect expect;
    json_object *claims = NULL;
    bl_jwt_status status;

    memcpy(token, data, size);
    token[size] = '\0';
    memset(&expect, 0, sizeof expect);
    expect.issuer = "https://api.beautiful.test";
    expect.audience = "beautiful-app";
    expect.typ = "at+jwt";
    expect.now = apr_time_from_sec(1800000000);
    expect.leeway_sec = 30;
    status = bl_jwt_verify(p, ks, token, &expect, &claims);
    /* Claims come back exactly when the token is accepted. The key is the
     * published RFC example, so the seed corpus holds validly signed tokens
     * and the claim checks are reached too. */
    if ((status == BL_JWT_OK) != (claims != NULL))
        __builtin_trap();
    bl_jwt_status_text(status);
    apr_pool_destroy(p);
    return 0;
}
