/* care_circle.c — a patient's caregivers: invite by email, accept by the
 * invitee, delete by either side. An accepted caregiver reads the
 * patient's reminders, logs and adherence (never writes), and gets the
 * missed-dose alerts of the nag task. */
#include "reminder_private.h"
#include "json.h"
#include "validate.h"

#include <http_protocol.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <string.h>

int care_circle_list(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    const char *args[2] = {u->id, u->id}, *json = NULL;
    ap_dbd_t *db;

    if (!(db = bl_db(r)) || bl_db_value(r, db, "care_circle_list", 2, args, &json) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}

int care_circle_invite(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"email", NULL};
    const bl_user *u = bl_current_user(r);
    const char *email = NULL, *err = NULL, *args[4], *member, *invitee, *bad;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    json_object *body;
    ap_dbd_t *db;
    char *p;

    if (!(body = bl_read_json(r)))
        return OK;
    if ((bad = bl_json_unknown_field(body, allowed)) != NULL)
        return bl_send_validation_error(r, bad, apr_pstrcat(r->pool, bad,
                                        " is not a known field", NULL));
    if (bl_json_get_string(r->pool, body, "email", BL_REQUIRED, 3, 254, &email, &err)
        != BL_FIELD_OK)
        return bl_send_validation_error(r, "email", err);
    email = p = apr_pstrdup(r->pool, email);
    for (; *p; p++)
        *p = (char)apr_tolower(*p);
    if (!bl_valid_email(email))
        return bl_send_validation_error(r, "email", "email is not a valid address");
    if (!(db = bl_db(r)) || bl_db_begin(r, db) != 0)
        return OK;
    args[0] = u->id;
    args[1] = email;
    args[2] = u->id;
    args[3] = email;
    if (!(res = bl_db_select(r, db, "care_circle_insert", 4, args)))
        return OK;
    if (!(row = reminder_first_row(r, db, res))) {
        bl_db_rollback(r, db);
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                             "this address is already invited, or is your own", NULL);
    }
    member = bl_db_get(r, db, row, 0);
    invitee = bl_db_get(r, db, row, 1);
    /* Someone with an account is told now; anyone else sees the invitation
     * once they sign up with that address. */
    if (invitee) {
        const char *data = apr_psprintf(r->pool, "{\"patient_id\":\"%s\"}", u->id);
        const char *title = "You were invited to a care circle";
        const char *text = "Someone you know asked you to follow their medication reminders "
                           "on Beautiful Life. Open the app to accept.";
        if (bl_outbox_add(r, db, invitee, "in_app", "reminder.care_circle_invite", title, text,
                          data) != 0
            || bl_outbox_add(r, db, invitee, "email", "reminder.care_circle_invite", title, text,
                             data) != 0) {
            bl_db_rollback(r, db);
            return bl_send_unavailable(r, "database");
        }
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_data(r, HTTP_CREATED, "Invitation sent", member, NULL);
}

int care_circle_accept(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    const char *id = apr_table_get(params, "id"), *args[3], *json = NULL;
    ap_dbd_t *db;

    if (!bl_valid_uuid(id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "invitation not found", NULL);
    if (!(db = bl_db(r)))
        return OK;
    args[0] = bl_time_param(r->pool, bl_now(r));
    args[1] = id;
    args[2] = u->id;
    if (bl_db_value(r, db, "care_circle_accept", 3, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "invitation not found", NULL);
    return bl_send_data(r, HTTP_OK, "Invitation accepted", json, NULL);
}

int care_circle_delete(request_rec *r, apr_table_t *params)
{
    const bl_user *u = bl_current_user(r);
    const char *id = apr_table_get(params, "id"), *args[2];
    ap_dbd_t *db;
    int n;

    if (!bl_valid_uuid(id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "member not found", NULL);
    if (!(db = bl_db(r)))
        return OK;
    args[0] = id;
    args[1] = u->id;
    if ((n = bl_db_exec(r, db, "care_circle_delete", 2, args)) < 0)
        return OK;
    if (n == 0)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "member not found", NULL);
    return bl_send_no_content(r);
}
