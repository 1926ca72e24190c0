/* Google service accounts and the RFC 7523 assertion: parsing the account
 * file (and every refusal), the signed assertion's header, claims and
 * signature, the token request body and the token endpoint's answer. */
#include <string.h>
#include <openssl/evp.h>

#include "base64url.h"
#include "google_oauth.h"
#include "json.h"
#include "unit.h"

#include "rfc7515_key.h"

#define EMAIL "push@bl-test.iam.gserviceaccount.com"
#define TOKEN_URI "https://oauth2.googleapis.com/token"
#define SCOPE "https://www.googleapis.com/auth/firebase.messaging"
#define NOW_SEC 1800000000

/* A service-account document; NULL fields are left out. */
static const char *account_json(const char *type, const char *email, const char *key,
                                const char *token_uri, const char *key_id)
{
    json_object *o = json_object_new_object();
    const char *text;

    if (type)
        json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "project_id", json_object_new_string("bl-test"));
    if (key_id)
        json_object_object_add(o, "private_key_id", json_object_new_string(key_id));
    if (key)
        json_object_object_add(o, "private_key", json_object_new_string(key));
    if (email)
        json_object_object_add(o, "client_email", json_object_new_string(email));
    if (token_uri)
        json_object_object_add(o, "token_uri", json_object_new_string(token_uri));
    text = apr_pstrdup(pool, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

static bl_google_account *parse(const char *json, const char **err)
{
    *err = NULL;
    return bl_google_account_parse(pool, json, strlen(json), err);
}

START_TEST(account_parsed)
{
    const char *err;
    bl_google_account *sa = parse(account_json("service_account", EMAIL, rfc7515_private_pem,
                                               TOKEN_URI, "key-1"), &err);

    ck_assert_msg(sa != NULL, "%s", err);
    ck_assert_str_eq(sa->client_email, EMAIL);
    ck_assert_str_eq(sa->token_uri, TOKEN_URI);
    ck_assert_str_eq(sa->project_id, "bl-test");
    ck_assert_str_eq(sa->key->kid, "key-1");
    ck_assert(sa->key->can_sign);
}
END_TEST

START_TEST(account_without_key_id_uses_thumbprint)
{
    const char *err;
    bl_google_account *sa = parse(account_json(NULL, EMAIL, rfc7515_private_pem, TOKEN_URI,
                                               NULL), &err);

    ck_assert_msg(sa != NULL, "%s", err);
    ck_assert_str_eq(sa->key->kid, "IsUn6_e04MaShXFIISMp4kG62LWzMIPy_MvSA5pJgX8");
}
END_TEST

START_TEST(account_refusals)
{
    const char *err;

    ck_assert(!parse(account_json("authorized_user", EMAIL, rfc7515_private_pem, TOKEN_URI,
                                  NULL), &err));
    ck_assert_str_eq(err, "type must be service_account");
    ck_assert(!parse(account_json(NULL, NULL, rfc7515_private_pem, TOKEN_URI, NULL), &err));
    ck_assert_str_eq(err, "client_email is missing");
    ck_assert(!parse(account_json(NULL, EMAIL, rfc7515_private_pem, "ftp://x/token", NULL), &err));
    ck_assert_str_eq(err, "token_uri must be an https:// (or http://) URL");
    ck_assert(!parse(account_json(NULL, EMAIL, rfc7515_private_pem, NULL, NULL), &err));
    ck_assert(!parse(account_json(NULL, EMAIL, NULL, TOKEN_URI, NULL), &err));
    ck_assert_str_eq(err, "private_key is missing");
    ck_assert(!parse(account_json(NULL, EMAIL, rfc7515_public_pem, TOKEN_URI, NULL), &err));
    ck_assert_str_eq(err, "private_key is not an RSA private key");
    ck_assert(!parse(account_json(NULL, EMAIL, "-----BEGIN PRIVATE KEY-----\nxx\n", TOKEN_URI,
                                  NULL), &err));
    ck_assert(!parse("[1,2]", &err));
    ck_assert(!parse("{\"client_email\":", &err));
}
END_TEST

static json_object *decode_part(const char *b64, size_t len)
{
    apr_size_t out_len = 0;
    const char *err = NULL;
    unsigned char *raw = bl_base64url_decode(pool, b64, len, &out_len);

    ck_assert(raw != NULL);
    return bl_json_parse_object(pool, (const char *)raw, out_len, 4, &err);
}

static const char *str_of(json_object *o, const char *k)
{
    json_object *v;

    ck_assert(json_object_object_get_ex(o, k, &v));
    return json_object_get_string(v);
}

static int64_t int_of(json_object *o, const char *k)
{
    json_object *v;

    ck_assert(json_object_object_get_ex(o, k, &v));
    ck_assert(json_object_is_type(v, json_type_int));
    return json_object_get_int64(v);
}

START_TEST(assertion_claims_and_signature)
{
    const char *err;
    bl_google_account *sa = parse(account_json("service_account", EMAIL, rfc7515_private_pem,
                                               TOKEN_URI, "key-1"), &err);
    const char *jwt = bl_google_assertion(pool, sa, SCOPE, apr_time_from_sec(NOW_SEC));
    const char *dot1, *dot2;
    json_object *header, *claims;
    apr_size_t sig_len = 0;
    unsigned char *sig;
    EVP_MD_CTX *ctx;

    ck_assert(jwt != NULL);
    dot1 = strchr(jwt, '.');
    dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    ck_assert(dot1 && dot2 && !strchr(dot2 + 1, '.'));
    header = decode_part(jwt, (size_t)(dot1 - jwt));
    claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    ck_assert_str_eq(str_of(header, "alg"), "RS256");
    ck_assert_str_eq(str_of(header, "typ"), "JWT");
    ck_assert_str_eq(str_of(header, "kid"), "key-1");
    ck_assert_str_eq(str_of(claims, "iss"), EMAIL);
    ck_assert_str_eq(str_of(claims, "scope"), SCOPE);
    ck_assert_str_eq(str_of(claims, "aud"), TOKEN_URI);
    ck_assert_int_eq(int_of(claims, "iat"), NOW_SEC);
    ck_assert_int_eq(int_of(claims, "exp"), NOW_SEC + 3600);
    ck_assert(!json_object_object_get_ex(claims, "sub", NULL));

    /* The signature verifies with the account's key over header.claims. */
    sig = bl_base64url_decode(pool, dot2 + 1, strlen(dot2 + 1), &sig_len);
    ck_assert(sig != NULL);
    ctx = EVP_MD_CTX_new();
    ck_assert(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, sa->key->pkey) == 1);
    ck_assert(EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)jwt,
                               (size_t)(dot2 - jwt)) == 1);
    EVP_MD_CTX_free(ctx);
}
END_TEST

