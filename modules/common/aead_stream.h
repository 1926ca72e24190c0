/* Chunked AES-256-GCM for files of any size, and data-key wrapping.
 *
 * Stream format (one file = one data key):
 *   chunk i = AES-256-GCM(key, nonce = prefix(8) || be32(i),
 *                         aad = be64(i) || final(1), plaintext_i) || tag(16)
 * Every chunk but the last holds exactly chunk_size bytes of plaintext;
 * the last one holds fewer (possibly none) and has final = 1, so a file of
 * k * chunk_size bytes ends with an empty final chunk. Reordered chunks
 * fail their tag (the index is in the nonce and the associated data), a
 * cut-off tail lacks its final chunk, and bytes after it are refused. */
#ifndef BL_AEAD_STREAM_H
#define BL_AEAD_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <apr_pools.h>

#define BL_AEAD_KEY_LEN 32
#define BL_AEAD_IV_LEN 12
#define BL_AEAD_TAG_LEN 16
#define BL_AEAD_PREFIX_LEN 8
/* A wrapped data key: iv(12) || ciphertext(32) || tag(16). */
#define BL_AEAD_WRAPPED_LEN (BL_AEAD_IV_LEN + BL_AEAD_KEY_LEN + BL_AEAD_TAG_LEN)

#define BL_AEAD_FAILED  (-1)   /* authentication or format failure */
#define BL_AEAD_ABORTED (-2)   /* the output callback asked to stop */

/* One-shot AES-256-GCM with a 96-bit IV; out has room for len bytes.
 * seal returns 0 (or -1 on a library failure); open returns 0 when the
 * tag verifies, else -1 and out must not be used. */
int bl_gcm_seal(const unsigned char key[BL_AEAD_KEY_LEN],
                const unsigned char iv[BL_AEAD_IV_LEN],
                const unsigned char *aad, size_t aad_len,
                const unsigned char *in, size_t len,
                unsigned char *out, unsigned char tag[BL_AEAD_TAG_LEN]);
int bl_gcm_open(const unsigned char key[BL_AEAD_KEY_LEN],
                const unsigned char iv[BL_AEAD_IV_LEN],
                const unsigned char *aad, size_t aad_len,
                const unsigned char *in, size_t len,
                const unsigned char tag[BL_AEAD_TAG_LEN], unsigned char *out);

/* Receives output (ciphertext when encrypting, authenticated plaintext
 * when decrypting) one chunk at a time; non-zero stops the stream. */
typedef int bl_aead_out_fn(void *ctx, const unsigned char *data, size_t len);

typedef struct bl_aead_stream bl_aead_stream;

/* An encryptor or decryptor; the key is copied and wiped when p is
 * cleared. A decryptor may start at chunk first_chunk (a byte range), fed
 * from that chunk's offset (bl_aead_chunk_offset). NULL on a bad chunk
 * size (1 KiB .. 16 MiB) or a library failure. */
bl_aead_stream *bl_aead_encryptor(apr_pool_t *p, const unsigned char key[BL_AEAD_KEY_LEN],
                                  const unsigned char prefix[BL_AEAD_PREFIX_LEN],
                                  size_t chunk_size, bl_aead_out_fn *out, void *ctx);
bl_aead_stream *bl_aead_decryptor(apr_pool_t *p, const unsigned char key[BL_AEAD_KEY_LEN],
                                  const unsigned char prefix[BL_AEAD_PREFIX_LEN],
                                  size_t chunk_size, uint64_t first_chunk,
                                  bl_aead_out_fn *out, void *ctx);

/* Feeds bytes; 0, BL_AEAD_FAILED or BL_AEAD_ABORTED. */
int bl_aead_update(bl_aead_stream *s, const void *data, size_t len);
/* Ends the stream: the encryptor writes its final chunk; the decryptor
 * checks that the final chunk came and authenticates it. */
int bl_aead_final(bl_aead_stream *s);
/* Why the stream failed, or NULL. */
const char *bl_aead_error(const bl_aead_stream *s);

/* Where chunk i starts in the ciphertext, and the ciphertext size of a
 * plaintext of len bytes. */
uint64_t bl_aead_chunk_offset(uint64_t chunk, size_t chunk_size);
uint64_t bl_aead_ciphertext_size(uint64_t len, size_t chunk_size);

/* Wraps a data key with a master key, bound to aad (the record id and key
 * version): a wrapped key moved to another record does not open. Returns
 * 0, or -1 (RNG or library failure). unwrap returns 0, or -1 when the tag
 * does not verify. */
int bl_aead_wrap_key(const unsigned char master[BL_AEAD_KEY_LEN],
                     const unsigned char *aad, size_t aad_len,
                     const unsigned char key[BL_AEAD_KEY_LEN],
                     unsigned char wrapped[BL_AEAD_WRAPPED_LEN]);
int bl_aead_unwrap_key(const unsigned char master[BL_AEAD_KEY_LEN],
                       const unsigned char *aad, size_t aad_len,
                       const unsigned char wrapped[BL_AEAD_WRAPPED_LEN],
                       unsigned char key[BL_AEAD_KEY_LEN]);

#endif
