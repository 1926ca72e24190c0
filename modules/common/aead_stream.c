/* Chunked AES-256-GCM (see aead_stream.h for the format) on OpenSSL EVP. */
#include "aead_stream.h"
#include "random.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define AEAD_MIN_CHUNK 1024
#define AEAD_MAX_CHUNK (16 * 1024 * 1024)
#define AEAD_AAD_LEN 9

/* ------------------------------------------------------------ one shot */

static int gcm_run(int encrypt, const unsigned char *key, const unsigned char *iv,
                   const unsigned char *aad, size_t aad_len,
                   const unsigned char *in, size_t len, unsigned char *out,
                   unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n, ok;

    if (!ctx)
        return -1;
    ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv, encrypt) == 1
         && (aad_len == 0 || EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1)
         && (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1)
         && (encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, BL_AEAD_TAG_LEN,
                                            tag) == 1)
         && EVP_CipherFinal_ex(ctx, out + len, &n) == 1
         && (!encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, BL_AEAD_TAG_LEN,
                                             tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

int bl_gcm_seal(const unsigned char key[BL_AEAD_KEY_LEN],
                const unsigned char iv[BL_AEAD_IV_LEN],
                const unsigned char *aad, size_t aad_len,
                const unsigned char *in, size_t len,
                unsigned char *out, unsigned char tag[BL_AEAD_TAG_LEN])
{
    return gcm_run(1, key, iv, aad, aad_len, in, len, out, tag);
}

int bl_gcm_open(const unsigned char key[BL_AEAD_KEY_LEN],
                const unsigned char iv[BL_AEAD_IV_LEN],
                const unsigned char *aad, size_t aad_len,
                const unsigned char *in, size_t len,
                const unsigned char tag[BL_AEAD_TAG_LEN], unsigned char *out)
{
    unsigned char t[BL_AEAD_TAG_LEN];

    memcpy(t, tag, sizeof t);
    return gcm_run(0, key, iv, aad, aad_len, in, len, out, t);
}

/* ------------------------------------------------------------ stream */

struct bl_aead_stream {
    int encrypt;
    unsigned char key[BL_AEAD_KEY_LEN];
    unsigned char prefix[BL_AEAD_PREFIX_LEN];
    size_t chunk_size;
    size_t piece;               /* bytes per full input piece: chunk (+ tag) */
    uint64_t index;             /* next chunk */
    unsigned char *in;          /* the piece being gathered */
    size_t in_len;
    unsigned char *out;         /* one chunk of output */
    EVP_CIPHER_CTX *cipher;     /* keyed once; each chunk only sets its IV */
    int done;                   /* the final chunk went by */
    bl_aead_out_fn *out_fn;
    void *ctx;
    const char *err;
    int result;
};

static apr_status_t wipe_stream(void *data)
{
    bl_aead_stream *s = data;

    OPENSSL_cleanse(s->key, sizeof s->key);
    EVP_CIPHER_CTX_free(s->cipher);     /* frees the key schedule wiped */
    s->cipher = NULL;
    OPENSSL_cleanse(s->in, s->piece);
    OPENSSL_cleanse(s->out, s->chunk_size + BL_AEAD_TAG_LEN);
    return APR_SUCCESS;
}

static bl_aead_stream *stream_create(apr_pool_t *p, int encrypt, const unsigned char *key,
                                     const unsigned char *prefix, size_t chunk_size,
                                     bl_aead_out_fn *out, void *ctx)
{
    bl_aead_stream *s;

    if (chunk_size < AEAD_MIN_CHUNK || chunk_size > AEAD_MAX_CHUNK)
        return NULL;
    s = apr_pcalloc(p, sizeof *s);
    s->encrypt = encrypt;
    memcpy(s->key, key, sizeof s->key);
    memcpy(s->prefix, prefix, sizeof s->prefix);
    s->chunk_size = chunk_size;
    s->piece = encrypt ? chunk_size : chunk_size + BL_AEAD_TAG_LEN;
    s->in = apr_palloc(p, s->piece);
    s->out = apr_palloc(p, chunk_size + BL_AEAD_TAG_LEN);
    s->out_fn = out;
    s->ctx = ctx;
    apr_pool_cleanup_register(p, s, wipe_stream, apr_pool_cleanup_null);
    /* The key schedule and GHASH tables are computed once per stream, not
     * once per chunk. */
    if (!(s->cipher = EVP_CIPHER_CTX_new())
        || EVP_CipherInit_ex(s->cipher, EVP_aes_256_gcm(), NULL, s->key, NULL, encrypt) != 1)
        return NULL;
    return s;
}

bl_aead_stream *bl_aead_encryptor(apr_pool_t *p, const unsigned char key[BL_AEAD_KEY_LEN],
                                  const unsigned char prefix[BL_AEAD_PREFIX_LEN],
                                  size_t chunk_size, bl_aead_out_fn *out, void *ctx)
{
    return stream_create(p, 1, key, prefix, chunk_size, out, ctx);
}

bl_aead_stream *bl_aead_decryptor(apr_pool_t *p, const unsigned char key[BL_AEAD_KEY_LEN],
                                  const unsigned char prefix[BL_AEAD_PREFIX_LEN],
                                  size_t chunk_size, uint64_t first_chunk,
                                  bl_aead_out_fn *out, void *ctx)
{
    bl_aead_stream *s = stream_create(p, 0, key, prefix, chunk_size, out, ctx);

    if (s)
        s->index = first_chunk;
    return s;
}

static int stream_fail(bl_aead_stream *s, int result, const char *err)
{
    s->result = result;
    s->err = err;
    return result;
}

/* The nonce and associated data of chunk s->index. */
static void chunk_params(const bl_aead_stream *s, int final, unsigned char iv[BL_AEAD_IV_LEN],
                         unsigned char aad[AEAD_AAD_LEN])
{
    uint64_t i = s->index;
    int b;

    memcpy(iv, s->prefix, BL_AEAD_PREFIX_LEN);
    for (b = 0; b < 4; b++)
        iv[BL_AEAD_PREFIX_LEN + b] = (unsigned char)(i >> (24 - 8 * b));
    for (b = 0; b < 8; b++)
        aad[b] = (unsigned char)(i >> (56 - 8 * b));
    aad[8] = final ? 1 : 0;
}

/* Seals or opens one chunk with the stream's context: only the IV changes
 * (EVP_CipherInit_ex with no cipher and no key keeps both). */
static int chunk_cipher(bl_aead_stream *s, const unsigned char *iv, const unsigned char *aad,
                        const unsigned char *in, size_t len, unsigned char *out,
                        unsigned char *tag)
{
    EVP_CIPHER_CTX *c = s->cipher;
    int n;

    return EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, s->encrypt) == 1
           && EVP_CipherUpdate(c, NULL, &n, aad, AEAD_AAD_LEN) == 1
           && (len == 0 || EVP_CipherUpdate(c, out, &n, in, (int)len) == 1)
           && (s->encrypt
               || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, BL_AEAD_TAG_LEN, tag) == 1)
           && EVP_CipherFinal_ex(c, out + len, &n) == 1
           && (!s->encrypt
               || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, BL_AEAD_TAG_LEN, tag) == 1)
           ? 0 : -1;
}

