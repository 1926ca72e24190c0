/* POST /medical-records: a file streamed from the client through type
 * sniffing, SHA-256 and chunked AES-256-GCM into storage, never held
 * whole in memory.
 *
 * Two shapes: multipart/form-data as browsers send it (a "file" part and
 * the fields title, description, record_type, record_date), or the raw
 * file as the body with the fields (and filename) as query parameters.
 * Whatever stops the upload (limit, type, a client gone, a storage or
 * database error) leaves no row and no blob: the blob is written under a
 * temporary name removed with the request unless the row was committed. */
#include "medical_private.h"
#include "docsniff.h"
#include "hmac.h"
#include "json.h"
#include "multipart.h"
#include "random.h"
#include "uuid.h"
#include "validate.h"

#include <http_log.h>
#include <http_protocol.h>
#include <util_script.h>
#include <apr_strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_medical);

#define READ_BYTES (128 * 1024)
/* Room for the multipart framing and the text fields around the file. */
#define MULTIPART_OVERHEAD (64 * 1024)
#define MAX_PARTS 8
#define FIELD_MAX_BYTES (24 * 1024)
#define TITLE_MAX_CHARS 200
#define DESCRIPTION_MAX_CHARS 5000
#define FILENAME_MAX_CHARS 255
#define FILE_FIELD "file"

static const char *const text_fields[] = {"title", "description", "record_type",
                                          "record_date", NULL};

typedef struct {
    request_rec *r;
    const medical_conf *conf;
    const medical_master_key *master;
    const char *record_id;
    unsigned char dek[BL_AEAD_KEY_LEN];
    unsigned char prefix[BL_AEAD_PREFIX_LEN];
    medical_writer *writer;
    bl_aead_stream *enc;
    EVP_MD_CTX *sha, *sha1_ctx;
    unsigned char sha256[BL_SHA256_LEN];
    unsigned char sha1[20];
    bl_text_check text;
    unsigned char head[BL_DOCSNIFF_HEAD];
    apr_size_t head_len;
    const char *mime;               /* decided from the first bytes */
    apr_off_t size;
    int file_started, file_done;
    const char *filename;           /* the client's, metadata only */
    apr_table_t *fields;
    /* the text part being read */
    const char *field_name;
    char *field_buf;
    apr_size_t field_len;
    int in_file;
    /* why the upload stopped, answered once the body loop ends */
    int status;
    const char *code, *message, *details;
} upload;

static int upload_fail(upload *u, int status, const char *code, const char *message,
                       const char *details)
{
    if (!u->status) {
        u->status = status;
        u->code = code;
        u->message = message;
        u->details = details;
    }
    return 1;
}

static int fail_storage(upload *u)
{
    return upload_fail(u, HTTP_SERVICE_UNAVAILABLE, BL_ERR_UNAVAILABLE,
                       "the file could not be stored", NULL);
}

static apr_status_t upload_cleanup(void *data)
{
    upload *u = data;

    OPENSSL_cleanse(u->dek, sizeof u->dek);
    if (u->sha)
        EVP_MD_CTX_free(u->sha);
    if (u->sha1_ctx)
        EVP_MD_CTX_free(u->sha1_ctx);
    u->sha = u->sha1_ctx = NULL;
    return APR_SUCCESS;
}

/* Ciphertext chunks go straight to storage. */
static int write_ciphertext(void *ctx, const unsigned char *data, size_t len)
{
    upload *u = ctx;

    return medical_writer_write(u->writer, data, len) != 0 ? -1 : 0;
}

