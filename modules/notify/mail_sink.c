/* The file sinks: one "<notification id>.eml" per message in a directory
 * (the development and test mail sink), and the same for SMS and push
 * ("<id>.json").
 *
 * Readers never see a partial message: it is written to a hidden temporary
 * file in the same directory, synced, then renamed into place. Writing the
 * same notification twice (a retry after a crash) replaces the file. */
#include "notify_private.h"
#include "validate.h"

#include <apr_strings.h>
#include <apr_file_io.h>

#define BL_SINK_PERMS (APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD)

static const char *sink_error(apr_pool_t *p, const char *step, apr_status_t rv)
{
    char buf[120];

    return apr_psprintf(p, "file sink: %s: %s", step, apr_strerror(rv, buf, sizeof(buf)));
}

/* Writes, syncs and closes f; returns the first failing step or NULL. */
static const char *write_all(apr_pool_t *p, apr_file_t *f, const char *data)
{
    apr_status_t rv = apr_file_write_full(f, data, strlen(data), NULL);

    if (rv == APR_SUCCESS && (rv = apr_file_sync(f)) != APR_SUCCESS) {
        apr_file_close(f);
        return sink_error(p, "sync", rv);
    }
    if (rv != APR_SUCCESS) {
        apr_file_close(f);
        return sink_error(p, "write", rv);
    }
    rv = apr_file_close(f);
    return rv == APR_SUCCESS ? NULL : sink_error(p, "close", rv);
}

bl_send_status bl_mail_sink_write(apr_pool_t *p, const char *dir, const char *id,
                                  const char *message, const char **error)
{
    return bl_sink_write(p, dir, id, ".eml", message, error);
}

bl_send_status bl_sink_write(apr_pool_t *p, const char *dir, const char *id,
                             const char *suffix, const char *message, const char **error)
{
    char *tmp;
    const char *final;
    apr_file_t *f;
    apr_status_t rv;

    /* The id names the file: only a canonical uuid, never a path. */
    if (!bl_valid_uuid(id)) {
        *error = "notification id is not a uuid";
        return BL_SEND_PERMANENT;
    }
    final = apr_pstrcat(p, dir, "/", id, suffix, NULL);
    tmp = apr_pstrcat(p, dir, "/.", id, ".XXXXXX", NULL);
    rv = apr_file_mktemp(&f, tmp, APR_FOPEN_CREATE | APR_FOPEN_WRITE | APR_FOPEN_EXCL
                         | APR_FOPEN_BINARY, p);
    if (rv != APR_SUCCESS) {
        *error = sink_error(p, "create", rv);
        return BL_SEND_RETRY;
    }
    if ((*error = write_all(p, f, message)) != NULL) {
        apr_file_remove(tmp, p);
        return BL_SEND_RETRY;
    }
    if ((rv = apr_file_perms_set(tmp, BL_SINK_PERMS)) != APR_SUCCESS
        || (rv = apr_file_rename(tmp, final, p)) != APR_SUCCESS) {
        apr_file_remove(tmp, p);
        *error = sink_error(p, "rename", rv);
        return BL_SEND_RETRY;
    }
    return BL_SEND_OK;
}
