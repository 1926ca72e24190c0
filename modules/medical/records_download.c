/* GET /medical-records/:id/download: the decrypted file, streamed, with
 * HTTP Range support (one range).
 *
 * Two passes over the ciphertext: the first authenticates every chunk and
 * checks the plaintext's SHA-256 without sending anything, so a flipped
 * byte, a swapped chunk or a cut-off tail gives an error and no partial
 * plaintext; the second decrypts from the chunk holding the range's first
 * byte and sends. */
#include "medical_private.h"
#include "hmac.h"
#include "json.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <stdlib.h>
#include <string.h>

APLOG_USE_MODULE(beautiful_medical);

typedef struct {
    const char *storage_key, *content_type, *sha256_hex, *wrapped_hex, *prefix_hex;
    const char *filename, *id;
    apr_off_t size;
    int key_version, chunk_size;
} stored_record;

/* ---------------------------------------------------------------- range */

/* Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range against size.
 * Returns 1 with [*first, *last] set, 0 when there is no usable Range
 * header (send it all), -1 when unsatisfiable (416). */
static int parse_range(const char *h, apr_off_t size, apr_off_t *first, apr_off_t *last)
{
    const char *spec;
    char *end;
    apr_off_t a, b;

    if (!h || strncasecmp(h, "bytes=", 6) != 0)
        return 0;
    spec = h + 6;
    while (*spec == ' ')
        spec++;
    if (strchr(spec, ','))
        return 0;   /* several ranges: the whole file is a valid answer */
    if (*spec == '-') {
        if (apr_strtoff(&b, spec + 1, &end, 10) != APR_SUCCESS || *end || b <= 0)
            return 0;
        if (size == 0)
            return -1;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (apr_strtoff(&a, spec, &end, 10) != APR_SUCCESS || a < 0 || *end != '-')
        return 0;
    if (end[1] == '\0') {
        b = size - 1;
    } else {
        const char *bs = end + 1;
        if (apr_strtoff(&b, bs, &end, 10) != APR_SUCCESS || *end || b < a)
            return 0;
        if (b >= size)
            b = size - 1;
    }
    if (a >= size)
        return -1;
    *first = a;
    *last = b;
    return 1;
}

/* ---------------------------------------------------------------- decrypt */

typedef struct {
    request_rec *r;
    bl_aead_stream *dec;
    EVP_MD_CTX *sha;
    apr_off_t pos;             /* plaintext offset of the next output byte */
    apr_off_t first, last;     /* the bytes to send (pass 2) */
    int sending;
    int client_gone;
} download;

static int read_into_decryptor(void *ctx, const char *data, apr_size_t len)
{
    download *d = ctx;

    return bl_aead_update(d->dec, data, len) != 0;
}

static int verify_plaintext(void *ctx, const unsigned char *data, size_t len)
{
    download *d = ctx;

    return EVP_DigestUpdate(d->sha, data, len) != 1;
}

/* Sends the part of each chunk that falls into [first, last]. */
static int send_plaintext(void *ctx, const unsigned char *data, size_t len)
{
    download *d = ctx;
    apr_off_t start = d->pos, end = d->pos + (apr_off_t)len;  /* [start, end) */
    apr_off_t from = start > d->first ? start : d->first;
    apr_off_t to = end < d->last + 1 ? end : d->last + 1;

    d->pos = end;
    if (to > from && ap_rwrite(data + (from - start), (int)(to - from), d->r) < 0) {
        d->client_gone = 1;
        return 1;
    }
    return d->pos > d->last;   /* past the range: stop reading */
}

static int unwrap_data_key(request_rec *r, const stored_record *rec,
                           unsigned char dek[BL_AEAD_KEY_LEN])
{
    const medical_master_key *mk = medical_key(medical_config(r), rec->key_version);
    const char *aad = medical_key_aad(r->pool, rec->id, rec->key_version);
    unsigned char wrapped[BL_AEAD_WRAPPED_LEN];
    size_t i;

    if (!mk || strlen(rec->wrapped_hex) != 2 * BL_AEAD_WRAPPED_LEN) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_beautiful_medical: record %s needs master key version %d, "
                      "which is not configured", rec->id, rec->key_version);
        return -1;
    }
    for (i = 0; i < BL_AEAD_WRAPPED_LEN; i++) {
        char pair[3] = {rec->wrapped_hex[2 * i], rec->wrapped_hex[2 * i + 1], 0};
        wrapped[i] = (unsigned char)strtoul(pair, NULL, 16);
    }
    if (bl_aead_unwrap_key(mk->key, (const unsigned char *)aad, strlen(aad), wrapped, dek)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_beautiful_medical: the data key of record %s does not unwrap",
                      rec->id);
        return -1;
    }
    return 0;
}

