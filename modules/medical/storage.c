/* Where the ciphertext of records lives: a local directory or an
 * S3-compatible bucket.
 *
 * A storage key is made by the module ("<uuid>"), never from an upload
 * name. Locally the blob is BeautifulMedicalStorage/<key>.enc, written to
 * a temporary name and renamed into place on commit. In S3 it is the
 * object <bucket>/<key>.enc: a file up to one part is one PUT, a larger
 * one a multipart upload (parts of S3_PART bytes, so memory stays bounded)
 * completed on commit. Either way a reader never sees half a file and an
 * upload that does not commit leaves nothing (the temporary file removed,
 * the multipart upload aborted). S3 calls are signed with AWS Signature
 * Version 4 (common/sigv4.c) and made through common/http_client.c. */
#include "medical_private.h"
#include "hmac.h"
#include "http_client.h"
#include "sigv4.h"
#include "validate.h"

#include <http_log.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <unixd.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

APLOG_USE_MODULE(beautiful_medical);

#define READ_PIECE (256 * 1024)
/* S3 part size: at least 5 MiB (S3's minimum but for the last part). */
#define S3_PART (8 * 1024 * 1024)
#define S3_MAX_PARTS 10000

struct medical_writer {
    request_rec *r;
    int committed;
    /* local */
    apr_file_t *file;
    const char *tmp_path, *path;
    /* s3 */
    const medical_s3 *s3;
    const char *object;          /* "<key>.enc" */
    char *buf;
    apr_size_t len;
    const char *upload_id;
    int parts;
    const char **etags;
};

/* ---------------------------------------------------------------- S3 */

typedef struct {
    const char *method, *object, *query, *range;
    const char *body;
    apr_size_t body_len;
    const char *content_type;
    bl_http_data_fn *on_data;
    void *on_data_ctx;
    int attempts;
} s3_call;

/* One signed request; returns the HTTP status, or 0 when no answer came
 * (logged). resp may be NULL. */
static long s3_perform(request_rec *r, const medical_s3 *s3, const s3_call *call,
                       bl_http_response *resp)
{
    bl_http_response local;
    bl_http_request req;
    bl_sigv4_header signed_headers[3];
    bl_sigv4_request sig;
    const char *path = apr_pstrcat(r->pool, "/", bl_sigv4_uri_encode(r->pool, s3->bucket, 0),
                                   "/", bl_sigv4_uri_encode(r->pool, call->object, 1), NULL);
    const char *date = bl_sigv4_amz_date(r->pool, apr_time_now());
    const char *payload = bl_sha256_hex(r->pool, call->body ? call->body : "",
                                        call->body ? call->body_len : 0);
    const char *auth, *headers[6];
    int n = 0;

    if (!resp)
        resp = &local;
    signed_headers[0].name = "host";
    signed_headers[0].value = s3->host;
    signed_headers[1].name = "x-amz-content-sha256";
    signed_headers[1].value = payload;
    signed_headers[2].name = "x-amz-date";
    signed_headers[2].value = date;
    memset(&sig, 0, sizeof sig);
    sig.access_key_id = s3->access_key_id;
    sig.secret_access_key = s3->secret_access_key;
    sig.region = s3->region;
    sig.service = "s3";
    sig.method = call->method;
    sig.path = path;
    sig.query = call->query;
    sig.headers = signed_headers;
    sig.nheaders = 3;
    sig.payload_sha256 = payload;
    sig.amz_date = date;
    if (!(auth = bl_sigv4_authorization(r->pool, &sig, NULL)))
        return 0;
    headers[n++] = apr_pstrcat(r->pool, "x-amz-content-sha256: ", payload, NULL);
    headers[n++] = apr_pstrcat(r->pool, "x-amz-date: ", date, NULL);
    headers[n++] = apr_pstrcat(r->pool, "Authorization: ", auth, NULL);
    if (call->range)
        headers[n++] = apr_pstrcat(r->pool, "Range: ", call->range, NULL);
    headers[n] = NULL;
    memset(&req, 0, sizeof req);
    req.method = call->method;
    req.url = apr_pstrcat(r->pool, s3->endpoint, path, call->query ? "?" : "",
                          call->query ? call->query : "", NULL);
    req.headers = headers;
    req.body = call->body;
    req.body_len = call->body_len;
    req.content_type = call->content_type ? call->content_type
                       : call->body ? "application/octet-stream" : NULL;
    req.connect_timeout = apr_time_from_sec(5);
    req.timeout = apr_time_from_sec(120);
    /* A streamed answer cannot be retried without repeating bytes. */
    req.max_attempts = call->on_data ? 1 : call->attempts ? call->attempts : 3;
    req.on_data = call->on_data;
    req.on_data_ctx = call->on_data_ctx;
    req.traceparent = bl_traceparent(r);
    bl_http_perform(r->pool, &req, resp);
    if (resp->outcome == BL_HTTP_ABORTED)
        return 200;
    if (resp->outcome != BL_HTTP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_beautiful_medical: object storage %s %s failed: %s",
                      call->method, call->object, resp->error ? resp->error : "no answer");
        return 0;
    }
    if (resp->status >= 300 && resp->status != 404)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "mod_beautiful_medical: object storage %s %s answered %ld",
                      call->method, call->object, resp->status);
    return resp->status;
}

