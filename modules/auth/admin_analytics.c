/* GET /admin/analytics?from=YYYY-MM-DD&to=YYYY-MM-DD — the platform's
 * figures for administrators, built in one SQL statement: sign-ups, posts,
 * comments, records uploaded and reminder doses due and taken per day (UTC
 * dates), active users from last_active_at, and revenue by plan. Reached
 * through "Require bl-role admin"; the role is checked here again. The
 * range defaults to the 30 days up to today and is at most 366 days. */
#include "auth_private.h"
#include "validate.h"

#include <apr_strings.h>
#include <util_script.h>

#include <string.h>

#define MAX_RANGE_DAYS 366

static const char *const allowed_params[] = {"from", "to", NULL};

/* A YYYY-MM-DD parameter, or NULL when absent. -1 after answering 400. */
static int date_param(request_rec *r, apr_table_t *q, const char *name, const char **out)
{
    const char *v = apr_table_get(q, name);

    *out = v;
    if (v && !bl_valid_date(v))
        return bl_send_validation_error(r, name, apr_pstrcat(r->pool, name,
                                        " must be a date (YYYY-MM-DD)", NULL)), -1;
    return 0;
}

static int read_range(request_rec *r, const char **from, const char **to)
{
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    apr_table_t *q = NULL;
    int i;

    if (r->args && strstr(r->args, "%00"))
        return bl_send_validation_error(r, "query", "parameters must not contain NUL"), -1;
    ap_args_to_table(r, &q);
    arr = apr_table_elts(q);
    e = (const apr_table_entry_t *)arr->elts;
    for (i = 0; i < arr->nelts; i++)
        if (!bl_valid_enum(e[i].key, allowed_params))
            return bl_send_validation_error(r, e[i].key, apr_pstrcat(r->pool,
                                            "unknown parameter: ", e[i].key, NULL)), -1;
    if (date_param(r, q, "from", from) != 0 || date_param(r, q, "to", to) != 0)
        return -1;
    if (*from && *to && strcmp(*from, *to) > 0)
        return bl_send_validation_error(r, "from", "from must not be after to"), -1;
    return 0;
}

int admin_analytics(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    const char *from = NULL, *to = NULL, *args[3], *json;
    ap_dbd_t *db;

    if (!user)
        return OK;
    if (strcmp(user->role, "admin") != 0)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN, "administrators only", NULL);
    if (read_range(r, &from, &to) != 0 || !(db = bl_db(r)))
        return OK;
    args[0] = from;
    args[1] = to;
    args[2] = apr_itoa(r->pool, MAX_RANGE_DAYS);
    if (bl_db_value(r, db, AUTH_SQL_ADMIN_ANALYTICS, 3, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)      /* the range is longer than MAX_RANGE_DAYS */
        return bl_send_validation_error(r, "from", apr_psprintf(r->pool,
                                        "the range must be at most %d days", MAX_RANGE_DAYS));
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}
