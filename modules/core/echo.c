/* echo.c — "beautiful-echo", a test-only handler (BeautifulTestEcho On):
 * GET answers the caller, other methods read the body with bl_read_json
 * and send it back; "?status=NNN" (400-599) returns NNN to httpd, so the
 * error envelope of every status class can be seen. It lets the test suite
 * exercise body limits, content types, the JSON parser and httpd's own
 * errors without depending on a domain module. */
#include "core_hooks.h"
#include "json.h"

#include <http_protocol.h>
#include <apr_strings.h>
#include <stdlib.h>

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