/* A fresh data key, nonce prefix and blob for the file. */
static int file_begin(upload *u)
{
    request_rec *r = u->r;

    u->record_id = bl_uuid_v4(r->pool);
    if (!bl_random_bytes(u->dek, sizeof u->dek) || !bl_random_bytes(u->prefix, sizeof u->prefix))
        return upload_fail(u, HTTP_SERVICE_UNAVAILABLE, BL_ERR_UNAVAILABLE,
                           "no randomness for the file's key", NULL);
    if (!(u->writer = medical_storage_create(r, u->record_id)))
        return fail_storage(u);
    u->enc = bl_aead_encryptor(r->pool, u->dek, u->prefix, (size_t)u->conf->chunk_size,
                               write_ciphertext, u);
    u->sha = EVP_MD_CTX_new();
    u->sha1_ctx = EVP_MD_CTX_new();
    /* SHA-1 only for FHIR's Attachment.hash; SHA-256 guards the file. */
    if (!u->enc || !u->sha || !u->sha1_ctx || EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL) != 1
        || EVP_DigestInit_ex(u->sha1_ctx, EVP_sha1(), NULL) != 1)
        return fail_storage(u);
    bl_text_check_init(&u->text);
    u->file_started = 1;
    return 0;
}

static int refuse_type(upload *u)
{
    return upload_fail(u, HTTP_UNSUPPORTED_MEDIA_TYPE, BL_ERR_UNSUPPORTED_MEDIA,
                       "the file must be a PDF, PNG, JPEG, WebP, DICOM or plain UTF-8 "
                       "text document", "field: file");
}

/* The type, once the first bytes are in (or the file ended first). */
static int decide_type(upload *u)
{
    u->mime = bl_sniff_document_type(u->head, u->head_len);
    if (strcmp(u->mime, "text/plain") == 0 && !bl_text_check_ok_so_far(&u->text))
        return refuse_type(u);
    return 0;
}

static int file_bytes(upload *u, const char *data, apr_size_t len)
{
    if (len > (apr_size_t)(u->conf->max_upload - u->size))
        return upload_fail(u, HTTP_REQUEST_ENTITY_TOO_LARGE, BL_ERR_TOO_LARGE,
                           "the file is too large",
                           apr_psprintf(u->r->pool, "limit: %" APR_OFF_T_FMT " bytes",
                                        u->conf->max_upload));
    u->size += (apr_off_t)len;
    if (!u->mime || strcmp(u->mime, "text/plain") == 0) {
        bl_text_check_feed(&u->text, (const unsigned char *)data, len);
        if (u->mime && !bl_text_check_ok_so_far(&u->text))
            return refuse_type(u);
    }
    if (!u->mime) {
        apr_size_t n = sizeof u->head - u->head_len;
        if (n > len)
            n = len;
        memcpy(u->head + u->head_len, data, n);
        u->head_len += n;
        if (u->head_len == sizeof u->head && decide_type(u))
            return 1;
    }
    if (EVP_DigestUpdate(u->sha, data, len) != 1 || EVP_DigestUpdate(u->sha1_ctx, data, len) != 1)
        return fail_storage(u);
    if (bl_aead_update(u->enc, data, len) != 0)
        return fail_storage(u);
    return 0;
}

static int file_end(upload *u)
{
    if (!u->mime && decide_type(u))
        return 1;
    if (strcmp(u->mime, "text/plain") == 0 && !bl_text_check_ok(&u->text))
        return refuse_type(u);
    if (bl_aead_final(u->enc) != 0 || EVP_DigestFinal_ex(u->sha, u->sha256, NULL) != 1
        || EVP_DigestFinal_ex(u->sha1_ctx, u->sha1, NULL) != 1)
        return fail_storage(u);
    u->file_done = 1;
    return 0;
}

/* ---------------------------------------------------------------- multipart */

