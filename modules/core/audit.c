/* audit.c — audit_logs rows and the notification outbox, and the
 * statements core itself prepares. */
#include "core_hooks.h"

#include <http_log.h>

APLOG_USE_MODULE(beautiful_core);

static const bl_statement core_statements[] = {
    {"core_audit_insert",
     "INSERT INTO audit_logs (user_id, action, resource_type, resource_id, outcome, "
     "ip_address, user_agent, request_id, details) VALUES (%s::uuid, %s, %s, %s, "
     "%s::audit_outcome, %s::inet, %s, %s, %s::jsonb)"},
    {"core_outbox_insert",
     "INSERT INTO notifications (user_id, channel, type, title, body, data) VALUES "
     "(%s::uuid, %s::notification_channel, %s, %s, %s, %s::jsonb)"},
    {NULL, NULL}
};

void bl_db_prepare_core(server_rec *s)
{
    bl_db_prepare_all(s, core_statements);
}

int bl_audit(request_rec *r, ap_dbd_t *db, const char *actor_id,
             const char *action, const char *resource_type,
             const char *resource_id, const char *outcome,
             const char *details_json)
{
    const char *args[9];

    if (!actor_id) {
        const bl_user *u = bl_current_user(r);
        actor_id = u ? u->id : NULL;
    }
    if (!db && !(db = bl_db_quiet(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "audit %s not written: no database",
                      action);
        return -1;
    }
    args[0] = actor_id;
    args[1] = action;
    args[2] = resource_type;
    args[3] = resource_id;
    args[4] = outcome;
    args[5] = bl_client_ip(r);
    args[6] = bl_user_agent(r);
    args[7] = apr_table_get(r->subprocess_env, BL_ENV_REQUEST_ID);
    args[8] = details_json;
    return bl_db_exec_quiet(r, db, "core_audit_insert", 9, args) < 0 ? -1 : 0;
}

int bl_outbox_add(request_rec *r, ap_dbd_t *db, const char *user_id,
                  const char *channel, const char *type, const char *title,
                  const char *body, const char *data_json)
{
    const char *args[6];

    if (!db && !(db = bl_db_quiet(r)))
        return -1;
    args[0] = user_id;
    args[1] = channel;
    args[2] = type;
    args[3] = title;
    args[4] = body;
    args[5] = data_json;
    return bl_db_exec_quiet(r, db, "core_outbox_insert", 6, args) < 0 ? -1 : 0;
}
