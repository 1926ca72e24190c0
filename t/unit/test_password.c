/* argon2id: the RFC 9106 section 5.3 vector and the reference
 * implementation's vector (libargon2 itself), then our hashing policy. */
#include <string.h>
#include <argon2.h>

#include "hmac.h"
#include "password.h"
#include "unit.h"

/* RFC 9106 section 5.3: argon2id with secret and associated data, which
 * only the low-level argon2_ctx API takes. */
START_TEST(rfc9106_argon2id_vector)
{
    uint8_t password[32], salt[16], secret[8], ad[12], tag[32];
    argon2_context ctx;

    memset(password, 0x01, sizeof password);
    memset(salt, 0x02, sizeof salt);
    memset(secret, 0x03, sizeof secret);
    memset(ad, 0x04, sizeof ad);
    memset(&ctx, 0, sizeof ctx);
    ctx.out = tag;
    ctx.outlen = sizeof tag;
    ctx.pwd = password;
    ctx.pwdlen = sizeof password;
    ctx.salt = salt;
    ctx.saltlen = sizeof salt;
    ctx.secret = secret;
    ctx.secretlen = sizeof secret;
    ctx.ad = ad;
    ctx.adlen = sizeof ad;
    ctx.t_cost = 3;
    ctx.m_cost = 32;
    ctx.lanes = 4;
    ctx.threads = 4;
    ctx.version = ARGON2_VERSION_13;
    ctx.flags = ARGON2_DEFAULT_FLAGS;
    ck_assert_int_eq(argon2_ctx(&ctx, Argon2_id), ARGON2_OK);
    ck_assert_str_eq(bl_hex(pool, tag, sizeof tag),
                     "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
}
END_TEST

/* phc-winner-argon2 test.c: argon2id v=0x13, t=2, m=2^16, p=1. */
START_TEST(reference_implementation_vector)
{
    static const char encoded[] =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    uint8_t tag[32];

    ck_assert_int_eq(argon2id_hash_raw(2, 65536, 1, "password", 8, "somesalt", 8, tag, sizeof tag),
                     ARGON2_OK);
    ck_assert_str_eq(bl_hex(pool, tag, sizeof tag),
                     "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7");
    /* Our verifier accepts hashes made by other argon2id implementations. */
    ck_assert_int_eq(bl_password_verify(encoded, "password", 8), 1);
    ck_assert_int_eq(bl_password_verify(encoded, "passwore", 8), 0);
    /* More memory than ours, but an 8-byte salt: rehash on next login. */
    ck_assert_int_eq(bl_password_needs_rehash(encoded), 1);
}
END_TEST

START_TEST(hash_format_and_round_trip)
{
    const char *pw = "correct horse battery staple";
    const char *h1 = bl_password_hash(pool, pw, strlen(pw));
    const char *h2 = bl_password_hash(pool, pw, strlen(pw));

    ck_assert_ptr_nonnull(h1);
    ck_assert_ptr_nonnull(h2);
    ck_assert(strncmp(h1, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
    /* Fresh salt each time. */
    ck_assert_str_ne(h1, h2);
    ck_assert_int_eq(bl_password_verify(h1, pw, strlen(pw)), 1);
    ck_assert_int_eq(bl_password_verify(h2, pw, strlen(pw)), 1);
    ck_assert_int_eq(bl_password_needs_rehash(h1), 0);
}
END_TEST

START_TEST(wrong_password_fails)
{
    const char *h = bl_password_hash(pool, "s3cret-passphrase", 17);

    ck_assert_int_eq(bl_password_verify(h, "s3cret-passphrasE", 17), 0);
    ck_assert_int_eq(bl_password_verify(h, "s3cret-passphras", 16), 0);
    ck_assert_int_eq(bl_password_verify(h, "", 0), 0);
}
END_TEST

/* bcrypt stops at 72 bytes; argon2id must not. */
START_TEST(no_truncation_after_72_bytes)
{
    char a[81], b[81];
    const char *h;

    memset(a, 'x', 80);
    a[80] = '\0';
    memcpy(b, a, sizeof b);
    b[79] = 'y';
    h = bl_password_hash(pool, a, 80);
    ck_assert_int_eq(bl_password_verify(h, a, 80), 1);
    ck_assert_int_eq(bl_password_verify(h, b, 80), 0);
    ck_assert_int_eq(bl_password_verify(h, a, 72), 0);
}
END_TEST

START_TEST(malformed_encoded_fails)
{
    static const char *const bad[] = {
        "", "plain", "$argon2id$", "$argon2id$v=19$m=19456,t=2,p=1$",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ",
        "$argon2id$v=19$m=19456,t=2,p=1$!!!$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
        NULL
    };
    const char *const *b;

    for (b = bad; *b; b++)
        ck_assert_msg(bl_password_verify(*b, "password", 8) == 0, "accepted %s", *b);
    ck_assert_int_eq(bl_password_verify(NULL, "password", 8), 0);
}
END_TEST

START_TEST(needs_rehash_for_weaker_parameters)
{
    static const char hash_tail[] = "$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";

    ck_assert_int_eq(bl_password_needs_rehash(apr_pstrcat(pool, "$argon2id$v=19$m=19456,t=2,p=1", hash_tail, NULL)), 0);
    ck_assert_int_eq(bl_password_needs_rehash(apr_pstrcat(pool, "$argon2id$v=19$m=4096,t=2,p=1", hash_tail, NULL)), 1);
    ck_assert_int_eq(bl_password_needs_rehash(apr_pstrcat(pool, "$argon2id$v=19$m=19456,t=1,p=1", hash_tail, NULL)), 1);
    ck_assert_int_eq(bl_password_needs_rehash(apr_pstrcat(pool, "$argon2id$v=16$m=19456,t=2,p=1", hash_tail, NULL)), 1);
    ck_assert_int_eq(bl_password_needs_rehash(apr_pstrcat(pool, "$argon2i$v=19$m=19456,t=2,p=1", hash_tail, NULL)), 1);
    /* Salt shorter than 16 bytes ("somesalt" is 8). */
    ck_assert_int_eq(bl_password_needs_rehash("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"), 1);
    ck_assert_int_eq(bl_password_needs_rehash("garbage"), 1);
    ck_assert_int_eq(bl_password_needs_rehash(NULL), 1);
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("password");
    TCase *tc = unit_tcase("argon2id");

    tcase_set_timeout(tc, 300);    /* argon2 under valgrind is slow by design */
    tcase_add_test(tc, rfc9106_argon2id_vector);
    tcase_add_test(tc, reference_implementation_vector);
    tcase_add_test(tc, hash_format_and_round_trip);
    tcase_add_test(tc, wrong_password_fails);
    tcase_add_test(tc, no_truncation_after_72_bytes);
    tcase_add_test(tc, malformed_encoded_fails);
    tcase_add_test(tc, needs_rehash_for_weaker_parameters);
    suite_add_tcase(s, tc);
    return s;
}
