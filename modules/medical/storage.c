/* Where the ciphertext of records lives: the local directory backend.
 *
 * A storage key is made by the module ("<uuid>"), never from an upload
 * name; the blob is BeautifulMedicalStorage/<key>.enc, written to a
 * temporary name and renamed into place on commit, so a reader never sees
 * half a file and an interrupted upload leaves nothing. */
#include "medical_private.h"
#include "validate.h"

#include <http_log.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <unixd.h>

#include <errno.h>
#include <unistd.h>

APLOG_USE_MODULE(beautiful_medical);

#define READ_PIECE (256 * 1024)

struct medical_writer {
    request_rec *r;
    apr_file_t *file;
    const char *tmp_path, *path;
    int committed;
};

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
        if (w->file)
            apr_file_close(w->file);
        w->file = NULL;
        apr_file_remove(w->tmp_path, w->r->pool);
        w->committed = 1;
    }
    return APR_SUCCESS;
}

medical_writer *medical_storage_create(request_rec *r, const char *storage_key)
{
    medical_writer *w = apr_pcalloc(r->pool, sizeof *w);
    apr_status_t rv;

    w->r = r;
    if (!(w->path = blob_path(r, storage_key)))
        return NULL;
    w->tmp_path = apr_pstrcat(r->pool, w->path, ".part", NULL);
    rv = apr_file_open(&w->file, w->tmp_path,
                       APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL | APR_FOPEN_BUFFERED,
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
    apr_status_t rv = apr_file_write_full(w->file, data, len, &written);

    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, w->r, "mod_beautiful_medical: blob write failed");
        return -1;
    }
    return 0;
}

int medical_writer_commit(medical_writer *w)
{
    apr_status_t rv = apr_file_flush(w->file);

    if (rv == APR_SUCCESS)
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

int medical_storage_read(request_rec *r, const char *storage_key, apr_off_t offset,
                         medical_read_fn *fn, void *ctx)
{
    const char *path = blob_path(r, storage_key);
    apr_file_t *f;
    apr_status_t rv;
    char *buf;

    if (!path)
        return -1;
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
    const char *path = blob_path(r, storage_key);
    apr_status_t rv;

    if (!path)
        return -1;
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
