/* echo.c — "beautiful-echo", a test-only handler (BeautifulTestEcho On):
 * GET answers the caller, other methods read the body with bl_read_json
 * and send it back; "?count=N[&gauge=V]" feeds domain series of /metrics;
 * "?status=NNN" (400-599) returns NNN to httpd, so the
 * error envelope of every status class can be seen. It lets the test suite
 * exercise body limits, content types, the JSON parser and httpd's own
 * errors without depending on a domain module. */
#include "core_hooks.h"
#include "json.h"

#include <http_protocol.h>
#include <apr_strings.h>
#include <stdlib.h>

/* ?db=deferred-unique|deferred-fk: a transaction whose deferred
 * constraint fails only at COMMIT. Constant SQL on tables of its own that
 * die with the transaction, so nothing of the schema is needed or left. */
static int echo_deferred(request_rec *r, ap_dbd_t *db, const char *mode)
{
    static const char unique_sql[] =
        "CREATE TEMP TABLE bl_echo_deferred (id int UNIQUE DEFERRABLE INITIALLY DEFERRED) "
        "ON COMMIT DROP; INSERT INTO bl_echo_deferred VALUES (1), (1)";
    static const char fk_sql[] =
        "CREATE TEMP TABLE bl_echo_parent (id int PRIMARY KEY) ON COMMIT DROP; "
        "CREATE TEMP TABLE bl_echo_child (parent int REFERENCES bl_echo_parent "
        "DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP; INSERT INTO bl_echo_child VALUES (1)";
    int rows = 0;

    if (bl_db_begin(r, db))
        return OK;
    if (apr_dbd_query(db->driver, db->handle, &rows,
                      !strcmp(mode, "deferred-fk") ? fk_sql : unique_sql)) {
        bl_db_rollback(r, db);
        return bl_send_unavailable(r, "database");
    }
    if (bl_db_commit(r, db))
        return OK;
    return bl_send_data(r, HTTP_OK, "committed", NULL, NULL);
}

/* ?db=quiet-fail: an audit row the database refuses (an outcome outside
 * its enum) fails quietly inside a transaction, and the handler leaves the
 * answer to bl_db_commit, as beautiful.h allows. */
static int echo_quiet_failure(request_rec *r, ap_dbd_t *db, const char *rid)
{
    if (bl_db_begin(r, db))
        return OK;
    (void)bl_audit(r, db, NULL, rid, "echo", "1", "no-such-outcome", NULL);
    if (bl_db_commit(r, db))
        return OK;
    return bl_send_data(r, HTTP_OK, "committed", NULL, NULL);
}

/* ?db=audit|commit|rollback|leave|fk|badid: the database helpers.
 * audit writes an audit row outside a transaction; commit / rollback /
 * leave write one inside a transaction ended that way (leave: by the
 * request-pool cleanup); fk and badid run a failing INSERT through
 * bl_db_exec. The audit action is the request id, for the test to find. */
static int echo_db(request_rec *r, const char *mode)
{
    const char *rid = apr_table_get(r->subprocess_env, BL_ENV_REQUEST_ID);
    ap_dbd_t *db = bl_db(r);

    if (!db)
        return OK;
    if (!strncmp(mode, "deferred-", 9))
        return echo_deferred(r, db, mode);
    if (!strcmp(mode, "quiet-fail"))
        return echo_quiet_failure(r, db, rid);
    if (!strcmp(mode, "fk") || !strcmp(mode, "badid")) {
        const char *args[6] = {!strcmp(mode, "fk") ? "00000000-0000-4000-8000-000000000000"
                                                   : "not-a-uuid",
                               "email", "test.echo", "t", "b", NULL};
        if (bl_db_exec(r, db, "core_outbox_insert", 6, args) < 0)
            return OK;
        return bl_send_data(r, HTTP_OK, "inserted", NULL, NULL);
    }
    if (!strcmp(mode, "audit")) {
        if (bl_audit(r, NULL, NULL, rid, "echo", "1", "success", "{\"k\":\"v\"}"))
            return bl_send_unavailable(r, "database");
        return bl_send_data(r, HTTP_OK, "audited", NULL, NULL);
    }
    if (bl_db_begin(r, db))
        return OK;
    if (bl_audit(r, db, NULL, rid, "echo", "1", "success", NULL)) {
        bl_db_rollback(r, db);
        return bl_send_unavailable(r, "database");
    }
    if (!strcmp(mode, "commit") && bl_db_commit(r, db))
        return OK;
    if (!strcmp(mode, "rollback"))
        bl_db_rollback(r, db);
    return bl_send_data(r, HTTP_OK, mode, NULL, NULL);
}

int bl_echo_handler(request_rec *r)
{
    const bl_user *user;
    json_object *body = NULL;
    const char *user_json;

    if (!bl_core_test_echo_enabled(r->server))
        return DECLINED;
    bl_set_route(r, "/test/echo");
    if (r->args && !strncmp(r->args, "status=", 7)) {
        int status = atoi(r->args + 7);
        if (status >= 400 && status <= 599)
            return status;
    }
    if (r->args && !strncmp(r->args, "db=", 3))
        return echo_db(r, r->args + 3);
    /* ?count=N&gauge=V: the domain series of t/core_metrics.t. */
    if (r->args && !strncmp(r->args, "count=", 6)) {
        const char *gauge = strstr(r->args, "&gauge=");
        bl_metrics_count("beautiful_test_events_total{kind=\"echo\"}",
                         (apr_uint64_t)apr_atoi64(r->args + 6));
        bl_metrics_count("beautiful_test_events_total{kind=\"other\"}", 0);
        if (gauge)
            bl_metrics_gauge("beautiful_test_level", apr_atoi64(gauge + 7));
        return bl_send_no_content(r);
    }
    if (r->method_number == M_DELETE)
        return HTTP_METHOD_NOT_ALLOWED;
    if (r->method_number != M_GET) {
        if (bl_csrf_refused(r))
            return OK;
        if (!(body = bl_read_json(r)))
            return OK;
    }
    user = bl_current_user(r);
    user_json = user ? apr_pstrcat(r->pool, "{\"id\":", bl_json_quote(r->pool, user->id),
                                   ",\"role\":", bl_json_quote(r->pool, user->role), "}", NULL)
                     : "null";
    return bl_send_data(r, r->method_number == M_POST ? HTTP_CREATED : HTTP_OK, "echo",
                        apr_pstrcat(r->pool, "{\"user\":", user_json, ",\"body\":",
                                    body ? bl_json_to_string(r->pool, body) : "null", "}",
                                    NULL), NULL);
}
