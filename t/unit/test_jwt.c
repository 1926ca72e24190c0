/* JWT RS256: the RFC 7515 appendix A.2 example, a round trip with a freshly
 * generated key, and every refusal the verifier promises. */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "base64url.h"
#include "hmac.h"
#include "json.h"
#include "jwt.h"
#include "unit.h"

#include "rfc7515_key.h"

/* RFC 7515 appendix A.2: the JWS Signing Input and the published signature. */
static const char rfc7515_header_b64[] = "eyJhbGciOiJSUzI1NiJ9";
static const char rfc7515_payload_b64[] =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
static const char rfc7515_signature_b64[] =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
/* Its RFC 7638 thumbprint (SHA-256 over {"e","kty","n"}). */
static const char rfc7515_thumbprint[] = "IsUn6_e04MaShXFIISMp4kG62LWzMIPy_MvSA5pJgX8";

#define ISSUER "https://api.beautiful.test"
#define AUDIENCE "beautiful-app"
#define NOW_SEC 1800000000

static apr_status_t json_release(void *obj)
{
    json_object_put(obj);
    return APR_SUCCESS;
}

static json_object *pooled(json_object *obj)
{
    apr_pool_cleanup_register(pool, obj, json_release, apr_pool_cleanup_null);
    return obj;
}

/* Claims of a valid access token at NOW_SEC. */
static json_object *valid_claims(void)
{
    json_object *c = pooled(json_object_new_object());

    json_object_object_add(c, "iss", json_object_new_string(ISSUER));
    json_object_object_add(c, "aud", json_object_new_string(AUDIENCE));
    json_object_object_add(c, "sub", json_object_new_string("6f1c2d9e-1b7a-4c8e-9f00-0a1b2c3d4e5f"));
    json_object_object_add(c, "role", json_object_new_string("patient"));
    json_object_object_add(c, "sid", json_object_new_string("session-1"));
    json_object_object_add(c, "jti", json_object_new_string("token-1"));
    json_object_object_add(c, "iat", json_object_new_int64(NOW_SEC - 10));
    json_object_object_add(c, "nbf", json_object_new_int64(NOW_SEC - 10));
    json_object_object_add(c, "exp", json_object_new_int64(NOW_SEC + 900));
    return c;
}

static bl_jwt_expect expectation(void)
{
    bl_jwt_expect e;

    memset(&e, 0, sizeof e);
    e.issuer = ISSUER;
    e.audience = AUDIENCE;
    e.typ = "at+jwt";
    e.now = apr_time_from_sec(NOW_SEC);
    e.leeway_sec = 30;
    return e;
}

static bl_jwt_keyset *rfc_keyset(const char *kid, const bl_jwt_key **key)
{
    bl_jwt_keyset *ks = bl_jwt_keyset_create(pool);
    const char *err = NULL;
    const bl_jwt_key *k = bl_jwt_keyset_add_pem(ks, rfc7515_private_pem,
                                                sizeof rfc7515_private_pem - 1, kid, &err);

    ck_assert_msg(k != NULL, "loading the RFC 7515 key: %s", err);
    if (key)
        *key = k;
    return ks;
}

static bl_jwt_status verify(const bl_jwt_keyset *ks, const char *token)
{
    bl_jwt_expect e = expectation();
    json_object *claims = NULL;

    return bl_jwt_verify(pool, ks, token, &e, &claims);
}

static const char *b64(const char *s)
{
    return bl_base64url_encode(pool, (const unsigned char *)s, strlen(s));
}

/* A compact JWS over arbitrary header and payload text, signed RS256 with
 * pkey; how a hostile or foreign issuer's tokens are made in these tests. */
static const char *sign_raw(EVP_PKEY *pkey, const char *header, const char *payload)
{
    const char *input = apr_pstrcat(pool, b64(header), ".", b64(payload), NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t sig_len = sizeof sig;

    ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey), 1);
    ck_assert_int_eq(EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)input,
                                    strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    return apr_pstrcat(pool, input, ".", bl_base64url_encode(pool, sig, sig_len), NULL);
}

static const char *valid_payload(void)
{
    return bl_json_to_string(pool, valid_claims());
}