static int part_begin(void *ctx, const bl_multipart_part *part)
{
    upload *u = ctx;

    if (strcmp(part->name, FILE_FIELD) == 0) {
        if (u->file_started)
            return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                               "send one file per record", "field: file");
        u->in_file = 1;
        u->filename = part->filename;
        return file_begin(u);
    }
    if (!bl_valid_enum(part->name, text_fields))
        return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                           apr_psprintf(u->r->pool, "unknown field %s",
                                        bl_json_quote(u->r->pool, part->name)), NULL);
    if (apr_table_get(u->fields, part->name))
        return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION, "a field is given twice",
                           apr_pstrcat(u->r->pool, "field: ", part->name, NULL));
    u->in_file = 0;
    u->field_name = apr_pstrdup(u->r->pool, part->name);
    if (!u->field_buf)
        u->field_buf = apr_palloc(u->r->pool, FIELD_MAX_BYTES);
    u->field_len = 0;
    return 0;
}

static int part_data(void *ctx, const char *data, size_t len, apr_off_t offset)
{
    upload *u = ctx;

    (void)offset;
    if (u->in_file)
        return file_bytes(u, data, len);
    if (len > FIELD_MAX_BYTES - u->field_len)
        return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION, "a field is too long",
                           apr_pstrcat(u->r->pool, "field: ", u->field_name, NULL));
    memcpy(u->field_buf + u->field_len, data, len);
    u->field_len += len;
    return 0;
}

static int part_end(void *ctx)
{
    upload *u = ctx;

    if (u->in_file) {
        u->in_file = 0;
        return file_end(u);
    }
    apr_table_setn(u->fields, u->field_name,
                   apr_pstrmemdup(u->r->pool, u->field_buf, u->field_len));
    return 0;
}

/* ---------------------------------------------------------------- body */

typedef int body_fn(upload *u, void *state, const char *data, apr_size_t len);

/* Reads the request body in pieces into fn. Returns 0 at the end of the
 * body; 1 when the upload was stopped (u->status set). */
static int read_body(upload *u, body_fn *fn, void *state)
{
    request_rec *r = u->r;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    int eos = 0;

    while (!eos) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                         APR_BLOCK_READ, READ_BYTES);
        apr_bucket *e;

        if (rv != APR_SUCCESS) {
            int status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
            return upload_fail(u, status == AP_FILTER_ERROR ? HTTP_BAD_REQUEST : status,
                               "BAD_REQUEST", "the upload was interrupted", NULL);
        }
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = APR_BUCKET_NEXT(e)) {
            const char *data;
            apr_size_t n;

            if (APR_BUCKET_IS_EOS(e)) {
                eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(e))
                continue;
            if (apr_bucket_read(e, &data, &n, APR_BLOCK_READ) != APR_SUCCESS)
                return upload_fail(u, HTTP_BAD_REQUEST, "BAD_REQUEST",
                                   "the upload was interrupted", NULL);
            if (n && fn(u, state, data, n))
                return 1;
        }
        apr_brigade_cleanup(bb);
    }
    return 0;
}

static int feed_multipart(upload *u, void *state, const char *data, apr_size_t len)
{
    bl_multipart_stream *s = state;
    int rc = bl_multipart_feed(s, data, len);

    if (rc == BL_MULTIPART_ERROR)
        return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                           apr_pstrcat(u->r->pool, "malformed multipart body: ",
                                       bl_multipart_stream_error(s), NULL), NULL);
    return rc != 0;
}

static int feed_raw(upload *u, void *state, const char *data, apr_size_t len)
{
    (void)state;
    return file_bytes(u, data, len);
}

/* ---------------------------------------------------------------- fields */

/* The last path segment of a client file name, without control
 * characters; NULL when nothing is left. */
static const char *clean_filename(apr_pool_t *p, const char *name)
{
    const char *base;
    char *out, *o;

    if (!name)
        return NULL;
    base = name + strlen(name);
    while (base > name && base[-1] != '/' && base[-1] != '\\')
        base--;
    out = o = apr_pstrdup(p, base);
    for (; *base; base++)
        if ((unsigned char)*base >= 0x20 && *base != 0x7f)
            *o++ = *base;
    *o = '\0';
    return *out ? out : NULL;
}

static const char *trimmed(apr_pool_t *p, const char *s)
{
    const char *end;

    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    return apr_pstrmemdup(p, s, (apr_size_t)(end - s));
}

