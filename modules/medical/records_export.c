/* GET /medical-records/export: my records as a FHIR R4 Bundle (type
 * collection) of DocumentReference resources with a Patient resource from
 * my profile, built in one statement by PostgreSQL. Each attachment has
 * contentType, size, SHA-1 hash (FHIR's Attachment.hash, base64), title
 * and the URL to download it. Audited. */
#include "medical_private.h"

#include <http_protocol.h>
#include <apr_strings.h>

int medical_export(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    const char *args[2], *bundle, *count;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;

    (void)params;
    if (!user || !(db = bl_db(r)))
        return OK;
    args[0] = user->id;
    args[1] = bl_public_base_url(r);
    if (!(res = bl_db_select(r, db, MEDICAL_SQL_EXPORT, 2, args)))
        return OK;
    if (!(row = medical_first_row(r, db, res)) || !(bundle = bl_db_get(r, db, row, 0)))
        return bl_send_unavailable(r, "database");
    count = bl_db_get(r, db, row, 1);
    if (bl_audit(r, db, NULL, "medical.record.export", "user", user->id, "success",
                 apr_psprintf(r->pool, "{\"records\":%s}", count ? count : "0")) != 0)
        return bl_send_unavailable(r, "database");
    /* FHIR's own media type, the Bundle as the whole body. */
    ap_set_content_type(r, "application/fhir+json");
    ap_rputs(bundle, r);
    return OK;
}