static void hex_to_bytes(const char *hex, unsigned char *out, size_t n)
{
    size_t i;

    for (i = 0; i < n && hex[2 * i] && hex[2 * i + 1]; i++) {
        char pair[3] = {hex[2 * i], hex[2 * i + 1], 0};
        out[i] = (unsigned char)strtoul(pair, NULL, 16);
    }
}

static int integrity_error(request_rec *r, const stored_record *rec, const char *why)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "mod_beautiful_medical: record %s failed its integrity check: %s",
                  rec->id, why);
    bl_audit(r, NULL, NULL, "medical.record.download", "medical_record", rec->id, "failure",
             "{\"reason\":\"integrity\"}");
    return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "STORAGE_INTEGRITY_ERROR",
                         "the stored file failed its integrity check; nothing was sent",
                         NULL);
}

/* Pass 1: every chunk authenticates and the plaintext hash matches. */
static int verify_record(request_rec *r, const stored_record *rec, const unsigned char *dek,
                         const unsigned char *prefix)
{
    download d;
    unsigned char digest[BL_SHA256_LEN], want[BL_SHA256_LEN];
    const char *why = NULL;
    int rc;

    memset(&d, 0, sizeof d);
    d.r = r;
    d.sha = EVP_MD_CTX_new();
    d.dec = bl_aead_decryptor(r->pool, dek, prefix, (size_t)rec->chunk_size, 0,
                              verify_plaintext, &d);
    if (!d.sha || !d.dec || EVP_DigestInit_ex(d.sha, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(d.sha);
        return bl_send_unavailable(r, "decryption"), -1;
    }
    rc = medical_storage_read(r, rec->storage_key, 0, read_into_decryptor, &d);
    if (rc != 0) {
        EVP_MD_CTX_free(d.sha);
        return bl_send_unavailable(r, "storage"), -1;
    }
    if (bl_aead_final(d.dec) != 0)
        why = bl_aead_error(d.dec);
    else if (EVP_DigestFinal_ex(d.sha, digest, NULL) != 1)
        why = "hash failure";
    EVP_MD_CTX_free(d.sha);
    if (!why) {
        hex_to_bytes(rec->sha256_hex, want, sizeof want);
        if (!bl_ct_equal(digest, want, sizeof want))
            why = "SHA-256 of the plaintext does not match";
    }
    if (why)
        return integrity_error(r, rec, why), -1;
    return 0;
}

/* RFC 6266: an ASCII fallback and the UTF-8 name, percent-encoded. */
static const char *content_disposition(request_rec *r, const stored_record *rec)
{
    const char *name = rec->filename && *rec->filename
                       ? rec->filename : apr_pstrcat(r->pool, "record-", rec->id, NULL);
    char *ascii = apr_palloc(r->pool, strlen(name) + 1), *a = ascii;
    const unsigned char *c;
    char *pct = apr_palloc(r->pool, 3 * strlen(name) + 1), *o = pct;
    static const char hexd[] = "0123456789ABCDEF";

    /* One '_' per character the fallback cannot carry. */
    for (c = (const unsigned char *)name; *c; c++) {
        if ((*c & 0xc0) == 0x80)
            continue;
        *a++ = (*c < 0x20 || *c >= 0x7f || *c == '"' || *c == '\\' || *c == '%' || *c == ';')
               ? '_' : (char)*c;
    }
    *a = '\0';
    for (c = (const unsigned char *)name; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
            || strchr("!#$&+-.^_`|~", *c)) {
            *o++ = (char)*c;
        } else {
            *o++ = '%';
            *o++ = hexd[*c >> 4];
            *o++ = hexd[*c & 15];
        }
    }
    *o = '\0';
    return apr_psprintf(r->pool, "attachment; filename=\"%s\"; filename*=UTF-8''%s", ascii, pct);
}

