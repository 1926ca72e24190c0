/* POST /notifications/devices and DELETE /notifications/devices/:id: the
 * push device registry. A token names one app installation: registered
 * again it is the same row (moved to the caller if another user had it). */
#include "notify_private.h"
#include "json.h"
#include "validate.h"

#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

#define DEVICE_JSON \
    "json_build_object('id', d.id, 'platform', d.platform, " \
    "'created_at', " BL_NOTIFY_TS("d.created_at") ", " \
    "'last_seen_at', " BL_NOTIFY_TS("d.last_seen_at") ")"

/* xmax = 0 on the returned row: it was inserted, not updated. */
#define SQL_ADD \
    "INSERT INTO push_devices AS d (user_id, platform, token) VALUES (%s::uuid, %s, %s)" \
    " ON CONFLICT (token) DO UPDATE SET user_id = EXCLUDED.user_id," \
    "  platform = EXCLUDED.platform, last_seen_at = now()" \
    " RETURNING CASE WHEN d.xmax = 0 THEN 't' ELSE 'f' END, " DEVICE_JSON "::text"

#define SQL_DELETE \
    "DELETE FROM push_devices WHERE id = %s::uuid AND user_id = %s::uuid"

const bl_statement notify_device_statements[] = {
    {"notify_device_add", SQL_ADD},
    {"notify_device_delete", SQL_DELETE},
    {NULL, NULL}
};

int notify_add_device(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"platform", "token", NULL};
    static const char *const platforms[] = {"android", "ios", "web", NULL};
    json_object *body = bl_read_json(r);
    const char *args[3], *err = NULL;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int created;

    if (!body || notify_refuse_unknown(r, body, allowed, NULL) != 0)
        return OK;
    args[0] = bl_current_user(r)->id;
    if (bl_json_get_enum(r->pool, body, "platform", BL_REQUIRED, platforms, &args[1], &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "platform", err);
    if (bl_json_get_string(r->pool, body, "token", BL_REQUIRED, 1, 4096, &args[2], &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "token", err);
    if (strpbrk(args[2], " \t\r\n"))
        return bl_send_validation_error(r, "token", "token must not contain white space");
    if (!(db = bl_db(r)) || !(res = bl_db_select(r, db, "notify_device_add", 3, args)))
        return OK;
    if (!(row = notify_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    created = strcmp(bl_db_get(r, db, row, 0), "t") == 0;
    return bl_send_data(r, created ? HTTP_CREATED : HTTP_OK,
                        created ? "device registered" : "device already registered",
                        bl_db_get(r, db, row, 1), NULL);
}

int notify_delete_device(request_rec *r, apr_table_t *params)
{
    const char *id = apr_table_get(params, "id"), *args[2];
    ap_dbd_t *db;
    int n;

    if (!id || !bl_valid_uuid(id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such device", NULL);
    if (!(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = bl_current_user(r)->id;
    if ((n = bl_db_exec(r, db, "notify_device_delete", 2, args)) < 0)
        return OK;
    if (n == 0)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such device", NULL);
    return bl_send_no_content(r);
}