/* A generated RSA key of the given size as PEM text in the pool. */
static const char *generated_pem(unsigned int bits, int private_key)
{
    EVP_PKEY *pkey = EVP_RSA_gen(bits);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long len;
    const char *pem;

    ck_assert_ptr_nonnull(pkey);
    if (private_key)
        ck_assert_int_eq(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    else
        ck_assert_int_eq(PEM_write_bio_PUBKEY(bio, pkey), 1);
    len = BIO_get_mem_data(bio, &data);
    pem = apr_pstrmemdup(pool, data, (apr_size_t)len);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return pem;
}

START_TEST(rfc7515_appendix_a2_encoding)
{
    static const char payload[] =
        "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

    ck_assert_str_eq(b64("{\"alg\":\"RS256\"}"), rfc7515_header_b64);
    ck_assert_str_eq(b64(payload), rfc7515_payload_b64);
}
END_TEST

START_TEST(rfc7515_appendix_a2_signature)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset(NULL, &key);
    bl_jwt_expect e = expectation();
    const char *token = apr_pstrcat(pool, rfc7515_header_b64, ".", rfc7515_payload_b64, ".",
                                    rfc7515_signature_b64, NULL);
    char *tampered = apr_pstrdup(pool, token);
    json_object *claims;

    /* No kid in the header and one key in the set: that key is used. The
     * signature verifies; the example's claims lack what we require. */
    e.typ = NULL;
    ck_assert_int_eq(bl_jwt_verify(pool, ks, token, &e, &claims), BL_JWT_MISSING_CLAIM);
    tampered[strlen(tampered) - 2] = tampered[strlen(tampered) - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(bl_jwt_verify(pool, ks, tampered, &e, &claims), BL_JWT_BAD_SIGNATURE);

    /* PKCS#1 v1.5 is deterministic: signing the same input gives the
     * published signature. */
    ck_assert_str_eq(sign_raw(key->pkey, "{\"alg\":\"RS256\"}",
                              "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
                              "\"http://example.com/is_root\":true}"), token);
}
END_TEST

START_TEST(thumbprint_kid_and_jwks)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset(NULL, &key);
    const char *jwks = bl_jwt_keyset_jwks(pool, ks);
    const char *err;
    json_object *doc = bl_json_parse_object(pool, jwks, strlen(jwks), 4, &err), *keys, *jwk, *v;

    ck_assert_str_eq(key->kid, rfc7515_thumbprint);
    ck_assert_int_eq(key->can_sign, 1);
    ck_assert_ptr_eq(bl_jwt_keyset_signing_key(ks), key);
    ck_assert_ptr_nonnull(doc);
    ck_assert(json_object_object_get_ex(doc, "keys", &keys));
    ck_assert_uint_eq(json_object_array_length(keys), 1);
    jwk = json_object_array_get_idx(keys, 0);
    ck_assert(json_object_object_get_ex(jwk, "kty", &v));
    ck_assert_str_eq(json_object_get_string(v), "RSA");
    ck_assert(json_object_object_get_ex(jwk, "alg", &v));
    ck_assert_str_eq(json_object_get_string(v), "RS256");
    ck_assert(json_object_object_get_ex(jwk, "use", &v));
    ck_assert_str_eq(json_object_get_string(v), "sig");
    ck_assert(json_object_object_get_ex(jwk, "kid", &v));
    ck_assert_str_eq(json_object_get_string(v), rfc7515_thumbprint);
    ck_assert(json_object_object_get_ex(jwk, "e", &v));
    ck_assert_str_eq(json_object_get_string(v), "AQAB");
    ck_assert(json_object_object_get_ex(jwk, "n", &v));
    ck_assert(strncmp(json_object_get_string(v), "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQ", 40) == 0);
    /* No private member ever leaves. */
    ck_assert(!json_object_object_get_ex(jwk, "d", NULL));
}
END_TEST

START_TEST(public_key_verifies_only)
{
    bl_jwt_keyset *signer = rfc_keyset("k1", NULL);
    bl_jwt_keyset *verifier = bl_jwt_keyset_create(pool);
    const char *err;
    const bl_jwt_key *pub = bl_jwt_keyset_add_pem(verifier, rfc7515_public_pem,
                                                  sizeof rfc7515_public_pem - 1, "k1", &err);
    const char *token = bl_jwt_sign(pool, bl_jwt_keyset_signing_key(signer), "at+jwt", valid_claims());

    ck_assert_ptr_nonnull(pub);
    ck_assert_int_eq(pub->can_sign, 0);
    ck_assert_ptr_null(bl_jwt_keyset_signing_key(verifier));
    ck_assert_ptr_null(bl_jwt_sign(pool, pub, "at+jwt", valid_claims()));
    ck_assert_int_eq(verify(verifier, token), BL_JWT_OK);
}
END_TEST

