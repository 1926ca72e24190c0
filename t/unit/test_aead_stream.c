/* Unit tests for common/aead_stream.c: AES-256-GCM against the test
 * vectors of "The Galois/Counter Mode of Operation (GCM)" (McGrew and
 * Viega, the NIST submission; test cases 13-16), the chunked stream's
 * round trips at chunk edges, and its refusal of tampered streams. */
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "aead_stream.h"

static unsigned char *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2, i;
    unsigned char *out = apr_palloc(pool, n + 1);

    for (i = 0; i < n; i++) {
        unsigned int b;
        sscanf(hex + 2 * i, "%2x", &b);
        out[i] = (unsigned char)b;
    }
    if (len)
        *len = n;
    return out;
}

typedef struct {
    const char *key, *iv, *aad, *pt, *ct, *tag;
} gcm_vector;

static const gcm_vector vectors[] = {
    /* Test case 13: zero key, empty plaintext. */
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    /* Test case 14. */
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    /* Test case 15. */
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    /* Test case 16: with associated data. */
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

START_TEST(gcm_spec_vectors)
{
    const gcm_vector *v = &vectors[_i];
    size_t aad_len, pt_len, ct_len;
    unsigned char *key = unhex(v->key, NULL), *iv = unhex(v->iv, NULL);
    unsigned char *aad = unhex(v->aad, &aad_len), *pt = unhex(v->pt, &pt_len);
    unsigned char *ct = unhex(v->ct, &ct_len), *tag = unhex(v->tag, NULL);
    unsigned char out[64], got_tag[16], back[64];

    ck_assert_int_eq(bl_gcm_seal(key, iv, aad, aad_len, pt, pt_len, out, got_tag), 0);
    ck_assert_mem_eq(out, ct, ct_len);
    ck_assert_mem_eq(got_tag, tag, 16);
    ck_assert_int_eq(bl_gcm_open(key, iv, aad, aad_len, ct, ct_len, tag, back), 0);
    ck_assert_mem_eq(back, pt, pt_len);
    tag[0] ^= 1;
    ck_assert_int_eq(bl_gcm_open(key, iv, aad, aad_len, ct, ct_len, tag, back), -1);
}
END_TEST

/* ------------------------------------------------------------ stream */

#define CHUNK 1024

typedef struct {
    unsigned char *data;
    size_t len, cap;
} sink;

static int to_sink(void *ctx, const unsigned char *data, size_t len)
{
    sink *s = ctx;

    ck_assert_uint_le(s->len + len, s->cap);
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return 0;
}

static sink new_sink(size_t cap)
{
    sink s = {apr_palloc(pool, cap + 1), 0, cap};
    return s;
}

static const unsigned char key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const unsigned char prefix[8] = {0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x10, 0x11};

/* Encrypts len bytes, fed in pieces of step bytes. */
static sink encrypt(const unsigned char *pt, size_t len, size_t step)
{
    sink out = new_sink(bl_aead_ciphertext_size(len, CHUNK));
    bl_aead_stream *s = bl_aead_encryptor(pool, key, prefix, CHUNK, to_sink, &out);
    size_t off;

    ck_assert_ptr_nonnull(s);
    for (off = 0; off < len; off += step)
        ck_assert_int_eq(bl_aead_update(s, pt + off, len - off < step ? len - off : step), 0);
    ck_assert_int_eq(bl_aead_final(s), 0);
    ck_assert_uint_eq(out.len, bl_aead_ciphertext_size(len, CHUNK));
    return out;
}

/* Decrypts from chunk first; returns the stream's result. */
static int decrypt(const unsigned char *ct, size_t len, uint64_t first, sink *out,
                   const char **err)
{
    bl_aead_stream *s = bl_aead_decryptor(pool, key, prefix, CHUNK, first, to_sink, out);
    int rc = bl_aead_update(s, ct, len);

    if (rc == 0)
        rc = bl_aead_final(s);
    *err = bl_aead_error(s);
    return rc;
}

static unsigned char *plaintext(size_t len)
{
    unsigned char *p = apr_palloc(pool, len + 1);
    size_t i;

    for (i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 31 + 7);
    return p;
}

START_TEST(stream_round_trips)
{
    static const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5, 4 * CHUNK};
    size_t i;

    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *pt = plaintext(sizes[i]);
        sink ct = encrypt(pt, sizes[i], 333), back = new_sink(sizes[i]);
        const char *err;

        ck_assert_int_eq(decrypt(ct.data, ct.len, 0, &back, &err), 0);
        ck_assert_uint_eq(back.len, sizes[i]);
        if (sizes[i])
            ck_assert_mem_eq(back.data, pt, sizes[i]);
        /* The same plaintext under the same key and prefix gives the same
         * bytes: callers must use a fresh key per file. */
        ck_assert_mem_eq(encrypt(pt, sizes[i], 1000).data, ct.data, ct.len);
    }
}
END_TEST