/* Pass 2: headers, then the bytes of the range. */
static int send_record(request_rec *r, const stored_record *rec, const unsigned char *dek,
                       const unsigned char *prefix)
{
    apr_off_t first = 0, last = rec->size - 1;
    int ranged = parse_range(apr_table_get(r->headers_in, "Range"), rec->size, &first, &last);
    uint64_t chunk;
    download d;
    int rc;

    apr_table_setn(r->headers_out, "Accept-Ranges", "bytes");
    apr_table_setn(r->err_headers_out, "X-Content-Type-Options", "nosniff");
    if (ranged < 0) {
        apr_table_setn(r->err_headers_out, "Content-Range",
                       apr_psprintf(r->pool, "bytes */%" APR_OFF_T_FMT, rec->size));
        return bl_send_error(r, HTTP_RANGE_NOT_SATISFIABLE, "RANGE_NOT_SATISFIABLE",
                             "the range is outside the file", NULL);
    }
    ap_set_content_type(r, strcmp(rec->content_type, "text/plain") == 0
                           ? "text/plain; charset=utf-8" : rec->content_type);
    apr_table_setn(r->headers_out, "Content-Disposition", content_disposition(r, rec));
    apr_table_setn(r->headers_out, "Content-Security-Policy", "default-src 'none'; sandbox");
    if (ranged) {
        r->status = HTTP_PARTIAL_CONTENT;
        apr_table_setn(r->headers_out, "Content-Range",
                       apr_psprintf(r->pool, "bytes %" APR_OFF_T_FMT "-%" APR_OFF_T_FMT
                                    "/%" APR_OFF_T_FMT, first, last, rec->size));
    }
    ap_set_content_length(r, rec->size == 0 ? 0 : last - first + 1);
    if (r->header_only || rec->size == 0)
        return OK;
    memset(&d, 0, sizeof d);
    d.r = r;
    d.first = first;
    d.last = last;
    chunk = (uint64_t)first / (uint64_t)rec->chunk_size;
    d.pos = (apr_off_t)(chunk * (uint64_t)rec->chunk_size);
    d.dec = bl_aead_decryptor(r->pool, dek, prefix, (size_t)rec->chunk_size, chunk,
                              send_plaintext, &d);
    if (!d.dec)
        return bl_send_unavailable(r, "decryption");
    rc = medical_storage_read(r, rec->storage_key,
                              (apr_off_t)bl_aead_chunk_offset(chunk, (size_t)rec->chunk_size),
                              read_into_decryptor, &d);
    /* The final chunk comes out of bl_aead_final; stopping at the range's
     * end (BL_AEAD_ABORTED) is no failure. */
    if (rc == 0 && d.pos <= d.last && !d.client_gone && bl_aead_final(d.dec) == BL_AEAD_FAILED)
        rc = -1;
    if (rc != 0 || (d.pos <= d.last && !d.client_gone)) {
        /* Changed under us since pass 1: cut the connection rather than
         * let a short body pass for a whole one. */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_beautiful_medical: record %s changed during the download", rec->id);
        r->connection->aborted = 1;
    }
    return OK;
}

static void take_row(request_rec *r, ap_dbd_t *db, apr_dbd_row_t *row, stored_record *rec)
{
    rec->storage_key = bl_db_get(r, db, row, 1);
    rec->content_type = bl_db_get(r, db, row, 2);
    rec->size = apr_atoi64(bl_db_get(r, db, row, 3));
    rec->sha256_hex = bl_db_get(r, db, row, 4);
    rec->wrapped_hex = bl_db_get(r, db, row, 5);
    rec->key_version = atoi(bl_db_get(r, db, row, 6));
    rec->prefix_hex = bl_db_get(r, db, row, 7);
    rec->chunk_size = atoi(bl_db_get(r, db, row, 8));
    rec->filename = bl_db_get(r, db, row, 9);
}

int medical_send_file(request_rec *r, ap_dbd_t *db, apr_dbd_row_t *row, const char *action,
                      const char *details_json)
{
    unsigned char dek[BL_AEAD_KEY_LEN], prefix[BL_AEAD_PREFIX_LEN];
    stored_record rec;
    int rc;

    memset(&rec, 0, sizeof rec);
    take_row(r, db, row, &rec);
    rec.id = bl_db_get(r, db, row, 10);
    if (unwrap_data_key(r, &rec, dek) != 0)
        return bl_send_unavailable(r, "storage master key");
    hex_to_bytes(rec.prefix_hex, prefix, sizeof prefix);
    if (verify_record(r, &rec, dek, prefix) != 0
        || medical_audit(r, db, action, rec.id, "success", details_json) != 0) {
        OPENSSL_cleanse(dek, sizeof dek);
        return OK;
    }
    rc = send_record(r, &rec, dek, prefix);
    OPENSSL_cleanse(dek, sizeof dek);
    return rc;
}

int medical_download(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    const char *id, *args[2], *access;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    if (!user || !(id = medical_record_id(r, params)) || !(db = bl_db(r)))
        return OK;
    args[0] = user->id;
    args[1] = id;
    if (!(res = bl_db_select(r, db, MEDICAL_SQL_FOR_DOWNLOAD, 2, args)))
        return OK;
    if (!(row = medical_first_row(r, db, res)))
        return medical_refuse(r, NULL, "downloading");
    access = bl_db_get(r, db, row, 0);
    if (strcmp(access, "view") == 0) {
        bl_audit(r, db, NULL, "medical.record.download", "medical_record", id, "denied",
                 "{\"access\":\"view\"}");
        return medical_refuse(r, access, "downloading the file");
    }
    return medical_send_file(r, db, row, "medical.record.download",
                             apr_psprintf(r->pool, "{\"access\":%s}",
                                          bl_json_quote(r->pool, access)));
}