/* Checks the text fields; 0, or 1 with the failure set. */
static int check_fields(upload *u)
{
    apr_pool_t *p = u->r->pool;
    const char *title = apr_table_get(u->fields, "title");
    const char *description = apr_table_get(u->fields, "description");
    const char *type = apr_table_get(u->fields, "record_type");
    const char *date = apr_table_get(u->fields, "record_date");

    if (!title || !bl_valid_utf8(title, strlen(title)) ||
        !bl_valid_length((title = trimmed(p, title)), 1, TITLE_MAX_CHARS))
        return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                           "title is required (1 to 200 characters)", "field: title");
    apr_table_setn(u->fields, "title", title);
    if (description && *description
        && (!bl_valid_utf8(description, strlen(description))
            || !bl_valid_length(description, 0, DESCRIPTION_MAX_CHARS)))
        return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                           "description must be at most 5000 characters", "field: description");
    if (type && *type && !bl_valid_enum(type, medical_record_types))
        return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                           "record_type is not a known type", "field: record_type");
    if (date && *date && (!bl_valid_date(date) || strcmp(date, "1900-01-01") < 0))
        return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                           "record_date must be a date (YYYY-MM-DD) from 1900 on",
                           "field: record_date");
    u->filename = clean_filename(p, u->filename);
    if (u->filename && (!bl_valid_utf8(u->filename, strlen(u->filename))
                        || !bl_valid_length(u->filename, 1, FILENAME_MAX_CHARS)))
        return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                           "the file name must be UTF-8, at most 255 characters",
                           "field: filename");
    return 0;
}

/* Query parameters of a raw upload: the text fields and filename. */
static int take_query_fields(upload *u)
{
    apr_table_t *args = NULL;
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    int i;

    ap_args_to_table(u->r, &args);
    arr = apr_table_elts(args);
    e = (const apr_table_entry_t *)arr->elts;
    for (i = 0; i < arr->nelts; i++) {
        if (strcmp(e[i].key, "filename") == 0)
            u->filename = e[i].val;
        else if (!bl_valid_enum(e[i].key, text_fields))
            return upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                               apr_psprintf(u->r->pool, "unknown field %s",
                                            bl_json_quote(u->r->pool, e[i].key)), NULL);
        else
            apr_table_setn(u->fields, e[i].key, e[i].val);
    }
    return 0;
}

/* ---------------------------------------------------------------- the row */

static const char *empty_null(const char *s)
{
    return s && *s ? s : NULL;
}

/* Inserts the row and its audit entry; answers 201 with the record. */
static int save_record(upload *u, const bl_user *user)
{
    request_rec *r = u->r;
    unsigned char wrapped[BL_AEAD_WRAPPED_LEN];
    const char *aad = medical_key_aad(r->pool, u->record_id, u->master->version);
    const char *args[16], *json = NULL, *access;
    ap_dbd_t *db;

    if (bl_aead_wrap_key(u->master->key, (const unsigned char *)aad, strlen(aad), u->dek,
                         wrapped) != 0)
        return bl_send_unavailable(r, "key wrapping");
    if (!(db = bl_db(r)))
        return OK;
    if (medical_writer_commit(u->writer) != 0)
        return bl_send_unavailable(r, "storage");
    args[0] = u->record_id;
    args[1] = user->id;
    args[2] = apr_table_get(u->fields, "title");
    args[3] = empty_null(apr_table_get(u->fields, "description"));
    args[4] = empty_null(apr_table_get(u->fields, "record_type"));
    args[5] = empty_null(apr_table_get(u->fields, "record_date"));
    args[6] = u->record_id;
    args[7] = u->filename;
    args[8] = u->mime;
    args[9] = apr_off_t_toa(r->pool, u->size);
    args[10] = bl_hex(r->pool, u->sha256, sizeof u->sha256);
    args[11] = bl_hex(r->pool, wrapped, sizeof wrapped);
    args[12] = apr_itoa(r->pool, u->master->version);
    args[13] = bl_hex(r->pool, u->prefix, sizeof u->prefix);
    args[14] = apr_itoa(r->pool, u->conf->chunk_size);
    args[15] = bl_hex(r->pool, u->sha1, sizeof u->sha1);
    if (bl_db_begin(r, db) != 0)
        goto undo;
    if (bl_db_exec(r, db, MEDICAL_SQL_INSERT, 16, args) != 1
        || medical_audit(r, db, "medical.record.create", u->record_id, "success",
                         apr_psprintf(r->pool, "{\"size_bytes\":%s,\"content_type\":%s}",
                                      args[9], bl_json_quote(r->pool, u->mime))) != 0
        || medical_access(r, db, u->record_id, &access, &json) != 0) {
        bl_db_rollback(r, db);
        goto undo;
    }
    if (bl_db_commit(r, db) != 0)
        goto undo;
    return bl_send_data(r, HTTP_CREATED, "medical record uploaded", json, NULL);
undo:
    medical_storage_remove(r, u->record_id);
    return OK;
}