START_TEST(token_request_body)
{
    ck_assert_str_eq(bl_google_token_request(pool, "a.b+c/d"),
                     "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
                     "&assertion=a.b%2Bc%2Fd");
}
END_TEST

static int token(const char *body, const char **tok, apr_interval_time_t *ttl, const char **err)
{
    *err = NULL;
    return bl_google_token_parse(pool, body, strlen(body), tok, ttl, err);
}

START_TEST(token_answer)
{
    const char *tok, *err;
    apr_interval_time_t ttl = 0;

    ck_assert_int_eq(token("{\"access_token\":\"ya29.x\",\"expires_in\":3599,"
                           "\"token_type\":\"Bearer\"}", &tok, &ttl, &err), 0);
    ck_assert_str_eq(tok, "ya29.x");
    ck_assert(ttl == apr_time_from_sec(3599));
    ck_assert_int_eq(token("{\"access_token\":\"t\",\"expires_in\":60}", &tok, &ttl, &err), 0);
    ck_assert_int_eq(token("{\"expires_in\":60}", &tok, &ttl, &err), -1);
    ck_assert_str_eq(err, "no access_token in the answer");
    ck_assert_int_eq(token("{\"access_token\":\"t\",\"expires_in\":60,\"token_type\":\"mac\"}",
                           &tok, &ttl, &err), -1);
    ck_assert_str_eq(err, "token_type is not Bearer");
    ck_assert_int_eq(token("{\"access_token\":\"t\",\"expires_in\":\"60\"}", &tok, &ttl, &err), -1);
    ck_assert_int_eq(token("{\"access_token\":\"t\",\"expires_in\":0}", &tok, &ttl, &err), -1);
    ck_assert_int_eq(token("{\"access_token\":\"t\",\"expires_in\":86401}", &tok, &ttl, &err), -1);
    ck_assert_str_eq(err, "expires_in is missing or out of range");
    ck_assert_int_eq(token("{\"access_token\":\"t\"", &tok, &ttl, &err), -1);
    ck_assert_int_eq(token("", &tok, &ttl, &err), -1);
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("google_oauth");
    TCase *tc = unit_tcase("google_oauth");

    tcase_add_test(tc, account_parsed);
    tcase_add_test(tc, account_without_key_id_uses_thumbprint);
    tcase_add_test(tc, account_refusals);
    tcase_add_test(tc, assertion_claims_and_signature);
    tcase_add_test(tc, token_request_body);
    tcase_add_test(tc, token_answer);
    suite_add_tcase(s, tc);
    return s;
}
