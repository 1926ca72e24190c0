/* GET /payments/history and GET /payments/:id: the caller's own payments
 * only (the user is in every statement's WHERE clause). */
#include "payment_private.h"
#include "validate.h"

#include <http_protocol.h>
#include <apr_strings.h>

#include <stdlib.h>

int payment_history(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    const char *args[4];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;
    long total;

    if (!payment_require_config(r, 0) || !(user = bl_require_user(r))
        || bl_pagination_args(r, &page, &per_page) != 0 || !(db = bl_db(r)))
        return OK;
    args[0] = user->id;
    args[1] = user->id;
    args[2] = apr_itoa(r->pool, per_page);
    args[3] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(res = bl_db_select(r, db, PAY_SQL_HISTORY, 4, args)))
        return OK;
    if (!(row = payment_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    total = atol(bl_db_get(r, db, row, 0));
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 1),
                        bl_pagination_meta(r, page, per_page, total));
}

int payment_get(request_rec *r, apr_table_t *params)
{
    const char *id = apr_table_get(params, "id"), *args[2], *json = NULL;
    const bl_user *user;
    ap_dbd_t *db;

    if (!payment_require_config(r, 0) || !(user = bl_require_user(r)))
        return OK;
    if (!id || !bl_valid_uuid(id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such payment", NULL);
    if (!(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = user->id;
    if (bl_db_value(r, db, PAY_SQL_JSON, 2, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "no such payment", NULL);
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}