static int answer_failure(upload *u)
{
    /* The rest of the body is not worth reading. */
    u->r->connection->keepalive = AP_CONN_CLOSE;
    return bl_send_error(u->r, u->status, u->code, u->message, u->details);
}

int medical_upload(request_rec *r, apr_table_t *params)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    const char *boundary = NULL;
    const bl_user *user;
    upload *u;
    apr_off_t limit;

    (void)params;
    if (!(user = bl_require_user(r)))
        return OK;
    u = apr_pcalloc(r->pool, sizeof *u);
    u->r = r;
    u->conf = medical_config(r);
    u->fields = apr_table_make(r->pool, 4);
    apr_pool_cleanup_register(r->pool, u, upload_cleanup, apr_pool_cleanup_null);
    if (!(u->master = medical_newest_key(u->conf)))
        return bl_send_unavailable(r, "storage master key");
    if (ct && strncasecmp(ct, "multipart/", 10) == 0
        && !(boundary = bl_multipart_boundary(r->pool, ct)))
        return bl_send_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE, BL_ERR_UNSUPPORTED_MEDIA,
                             "send multipart/form-data with a boundary, or the raw file",
                             NULL);
    limit = u->conf->max_upload + (boundary ? MULTIPART_OVERHEAD : 0);
    if (cl) {
        apr_off_t declared;
        if (apr_strtoff(&declared, cl, NULL, 10) != APR_SUCCESS || declared < 0)
            return bl_send_error(r, HTTP_BAD_REQUEST, "BAD_REQUEST", "Invalid Content-Length",
                                 NULL);
        if (declared > limit) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return bl_send_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE, BL_ERR_TOO_LARGE,
                                 "the file is too large",
                                 apr_psprintf(r->pool, "limit: %" APR_OFF_T_FMT " bytes",
                                              u->conf->max_upload));
        }
    }
    if (boundary) {
        static const bl_multipart_callbacks cb = {part_begin, part_data, part_end};
        bl_multipart_stream *s = bl_multipart_stream_create(r->pool, boundary, MAX_PARTS, &cb, u);
        if (read_body(u, feed_multipart, s))
            return answer_failure(u);
        if (bl_multipart_finish(s) != 0) {
            upload_fail(u, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                        apr_pstrcat(r->pool, "malformed multipart body: ",
                                    bl_multipart_stream_error(s), NULL), NULL);
            return answer_failure(u);
        }
        if (!u->file_done)
            return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                                 "a \"file\" part is required", "field: file");
    } else {
        /* Fields first, so a bad title costs no upload. */
        if (take_query_fields(u) || check_fields(u) || file_begin(u)
            || read_body(u, feed_raw, NULL) || file_end(u))
            return answer_failure(u);
    }
    if (check_fields(u))
        return answer_failure(u);
    return save_record(u, user);
}