/* Encrypts or opens the gathered piece as chunk s->index and hands the
 * result on. */
static int process_chunk(bl_aead_stream *s, int final)
{
    unsigned char iv[BL_AEAD_IV_LEN], aad[AEAD_AAD_LEN];
    size_t out_len;

    if (s->index > UINT32_MAX)
        return stream_fail(s, BL_AEAD_FAILED, "stream too long");
    chunk_params(s, final, iv, aad);
    if (s->encrypt) {
        if (chunk_cipher(s, iv, aad, s->in, s->in_len, s->out, s->out + s->in_len) != 0)
            return stream_fail(s, BL_AEAD_FAILED, "encryption failed");
        out_len = s->in_len + BL_AEAD_TAG_LEN;
    } else {
        if (s->in_len < BL_AEAD_TAG_LEN)
            return stream_fail(s, BL_AEAD_FAILED, "truncated: the final chunk is missing");
        out_len = s->in_len - BL_AEAD_TAG_LEN;
        if (chunk_cipher(s, iv, aad, s->in, out_len, s->out, s->in + out_len) != 0)
            return stream_fail(s, BL_AEAD_FAILED,
                               final ? "a chunk failed authentication (altered or truncated)"
                                     : "a chunk failed authentication (altered or reordered)");
    }
    s->index++;
    s->in_len = 0;
    if (final)
        s->done = 1;
    if (s->out_fn && s->out_fn(s->ctx, s->out, out_len) != 0)
        return stream_fail(s, BL_AEAD_ABORTED, "stopped by the caller");
    return 0;
}

int bl_aead_update(bl_aead_stream *s, const void *data, size_t len)
{
    const unsigned char *d = data;

    if (s->result)
        return s->result;
    if (s->done && len > 0)
        return stream_fail(s, BL_AEAD_FAILED, "data after the final chunk");
    while (len > 0) {
        size_t n = s->piece - s->in_len;
        int rc;

        if (n > len)
            n = len;
        memcpy(s->in + s->in_len, d, n);
        s->in_len += n;
        d += n;
        len -= n;
        /* A full piece is never the last: the final chunk is shorter. */
        if (s->in_len == s->piece && (rc = process_chunk(s, 0)) != 0)
            return rc;
    }
    return 0;
}

int bl_aead_final(bl_aead_stream *s)
{
    if (s->result)
        return s->result;
    if (s->done)
        return 0;
    return process_chunk(s, 1);
}

const char *bl_aead_error(const bl_aead_stream *s)
{
    return s->err;
}

uint64_t bl_aead_chunk_offset(uint64_t chunk, size_t chunk_size)
{
    return chunk * (uint64_t)(chunk_size + BL_AEAD_TAG_LEN);
}

uint64_t bl_aead_ciphertext_size(uint64_t len, size_t chunk_size)
{
    return len + (len / chunk_size + 1) * BL_AEAD_TAG_LEN;
}

/* ------------------------------------------------------------ key wrap */

int bl_aead_wrap_key(const unsigned char master[BL_AEAD_KEY_LEN],
                     const unsigned char *aad, size_t aad_len,
                     const unsigned char key[BL_AEAD_KEY_LEN],
                     unsigned char wrapped[BL_AEAD_WRAPPED_LEN])
{
    if (!bl_random_bytes(wrapped, BL_AEAD_IV_LEN))
        return -1;
    return bl_gcm_seal(master, wrapped, aad, aad_len, key, BL_AEAD_KEY_LEN,
                       wrapped + BL_AEAD_IV_LEN,
                       wrapped + BL_AEAD_IV_LEN + BL_AEAD_KEY_LEN);
}

int bl_aead_unwrap_key(const unsigned char master[BL_AEAD_KEY_LEN],
                       const unsigned char *aad, size_t aad_len,
                       const unsigned char wrapped[BL_AEAD_WRAPPED_LEN],
                       unsigned char key[BL_AEAD_KEY_LEN])
{
    return bl_gcm_open(master, wrapped, aad, aad_len, wrapped + BL_AEAD_IV_LEN,
                       BL_AEAD_KEY_LEN, wrapped + BL_AEAD_IV_LEN + BL_AEAD_KEY_LEN, key);
}