/* The text of the first <tag>...</tag> in an XML answer, or NULL. */
static const char *xml_value(apr_pool_t *p, const char *xml, const char *tag)
{
    const char *open = apr_pstrcat(p, "<", tag, ">", NULL), *start, *end;

    if (!xml || !(start = strstr(xml, open)))
        return NULL;
    start += strlen(open);
    if (!(end = strstr(start, apr_pstrcat(p, "</", tag, ">", NULL))))
        return NULL;
    return apr_pstrmemdup(p, start, (apr_size_t)(end - start));
}

static int s3_upload_part(medical_writer *w)
{
    request_rec *r = w->r;
    bl_http_response resp;
    s3_call call;
    const char *etag;

    memset(&call, 0, sizeof call);
    if (!w->upload_id) {
        call.method = "POST";
        call.object = w->object;
        call.query = "uploads=";
        call.body = "";     /* a POST, with an empty body */
        if (s3_perform(r, w->s3, &call, &resp) != 200
            || !(w->upload_id = xml_value(r->pool, resp.body, "UploadId")))
            return -1;
        w->etags = apr_pcalloc(r->pool, sizeof(char *) * (S3_MAX_PARTS + 1));
    }
    if (w->parts >= S3_MAX_PARTS)
        return -1;
    memset(&call, 0, sizeof call);
    call.method = "PUT";
    call.object = w->object;
    call.query = apr_psprintf(r->pool, "partNumber=%d&uploadId=%s", w->parts + 1,
                              bl_sigv4_uri_encode(r->pool, w->upload_id, 0));
    call.body = w->buf;
    call.body_len = w->len;
    if (s3_perform(r, w->s3, &call, &resp) != 200
        || !(etag = apr_table_get(resp.headers, "ETag")))
        return -1;
    w->etags[w->parts++] = apr_pstrdup(r->pool, etag);
    w->len = 0;
    return 0;
}

static void s3_abort(medical_writer *w)
{
    s3_call call;

    if (!w->upload_id)
        return;
    memset(&call, 0, sizeof call);
    call.method = "DELETE";
    call.object = w->object;
    call.query = apr_pstrcat(w->r->pool, "uploadId=",
                             bl_sigv4_uri_encode(w->r->pool, w->upload_id, 0), NULL);
    s3_perform(w->r, w->s3, &call, NULL);
    w->upload_id = NULL;
}

static int s3_commit(medical_writer *w)
{
    request_rec *r = w->r;
    bl_http_response resp;
    s3_call call;
    const char *xml;
    int i;

    memset(&call, 0, sizeof call);
    if (!w->upload_id) {
        call.method = "PUT";
        call.object = w->object;
        call.body = w->buf;
        call.body_len = w->len;
        return s3_perform(r, w->s3, &call, NULL) == 200 ? 0 : -1;
    }
    if (w->len > 0 && s3_upload_part(w) != 0)
        return -1;
    xml = "<CompleteMultipartUpload>";
    for (i = 0; i < w->parts; i++) {
        char *etag = apr_pstrdup(r->pool, w->etags[i]), *q;
        /* The ETag's quotes, escaped for XML. */
        const char *escaped = "";
        for (q = etag; *q; q++)
            escaped = apr_pstrcat(r->pool, escaped, *q == '"' ? "&quot;"
                                  : apr_pstrmemdup(r->pool, q, 1), NULL);
        xml = apr_psprintf(r->pool, "%s<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
                           xml, i + 1, escaped);
    }
    xml = apr_pstrcat(r->pool, xml, "</CompleteMultipartUpload>", NULL);
    call.method = "POST";
    call.object = w->object;
    call.query = apr_pstrcat(r->pool, "uploadId=", bl_sigv4_uri_encode(r->pool, w->upload_id, 0),
                             NULL);
    call.body = xml;
    call.body_len = strlen(xml);
    call.content_type = "application/xml";
    /* S3 may answer 200 with an error document. */
    if (s3_perform(r, w->s3, &call, &resp) != 200 || strstr(resp.body, "<Error>"))
        return -1;
    w->upload_id = NULL;
    return 0;
}