START_TEST(stream_from_a_middle_chunk)
{
    size_t len = 3 * CHUNK + 5;
    unsigned char *pt = plaintext(len);
    sink ct = encrypt(pt, len, len), back = new_sink(len);
    uint64_t off = bl_aead_chunk_offset(2, CHUNK);
    const char *err;

    ck_assert_int_eq(decrypt(ct.data + off, ct.len - off, 2, &back, &err), 0);
    ck_assert_uint_eq(back.len, len - 2 * CHUNK);
    ck_assert_mem_eq(back.data, pt + 2 * CHUNK, back.len);
    /* The same bytes claimed as chunk 1 do not open. */
    back.len = 0;
    ck_assert_int_eq(decrypt(ct.data + off, ct.len - off, 1, &back, &err), BL_AEAD_FAILED);
}
END_TEST

START_TEST(stream_tampering_refused)
{
    size_t len = 3 * CHUNK + 5, piece = CHUNK + 16;
    unsigned char *pt = plaintext(len), *bad;
    sink ct = encrypt(pt, len, len), back = new_sink(len);
    const char *err;

    /* One flipped byte. */
    bad = apr_pmemdup(pool, ct.data, ct.len);
    bad[CHUNK + 100] ^= 0x40;
    ck_assert_int_eq(decrypt(bad, ct.len, 0, &back, &err), BL_AEAD_FAILED);
    ck_assert_ptr_nonnull(strstr(err, "authentication"));
    /* Chunks 0 and 1 swapped. */
    bad = apr_pmemdup(pool, ct.data, ct.len);
    memcpy(bad, ct.data + piece, piece);
    memcpy(bad + piece, ct.data, piece);
    back.len = 0;
    ck_assert_int_eq(decrypt(bad, ct.len, 0, &back, &err), BL_AEAD_FAILED);
    ck_assert_uint_eq(back.len, 0);
    /* Cut at a chunk boundary: the final chunk is missing. */
    back.len = 0;
    ck_assert_int_eq(decrypt(ct.data, 3 * piece, 0, &back, &err), BL_AEAD_FAILED);
    /* Cut inside the last chunk. */
    back.len = 0;
    ck_assert_int_eq(decrypt(ct.data, ct.len - 3, 0, &back, &err), BL_AEAD_FAILED);
    /* Cut to fewer bytes than a tag. */
    back.len = 0;
    ck_assert_int_eq(decrypt(ct.data, 3 * piece + 10, 0, &back, &err), BL_AEAD_FAILED);
    ck_assert_str_eq(err, "truncated: the final chunk is missing");
    /* Extended after the final chunk. */
    bad = apr_palloc(pool, ct.len + 20);
    memcpy(bad, ct.data, ct.len);
    memset(bad + ct.len, 0, 20);
    back.len = 0;
    ck_assert_int_ne(decrypt(bad, ct.len + 20, 0, &back, &err), 0);
    /* An empty file's stream is one empty final chunk, not nothing. */
    back.len = 0;
    ck_assert_int_eq(decrypt(ct.data, 0, 0, &back, &err), BL_AEAD_FAILED);
}
END_TEST

static int stop_at_once(void *ctx, const unsigned char *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 1;
}

START_TEST(stream_aborted_and_bad_chunk_size)
{
    unsigned char *pt = plaintext(2 * CHUNK);
    bl_aead_stream *s = bl_aead_encryptor(pool, key, prefix, CHUNK, stop_at_once, NULL);

    ck_assert_int_eq(bl_aead_update(s, pt, 2 * CHUNK), BL_AEAD_ABORTED);
    ck_assert_int_eq(bl_aead_final(s), BL_AEAD_ABORTED);
    ck_assert_ptr_null(bl_aead_encryptor(pool, key, prefix, 100, stop_at_once, NULL));
}
END_TEST

START_TEST(key_wrapping)
{
    unsigned char master[32], other[32], dek[32], wrapped[BL_AEAD_WRAPPED_LEN],
        again[BL_AEAD_WRAPPED_LEN], back[32];
    static const char aad[] = "record-1:v1";

    memset(master, 0x42, sizeof master);
    memset(other, 0x43, sizeof other);
    memset(dek, 0x17, sizeof dek);
    ck_assert_int_eq(bl_aead_wrap_key(master, (const unsigned char *)aad, strlen(aad), dek,
                                      wrapped), 0);
    ck_assert_int_eq(bl_aead_wrap_key(master, (const unsigned char *)aad, strlen(aad), dek,
                                      again), 0);
    /* A fresh IV each time. */
    ck_assert_int_ne(memcmp(wrapped, again, sizeof wrapped), 0);
    ck_assert_int_eq(bl_aead_unwrap_key(master, (const unsigned char *)aad, strlen(aad),
                                        wrapped, back), 0);
    ck_assert_mem_eq(back, dek, 32);
    ck_assert_int_eq(bl_aead_unwrap_key(other, (const unsigned char *)aad, strlen(aad),
                                        wrapped, back), -1);
    ck_assert_int_eq(bl_aead_unwrap_key(master, (const unsigned char *)"record-2:v1", 11,
                                        wrapped, back), -1);
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("aead_stream");
    TCase *tc = unit_tcase("core");

    tcase_add_loop_test(tc, gcm_spec_vectors, 0, sizeof vectors / sizeof vectors[0]);
    tcase_add_test(tc, stream_round_trips);
    tcase_add_test(tc, stream_from_a_middle_chunk);
    tcase_add_test(tc, stream_tampering_refused);
    tcase_add_test(tc, stream_aborted_and_bad_chunk_size);
    tcase_add_test(tc, key_wrapping);
    suite_add_tcase(s, tc);
    return s;
}