START_TEST(round_trip_generated_key)
{
    bl_jwt_keyset *ks = bl_jwt_keyset_create(pool);
    const char *pem = generated_pem(2048, 1), *err = NULL, *token, *jwks;
    const bl_jwt_key *key = bl_jwt_keyset_add_pem(ks, pem, strlen(pem), NULL, &err);
    bl_jwt_expect e = expectation();
    json_object *claims = NULL, *sub;

    ck_assert_msg(key != NULL, "%s", err);
    token = bl_jwt_sign(pool, key, "at+jwt", valid_claims());
    ck_assert_ptr_nonnull(token);
    ck_assert_int_eq(bl_jwt_verify(pool, ks, token, &e, &claims), BL_JWT_OK);
    ck_assert_ptr_nonnull(claims);
    ck_assert(json_object_object_get_ex(claims, "sub", &sub));
    ck_assert_str_eq(json_object_get_string(sub), "6f1c2d9e-1b7a-4c8e-9f00-0a1b2c3d4e5f");
    /* Deterministic signatures: the same claims sign to the same token. */
    ck_assert_str_eq(bl_jwt_sign(pool, key, "at+jwt", valid_claims()), token);
    jwks = bl_jwt_keyset_jwks(pool, ks);
    ck_assert_ptr_nonnull(strstr(jwks, key->kid));
}
END_TEST

START_TEST(typ_with_media_type_prefix)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    const char *hdr = "{\"alg\":\"RS256\",\"typ\":\"application/AT+JWT\",\"kid\":\"k1\"}";

    ck_assert_int_eq(verify(ks, sign_raw(key->pkey, hdr, valid_payload())), BL_JWT_OK);
}
END_TEST

START_TEST(refuses_expired)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    json_object *c = valid_claims();

    json_object_object_add(c, "exp", json_object_new_int64(NOW_SEC - 31));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_EXPIRED);
    /* Within the leeway it still passes. */
    json_object_object_add(c, "exp", json_object_new_int64(NOW_SEC - 29));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_OK);
}
END_TEST

START_TEST(refuses_not_yet_valid)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    json_object *c = valid_claims();

    json_object_object_add(c, "nbf", json_object_new_int64(NOW_SEC + 120));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_NOT_YET_VALID);
    c = valid_claims();
    json_object_object_add(c, "iat", json_object_new_int64(NOW_SEC + 120));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_NOT_YET_VALID);
}
END_TEST

START_TEST(refuses_wrong_issuer)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    json_object *c = valid_claims();

    json_object_object_add(c, "iss", json_object_new_string(ISSUER "/"));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_BAD_ISSUER);
}
END_TEST

START_TEST(audience_string_or_array)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    json_object *c = valid_claims(), *aud = json_object_new_array();

    json_object_object_add(c, "aud", json_object_new_string("another-app"));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_BAD_AUDIENCE);
    json_object_array_add(aud, json_object_new_string("another-app"));
    json_object_object_add(c, "aud", aud);
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_BAD_AUDIENCE);
    json_object_array_add(aud, json_object_new_string(AUDIENCE));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_OK);
}
END_TEST

START_TEST(refuses_alg_none)
{
    const char *payload = b64(valid_payload());
    bl_jwt_keyset *ks = rfc_keyset("k1", NULL);

    ck_assert_int_eq(verify(ks, apr_pstrcat(pool, b64("{\"alg\":\"none\",\"kid\":\"k1\"}"), ".",
                                            payload, ".", NULL)), BL_JWT_BAD_ALG);
    ck_assert_int_eq(verify(ks, apr_pstrcat(pool, b64("{\"alg\":\"None\"}"), ".",
                                            payload, ".", NULL)), BL_JWT_BAD_ALG);
    ck_assert_int_eq(verify(ks, apr_pstrcat(pool, b64("{\"typ\":\"at+jwt\"}"), ".",
                                            payload, ".", NULL)), BL_JWT_BAD_ALG);
}
END_TEST

/* The classic confusion attack: HS256 with the public key text as secret. */
START_TEST(refuses_hs256_with_public_key_secret)
{
    bl_jwt_keyset *ks = rfc_keyset("k1", NULL);
    const char *input = apr_pstrcat(pool, b64("{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}"),
                                     ".", b64(valid_payload()), NULL);
    unsigned char mac[BL_SHA256_LEN];

    ck_assert_int_eq(bl_hmac_sha256(rfc7515_public_pem, sizeof rfc7515_public_pem - 1,
                                    input, strlen(input), mac), 1);
    ck_assert_int_eq(verify(ks, apr_pstrcat(pool, input, ".",
                                            bl_base64url_encode(pool, mac, sizeof mac), NULL)),
                     BL_JWT_BAD_ALG);
}
END_TEST