/* The blob path of a key we made (a UUID), or NULL. */
static const char *blob_path(request_rec *r, const char *storage_key)
{
    if (!storage_key || !bl_valid_uuid(storage_key))
        return NULL;
    return apr_pstrcat(r->pool, medical_config(r)->storage_dir, "/", storage_key, ".enc",
                       NULL);
}

/* Removes the temporary file of a writer that never committed. */
static apr_status_t writer_cleanup(void *data)
{
    medical_writer *w = data;

    if (!w->committed) {
        if (w->s3) {
            s3_abort(w);
        } else {
            if (w->file)
                apr_file_close(w->file);
            w->file = NULL;
            apr_file_remove(w->tmp_path, w->r->pool);
        }
        w->committed = 1;
    }
    return APR_SUCCESS;
}

medical_writer *medical_storage_create(request_rec *r, const char *storage_key)
{
    const medical_conf *c = medical_config(r);
    medical_writer *w = apr_pcalloc(r->pool, sizeof *w);
    apr_status_t rv;

    w->r = r;
    if (!(w->path = blob_path(r, storage_key)))
        return NULL;
    if (c->storage == MEDICAL_STORAGE_S3) {
        w->s3 = c->s3;
        w->object = apr_pstrcat(r->pool, storage_key, ".enc", NULL);
        w->buf = apr_palloc(r->pool, S3_PART);
        apr_pool_cleanup_register(r->pool, w, writer_cleanup, apr_pool_cleanup_null);
        return w;
    }
    w->tmp_path = apr_pstrcat(r->pool, w->path, ".part", NULL);
    /* Unbuffered: the writes are whole encrypted chunks (64 KiB by
     * default); APR's 4 KiB buffer would cut each into sixteen. */
    rv = apr_file_open(&w->file, w->tmp_path,
                       APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, r->pool);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      "mod_beautiful_medical: cannot create a blob in %s",
                      medical_config(r)->storage_dir);
        return NULL;
    }
    apr_pool_cleanup_register(r->pool, w, writer_cleanup, apr_pool_cleanup_null);
    return w;
}

int medical_writer_write(medical_writer *w, const void *data, apr_size_t len)
{
    apr_size_t written;
    apr_status_t rv;

    if (w->s3) {
        const char *d = data;
        while (len > 0) {
            apr_size_t n = S3_PART - w->len < len ? S3_PART - w->len : len;
            memcpy(w->buf + w->len, d, n);
            w->len += n;
            d += n;
            len -= n;
            if (w->len == S3_PART && s3_upload_part(w) != 0)
                return -1;
        }
        return 0;
    }
    rv = apr_file_write_full(w->file, data, len, &written);

    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, w->r, "mod_beautiful_medical: blob write failed");
        return -1;
    }
    return 0;
}

int medical_writer_commit(medical_writer *w)
{
    apr_status_t rv;

    if (w->s3) {
        if (s3_commit(w) != 0)
            return -1;
        w->committed = 1;
        return 0;
    }
    rv = apr_file_sync(w->file);
    if (apr_file_close(w->file) != APR_SUCCESS && rv == APR_SUCCESS)
        rv = APR_EGENERAL;
    w->file = NULL;
    if (rv == APR_SUCCESS)
        rv = apr_file_rename(w->tmp_path, w->path, w->r->pool);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, w->r, "mod_beautiful_medical: blob commit failed");
        return -1;
    }
    w->committed = 1;
    return 0;
}

void medical_writer_abort(medical_writer *w)
{
    if (w) {
        apr_pool_cleanup_kill(w->r->pool, w, writer_cleanup);
        writer_cleanup(w);
    }
}

typedef struct {
    medical_read_fn *fn;
    void *ctx;
} s3_reader;

static int s3_piece(void *ctx, const char *data, apr_size_t len)
{
    s3_reader *rd = ctx;

    return rd->fn(rd->ctx, data, len);
}

static int s3_read(request_rec *r, const medical_s3 *s3, const char *storage_key,
                   apr_off_t offset, medical_read_fn *fn, void *ctx)
{
    s3_reader rd = {fn, ctx};
    s3_call call;
    long status;

    memset(&call, 0, sizeof call);
    call.method = "GET";
    call.object = apr_pstrcat(r->pool, storage_key, ".enc", NULL);
    call.range = offset > 0 ? apr_psprintf(r->pool, "bytes=%" APR_OFF_T_FMT "-", offset) : NULL;
    call.on_data = s3_piece;
    call.on_data_ctx = &rd;
    status = s3_perform(r, s3, &call, NULL);
    return status == 200 || status == 206 ? 0 : -1;
}

