/* argon2id password hashing (libargon2), PHC string format. */
#include "password.h"

#include <stdlib.h>
#include <string.h>
#include <argon2.h>

#include "random.h"

const char *bl_password_hash(apr_pool_t *p, const char *password, size_t len)
{
    unsigned char salt[BL_ARGON2_SALT_LEN];
    size_t encoded_len = argon2_encodedlen(BL_ARGON2_T_COST, BL_ARGON2_M_COST_KIB,
                                           BL_ARGON2_PARALLELISM, BL_ARGON2_SALT_LEN,
                                           BL_ARGON2_HASH_LEN, Argon2_id);
    char *encoded;

    if (!password || len > ARGON2_MAX_PWD_LENGTH || !bl_random_bytes(salt, sizeof salt))
        return NULL;
    encoded = apr_palloc(p, encoded_len);
    if (argon2id_hash_encoded(BL_ARGON2_T_COST, BL_ARGON2_M_COST_KIB, BL_ARGON2_PARALLELISM,
                              password, len, salt, sizeof salt, BL_ARGON2_HASH_LEN,
                              encoded, encoded_len) != ARGON2_OK)
        return NULL;
    return encoded;
}

int bl_password_verify(const char *encoded, const char *password, size_t len)
{
    if (!encoded || !password || len > ARGON2_MAX_PWD_LENGTH)
        return 0;
    /* argon2id_verify compares in constant time and refuses other variants. */
    return argon2id_verify(encoded, password, len) == ARGON2_OK;
}

/* Reads "<name>=<decimal>" at *s, advancing past it; 0 on mismatch. */
static int read_param(const char **s, const char *name, unsigned long *value)
{
    size_t name_len = strlen(name);
    char *end;

    if (strncmp(*s, name, name_len) != 0 || (*s)[name_len] != '=' ||
        (*s)[name_len + 1] < '0' || (*s)[name_len + 1] > '9')
        return 0;
    *value = strtoul(*s + name_len + 1, &end, 10);
    *s = end;
    return 1;
}

/* Length of the base64 (no padding) field at s up to '$' or the end. */
static size_t field_length(const char *s)
{
    return strcspn(s, "$");
}

int bl_password_needs_rehash(const char *encoded)
{
    const char *s = encoded;
    unsigned long version, m, t, par;
    size_t salt_b64, hash_b64;

    if (!s || strncmp(s, "$argon2id$", 10) != 0)
        return 1;
    s += 10;
    if (!read_param(&s, "v", &version) || *s++ != '$' ||
        !read_param(&s, "m", &m) || *s++ != ',' ||
        !read_param(&s, "t", &t) || *s++ != ',' ||
        !read_param(&s, "p", &par) || *s++ != '$')
        return 1;
    salt_b64 = field_length(s);
    if (s[salt_b64] != '$')
        return 1;
    hash_b64 = field_length(s + salt_b64 + 1);
    /* Unpadded base64 of n bytes is ceil(4n/3) characters. */
    return version != ARGON2_VERSION_13 ||
           m < BL_ARGON2_M_COST_KIB || t < BL_ARGON2_T_COST || par < BL_ARGON2_PARALLELISM ||
           salt_b64 < (BL_ARGON2_SALT_LEN * 4 + 2) / 3 ||
           hash_b64 < (BL_ARGON2_HASH_LEN * 4 + 2) / 3;
}