START_TEST(refuses_other_algorithms_and_crit)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    static const char *const headers[] = {
        "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
        "{\"alg\":\"PS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
        "{\"alg\":\"RS512\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
        "{\"alg\":\"rs256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
        "{\"alg\":[\"RS256\"],\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
        "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\",\"crit\":[\"exp\"]}",
        NULL
    };
    const char *const *h;

    /* Signed with the right RSA key, so only the header can be the reason. */
    for (h = headers; *h; h++)
        ck_assert_msg(verify(ks, sign_raw(key->pkey, *h, valid_payload())) == BL_JWT_BAD_ALG,
                      "accepted %s", *h);
}
END_TEST

START_TEST(refuses_tampered_payload)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    const char *token = bl_jwt_sign(pool, key, "at+jwt", valid_claims());
    const char *first_dot = strchr(token, '.'), *second_dot = strchr(first_dot + 1, '.');
    json_object *c = valid_claims();
    const char *forged;

    json_object_object_add(c, "role", json_object_new_string("admin"));
    forged = apr_pstrcat(pool, apr_pstrmemdup(pool, token, (apr_size_t)(first_dot - token)), ".",
                         b64(bl_json_to_string(pool, c)), second_dot, NULL);
    ck_assert_int_eq(verify(ks, token), BL_JWT_OK);
    ck_assert_int_eq(verify(ks, forged), BL_JWT_BAD_SIGNATURE);
}
END_TEST

START_TEST(refuses_unknown_kid)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *signer = rfc_keyset("k1", &key);
    bl_jwt_keyset *other = rfc_keyset("k2", NULL);
    const char *err;

    ck_assert_int_eq(verify(other, bl_jwt_sign(pool, key, "at+jwt", valid_claims())),
                     BL_JWT_UNKNOWN_KID);
    ck_assert_int_eq(verify(signer, sign_raw(key->pkey, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":7}",
                                             valid_payload())), BL_JWT_UNKNOWN_KID);
    /* Without a kid: one key in the set is used, two make it ambiguous. */
    ck_assert_int_eq(verify(signer, sign_raw(key->pkey, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}",
                                             valid_payload())), BL_JWT_OK);
    ck_assert_ptr_nonnull(bl_jwt_keyset_add_pem(signer, rfc7515_public_pem,
                                                sizeof rfc7515_public_pem - 1, "k3", &err));
    ck_assert_int_eq(verify(signer, sign_raw(key->pkey, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}",
                                             valid_payload())), BL_JWT_UNKNOWN_KID);
}
END_TEST

START_TEST(refuses_wrong_segment_count)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    const char *token = bl_jwt_sign(pool, key, "at+jwt", valid_claims());

    ck_assert_int_eq(verify(ks, apr_pstrcat(pool, token, ".e30.e30", NULL)), BL_JWT_MALFORMED);
    ck_assert_int_eq(verify(ks, apr_pstrcat(pool, token, ".", NULL)), BL_JWT_MALFORMED);
    ck_assert_int_eq(verify(ks, "e30.e30"), BL_JWT_MALFORMED);
    ck_assert_int_eq(verify(ks, ""), BL_JWT_MALFORMED);
    ck_assert_int_eq(verify(ks, ".."), BL_JWT_MALFORMED);
    ck_assert_int_eq(verify(ks, NULL), BL_JWT_MALFORMED);
}
END_TEST

START_TEST(refuses_bad_base64url)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    const char *token = bl_jwt_sign(pool, key, "at+jwt", valid_claims());
    char *padded_header = apr_pstrcat(pool, "eyJhbGciOiJSUzI1NiJ9==", strchr(token, '.'), NULL);
    char *bad_sig = apr_pstrcat(pool, token, "+", NULL);

    ck_assert_int_eq(verify(ks, padded_header), BL_JWT_MALFORMED);
    ck_assert_int_eq(verify(ks, bad_sig), BL_JWT_BAD_SIGNATURE);
    /* Header that decodes but is not a JSON object. */
    ck_assert_int_eq(verify(ks, apr_pstrcat(pool, b64("[\"RS256\"]"), strchr(token, '.'), NULL)),
                     BL_JWT_MALFORMED);
}
END_TEST