int medical_storage_read(request_rec *r, const char *storage_key, apr_off_t offset,
                         medical_read_fn *fn, void *ctx)
{
    const medical_conf *c = medical_config(r);
    const char *path = blob_path(r, storage_key);
    apr_file_t *f;
    apr_status_t rv;
    char *buf;

    if (!path)
        return -1;
    if (c->storage == MEDICAL_STORAGE_S3)
        return s3_read(r, c->s3, storage_key, offset, fn, ctx);
    rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, r->pool);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "mod_beautiful_medical: blob %s unreadable",
                      storage_key);
        return -1;
    }
    if (offset > 0 && (rv = apr_file_seek(f, APR_SET, &offset)) != APR_SUCCESS) {
        apr_file_close(f);
        return -1;
    }
    buf = apr_palloc(r->pool, READ_PIECE);
    for (;;) {
        apr_size_t n = READ_PIECE;
        rv = apr_file_read(f, buf, &n);
        if (rv == APR_EOF || (rv == APR_SUCCESS && n == 0))
            break;
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                          "mod_beautiful_medical: blob %s read failed", storage_key);
            apr_file_close(f);
            return -1;
        }
        if (fn(ctx, buf, n) != 0)
            break;
    }
    apr_file_close(f);
    return 0;
}

int medical_storage_remove(request_rec *r, const char *storage_key)
{
    const medical_conf *c = medical_config(r);
    const char *path = blob_path(r, storage_key);
    apr_status_t rv;

    if (!path)
        return -1;
    if (c->storage == MEDICAL_STORAGE_S3) {
        s3_call call;
        long status;
        memset(&call, 0, sizeof call);
        call.method = "DELETE";
        call.object = apr_pstrcat(r->pool, storage_key, ".enc", NULL);
        status = s3_perform(r, c->s3, &call, NULL);
        return status == 204 || status == 200 || status == 404 ? 0 : -1;
    }
    rv = apr_file_remove(path, r->pool);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_ENOENT(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r,
                      "mod_beautiful_medical: cannot remove blob %s", storage_key);
        return -1;
    }
    return 0;
}

void medical_storage_init(apr_pool_t *p, server_rec *s, const medical_conf *c)
{
    apr_status_t rv = apr_dir_make_recursive(c->storage_dir, APR_FPROT_UREAD | APR_FPROT_UWRITE
                                             | APR_FPROT_UEXECUTE, p);

    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "mod_beautiful_medical: cannot create the storage directory %s",
                     c->storage_dir);
        return;
    }
    if (geteuid() == 0 && chown(c->storage_dir, ap_unixd_config.user_id,
                                ap_unixd_config.group_id) != 0)
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s,
                     "mod_beautiful_medical: cannot hand %s to the httpd user", c->storage_dir);
}

/* ---------------------------------------------------------------- accounts */

#define ERASE_NOTE "bl-medical-erase"

int medical_account_deleted(request_rec *r, ap_dbd_t *db, const char *user_id)
{
    const char *args[1] = {user_id}, *keys = "";
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;

    /* Rows and wrapped keys go with the users row (ON DELETE CASCADE):
     * that alone makes the files unreadable. The files themselves are
     * removed only once the deletion has committed (medical_erase_blobs),
     * so a deletion that fails loses nothing. */
    if (!(res = bl_db_select(r, db, MEDICAL_SQL_USER_BLOBS, 1, args)))
        return HTTP_SERVICE_UNAVAILABLE;
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        const char *key = bl_db_get(r, db, row, 0);
        if (key && bl_valid_uuid(key))
            keys = apr_pstrcat(r->pool, keys, *keys ? " " : "", key, NULL);
    }
    if (*keys)
        apr_table_setn(r->notes, ERASE_NOTE, keys);
    return OK;
}

int medical_erase_blobs(request_rec *r)
{
    const char *keys = apr_table_get(r->notes, ERASE_NOTE);
    char *list, *key, *last;

    if (!keys || r->status >= 300)
        return DECLINED;
    list = apr_pstrdup(r->pool, keys);
    for (key = apr_strtok(list, " ", &last); key; key = apr_strtok(NULL, " ", &last))
        medical_storage_remove(r, key);
    return DECLINED;
}
