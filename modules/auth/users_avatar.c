/* POST /users/upload-avatar: multipart field "avatar", a PNG, JPEG or WebP
 * image recognised from its bytes (never from the sent type or name),
 * stored as <uuid>.<ext> under BeautifulAuthAvatarDir; the URL under
 * BeautifulAuthAvatarURL goes into the profile. */
#include "auth_private.h"
#include "imagesniff.h"
#include "json.h"
#include "multipart.h"
#include "uuid.h"
#include "validate.h"

#include <http_log.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include <string.h>
#include <strings.h>

APLOG_USE_MODULE(beautiful_auth);

/* Room for the multipart framing around the image. */
#define MULTIPART_OVERHEAD (16 * 1024)
#define MAX_PARTS 8
#define AVATAR_FIELD "avatar"

/* The "avatar" part of a multipart body, or NULL after answering. */
static const bl_multipart_part *read_avatar_part(request_rec *r, const auth_conf *c)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *boundary, *body, *err = NULL;
    apr_size_t len;
    bl_multipart_part *parts;
    int n, i;

    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0
        || !(boundary = bl_multipart_boundary(r->pool, ct)))
        return bl_send_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE, BL_ERR_UNSUPPORTED_MEDIA,
                             "send multipart/form-data with an \"avatar\" file", NULL), NULL;
    if (bl_read_body(r, c->avatar_max + MULTIPART_OVERHEAD, &body, &len) != 0)
        return NULL;
    if ((n = bl_multipart_parse(r->pool, body, len, boundary, MAX_PARTS, &parts, &err)) < 0)
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                             apr_pstrcat(r->pool, "malformed multipart body: ", err, NULL),
                             NULL), NULL;
    for (i = 0; i < n; i++)
        if (parts[i].name && strcmp(parts[i].name, AVATAR_FIELD) == 0)
            break;
    if (i == n)
        return bl_send_validation_error(r, AVATAR_FIELD, "avatar is required"), NULL;
    if (parts[i].len > c->avatar_max)
        return bl_send_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE, BL_ERR_TOO_LARGE,
                             apr_psprintf(r->pool, "avatar must be at most %" APR_SIZE_T_FMT
                                          " bytes", c->avatar_max), NULL), NULL;
    return &parts[i];
}

/* Writes data to dir/name through a temporary file, so a reader never sees
 * half an image. Returns 0, or -1 after answering 500. */
static int store_file(request_rec *r, const char *dir, const char *name,
                      const char *data, apr_size_t len)
{
    const char *path = apr_pstrcat(r->pool, dir, "/", name, NULL);
    const char *tmp = apr_pstrcat(r->pool, path, ".part", NULL);
    apr_file_t *f;
    apr_size_t written = 0;
    apr_status_t rv;

    rv = apr_file_open(&f, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD | APR_FPROT_WREAD,
                       r->pool);
    if (rv == APR_SUCCESS) {
        rv = apr_file_write_full(f, data, len, &written);
        if (apr_file_close(f) != APR_SUCCESS && rv == APR_SUCCESS)
            rv = APR_EGENERAL;
    }
    if (rv == APR_SUCCESS)
        rv = apr_file_rename(tmp, path, r->pool);
    if (rv != APR_SUCCESS) {
        apr_file_remove(tmp, r->pool);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      "mod_beautiful_auth: cannot store an avatar in %s", dir);
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL,
                             "could not store the avatar", NULL), -1;
    }
    return 0;
}

/* Removes the file behind one of our avatar URLs; others are left alone. */
void auth_remove_avatar(request_rec *r, const char *url)
{
    const auth_conf *c = auth_config(r);
    size_t plen = strlen(c->avatar_url);
    const char *name, *dot;

    if (!url || strncmp(url, c->avatar_url, plen) != 0 || url[plen] != '/')
        return;
    name = url + plen + 1;
    dot = strchr(name, '.');
    /* Only names we made: <uuid>.<ext>, nothing that could climb out. */
    if (!dot || dot - name != 36 || !bl_valid_uuid(apr_pstrmemdup(r->pool, name, 36))
        || (strcmp(dot + 1, "png") != 0 && strcmp(dot + 1, "jpg") != 0
            && strcmp(dot + 1, "webp") != 0))
        return;
    apr_file_remove(apr_pstrcat(r->pool, c->avatar_dir, "/", name, NULL), r->pool);
}

int users_upload_avatar(request_rec *r, apr_table_t *params)
{
    const auth_conf *c = auth_config(r);
    const bl_multipart_part *part;
    const bl_user *user;
    const char *mime, *name, *url, *args[3], *old = NULL;
    ap_dbd_t *db;

    if (!(user = bl_require_user(r)) || !(part = read_avatar_part(r, c)))
        return OK;
    if (!(mime = bl_sniff_image_type((const unsigned char *)part->data, part->len)))
        return bl_send_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE, BL_ERR_UNSUPPORTED_MEDIA,
                             "avatar must be a PNG, JPEG or WebP image", "field: avatar");
    if (!(db = bl_db(r)))
        return OK;
    name = apr_pstrcat(r->pool, bl_uuid_v4(r->pool), ".", bl_image_extension(mime), NULL);
    if (store_file(r, c->avatar_dir, name, part->data, part->len) != 0)
        return OK;
    url = apr_pstrcat(r->pool, c->avatar_url, "/", name, NULL);
    args[0] = user->id;
    args[1] = url;
    if (bl_db_value(r, db, AUTH_SQL_USER_SET_AVATAR, 2, args, &old) != APR_SUCCESS) {
        auth_remove_avatar(r, url);
        return OK;
    }
    auth_remove_avatar(r, old);
    return bl_send_data(r, HTTP_OK, "avatar updated",
                        apr_psprintf(r->pool, "{\"avatar_url\":%s}", bl_json_quote(r->pool, url)),
                        NULL);
}