START_TEST(refuses_missing_claims)
{
    static const char *const required[] = {"iss", "aud", "sub", "exp", "iat", "jti", "sid", NULL};
    const char *const *name;
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    json_object *c;

    for (name = required; *name; name++) {
        c = valid_claims();
        json_object_object_del(c, *name);
        ck_assert_msg(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)) == BL_JWT_MISSING_CLAIM,
                      "accepted a token without %s", *name);
    }
    /* Mistyped is the same as missing. */
    c = valid_claims();
    json_object_object_add(c, "exp", json_object_new_string("tomorrow"));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_MISSING_CLAIM);
    c = valid_claims();
    json_object_object_add(c, "sub", json_object_new_int(42));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_MISSING_CLAIM);
    c = valid_claims();
    json_object_object_add(c, "nbf", json_object_new_string("now"));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_MISSING_CLAIM);
}
END_TEST

START_TEST(refuses_typ_mismatch)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);

    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "rt+jwt", valid_claims())), BL_JWT_BAD_TYP);
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, NULL, valid_claims())), BL_JWT_BAD_TYP);
}
END_TEST

START_TEST(refuses_overlong_token)
{
    const bl_jwt_key *key;
    bl_jwt_keyset *ks = rfc_keyset("k1", &key);
    json_object *c = valid_claims();
    char *filler = apr_palloc(pool, 9000);

    memset(filler, 'x', 8999);
    filler[8999] = '\0';
    json_object_object_add(c, "pad", json_object_new_string(filler));
    ck_assert_int_eq(verify(ks, bl_jwt_sign(pool, key, "at+jwt", c)), BL_JWT_MALFORMED);
}
END_TEST

START_TEST(key_loading_refusals)
{
    bl_jwt_keyset *ks = bl_jwt_keyset_create(pool);
    const char *err = NULL, *small = generated_pem(1024, 1), *small_pub = generated_pem(1024, 0);

    ck_assert_ptr_null(bl_jwt_keyset_add_pem(ks, small, strlen(small), NULL, &err));
    ck_assert_ptr_nonnull(strstr(err, "1024 bits"));
    ck_assert_ptr_null(bl_jwt_keyset_add_pem(ks, small_pub, strlen(small_pub), NULL, &err));
    ck_assert_ptr_null(bl_jwt_keyset_add_pem(ks, "not a key", 9, NULL, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(bl_jwt_keyset_add_pem_file(ks, "/nonexistent/key.pem", NULL, &err));
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));
    ck_assert_ptr_nonnull(bl_jwt_keyset_add_pem(ks, rfc7515_public_pem,
                                                sizeof rfc7515_public_pem - 1, "dup", &err));
    ck_assert_ptr_null(bl_jwt_keyset_add_pem(ks, rfc7515_public_pem,
                                             sizeof rfc7515_public_pem - 1, "dup", &err));
    ck_assert_ptr_nonnull(strstr(err, "duplicate"));
}
END_TEST

START_TEST(status_texts)
{
    int s;

    for (s = BL_JWT_OK; s <= BL_JWT_MISSING_CLAIM; s++)
        ck_assert_ptr_nonnull(bl_jwt_status_text((bl_jwt_status)s));
    ck_assert_str_eq(bl_jwt_status_text(BL_JWT_EXPIRED), "token expired");
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *vectors = unit_tcase("rfc7515");
    TCase *refusals = unit_tcase("refusals");

    tcase_add_test(vectors, rfc7515_appendix_a2_encoding);
    tcase_add_test(vectors, rfc7515_appendix_a2_signature);
    tcase_add_test(vectors, thumbprint_kid_and_jwks);
    tcase_add_test(vectors, public_key_verifies_only);
    tcase_add_test(vectors, round_trip_generated_key);
    tcase_add_test(vectors, typ_with_media_type_prefix);
    tcase_add_test(vectors, status_texts);
    tcase_add_test(refusals, refuses_expired);
    tcase_add_test(refusals, refuses_not_yet_valid);
    tcase_add_test(refusals, refuses_wrong_issuer);
    tcase_add_test(refusals, audience_string_or_array);
    tcase_add_test(refusals, refuses_alg_none);
    tcase_add_test(refusals, refuses_hs256_with_public_key_secret);
    tcase_add_test(refusals, refuses_other_algorithms_and_crit);
    tcase_add_test(refusals, refuses_tampered_payload);
    tcase_add_test(refusals, refuses_unknown_kid);
    tcase_add_test(refusals, refuses_wrong_segment_count);
    tcase_add_test(refusals, refuses_bad_base64url);
    tcase_add_test(refusals, refuses_missing_claims);
    tcase_add_test(refusals, refuses_typ_mismatch);
    tcase_add_test(refusals, refuses_overlong_token);
    tcase_add_test(refusals, key_loading_refusals);
    suite_add_tcase(s, vectors);
    suite_add_tcase(s, refusals);
    return s;
}
