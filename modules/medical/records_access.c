/* Access decisions shared by the routes: who the caller is to a record,
 * the 404/403 that follows, and the audit row every touch of a record
 * leaves. */
#include "medical_private.h"
#include "validate.h"

#include <apr_strings.h>

const char *const medical_record_types[] = {
    "lab_result", "imaging", "pathology_report", "prescription", "discharge_summary",
    "treatment_plan", "consultation_note", "insurance", "other", NULL};

const char *medical_record_id(request_rec *r, apr_table_t *params)
{
    const char *id = apr_table_get(params, "id");

    /* A malformed id names no record: the same answer as someone else's. */
    if (!id || !bl_valid_uuid(id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "medical record not found",
                             NULL), NULL;
    return id;
}

int medical_access(request_rec *r, ap_dbd_t *db, const char *record_id,
                   const char **access, const char **json)
{
    const bl_user *user = bl_current_user(r);
    const char *args[2];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;

    *access = NULL;
    if (json)
        *json = NULL;
    if (!user)
        return 0;
    args[0] = user->id;
    args[1] = record_id;
    if (!(res = bl_db_select(r, db, MEDICAL_SQL_GET, 2, args)))
        return -1;
    if ((row = medical_first_row(r, db, res)) != NULL) {
        *access = bl_db_get(r, db, row, 0);
        if (json)
            *json = bl_db_get(r, db, row, 1);
    }
    return 0;
}

int medical_refuse(request_rec *r, const char *access, const char *what)
{
    if (!access)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "medical record not found",
                             NULL);
    return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                         apr_pstrcat(r->pool, "your access to this record does not allow ",
                                     what, NULL), apr_pstrcat(r->pool, "access: ", access, NULL));
}

int medical_audit(request_rec *r, ap_dbd_t *db, const char *action, const char *record_id,
                  const char *outcome, const char *details_json)
{
    if (bl_audit(r, db, NULL, action, "medical_record", record_id, outcome, details_json) != 0)
        return bl_send_unavailable(r, "database"), -1;
    return 0;
}
