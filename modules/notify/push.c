/* The push channel: FCM HTTP v1, or the file sink when no FCM URL is
 * configured.
 *
 * POST {url}/v1/projects/{project_id}/messages:send with a Bearer token of
 * the service account (core's bl_google_access_token: the JWT-bearer
 * grant, cached per process), one message per registered device. A device
 * FCM calls UNREGISTERED (or 404) is flagged for removal; the row is sent
 * when one device took it. A 401 drops the cached token so the next try
 * asks for a new one. */
#include "notify_private.h"
#include "http_client.h"
#include "json.h"

#include <apr_strings.h>

#include <string.h>

#define FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"

static json_object *message_json(const bl_notification *n, const char *token)
{
    json_object *msg = json_object_new_object(), *note = json_object_new_object(),
                *data = json_object_new_object(), *root = json_object_new_object();

    json_object_object_add(note, "title", json_object_new_string(n->title ? n->title : ""));
    json_object_object_add(note, "body", json_object_new_string(n->body ? n->body : ""));
    /* FCM data values are strings; the app fetches the rest by id */
    json_object_object_add(data, "notification_id", json_object_new_string(n->id));
    json_object_object_add(data, "type", json_object_new_string(n->type ? n->type : ""));
    if (token)
        json_object_object_add(msg, "token", json_object_new_string(token));
    json_object_object_add(msg, "notification", note);
    json_object_object_add(msg, "data", data);
    json_object_object_add(root, "message", msg);
    return root;
}

static bl_send_status sink(apr_pool_t *p, const bl_push_conf *conf, const bl_notification *n,
                           apr_array_header_t *devices, const char **error)
{
    json_object *doc = message_json(n, NULL), *tokens = json_object_new_array();
    const char *text;
    int i;

    for (i = 0; i < devices->nelts; i++)
        json_object_array_add(tokens, json_object_new_string(
                                          APR_ARRAY_IDX(devices, i, bl_push_device).token));
    json_object_object_add(doc, "tokens", tokens);
    text = bl_json_to_string(p, doc);
    json_object_put(doc);
    return bl_sink_write(p, conf->dir, n->id, ".json", text, error);
}

/* FCM's error says the token is dead: 404, or UNREGISTERED in the body
 * (errorCode of the FcmError detail). */
static int unregistered(const bl_http_response *resp)
{
    return resp->status == 404 || (resp->body && strstr(resp->body, "\"UNREGISTERED\""));
}

static const char *message_name(apr_pool_t *p, const bl_http_response *resp)
{
    const char *err = NULL;
    json_object *doc = bl_json_parse_object(p, resp->body, resp->body_len, 4, &err), *v;

    if (doc && json_object_object_get_ex(doc, "name", &v) && json_object_is_type(v, json_type_string)
        && json_object_get_string_len(v) <= 200)
        return apr_pstrdup(p, json_object_get_string(v));
    return NULL;
}

/* One device. Returns OK, RETRY (worth another try) or PERMANENT (this
 * device will never take it). */
static bl_send_status send_one(apr_pool_t *p, server_rec *s, const bl_push_conf *conf,
                               const bl_notification *n, bl_push_device *dev,
                               const char **name, const char **error)
{
    bl_http_request req;
    bl_http_response resp;
    const char *bearer, *err = NULL;
    json_object *doc;

    if (!(bearer = bl_google_access_token(p, s, conf->credentials, FCM_SCOPE, &err))) {
        *error = apr_pstrcat(p, "fcm: no access token: ", err, NULL);
        return BL_SEND_RETRY;
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = apr_pstrcat(p, conf->url, "/v1/projects/",
                          bl_http_form_escape(p, bl_google_project_id(conf->credentials)),
                          "/messages:send", NULL);
    doc = message_json(n, dev->token);
    req.body = bl_json_to_string(p, doc);
    json_object_put(doc);
    req.body_len = strlen(req.body);
    req.content_type = "application/json";
    req.bearer = bearer;
    req.timeout = apr_time_from_sec(15);
    req.max_attempts = 2;
    req.max_response = 64 * 1024;
    if (bl_http_perform(p, &req, &resp) != BL_HTTP_OK) {
        *error = apr_pstrcat(p, "fcm: ", resp.error ? resp.error : "no answer", NULL);
        return BL_SEND_RETRY;
    }
    if (resp.status == 200) {
        *name = message_name(p, &resp);
        return BL_SEND_OK;
    }
    if (unregistered(&resp)) {
        dev->unregistered = 1;
        *error = "fcm: device unregistered";
        return BL_SEND_PERMANENT;
    }
    if (resp.status == 401)
        bl_google_token_invalidate(conf->credentials, FCM_SCOPE);
    *error = apr_psprintf(p, "fcm answered %ld", resp.status);
    return bl_http_status_retryable(resp.status) || resp.status == 401 ? BL_SEND_RETRY
                                                                        : BL_SEND_PERMANENT;
}

bl_send_status bl_push_deliver(apr_pool_t *p, server_rec *s, const bl_push_conf *conf,
                               const bl_notification *n, apr_array_header_t *devices,
                               const char **provider_id, const char **error)
{
    int i, sent = 0, retry = 0, gone = 0;
    const char *last_error = NULL;

    *provider_id = NULL;
    if (devices->nelts == 0) {
        *error = "no registered device";
        return BL_SEND_SKIPPED;
    }
    if (!conf->url)
        return sink(p, conf, n, devices, error);
    for (i = 0; i < devices->nelts; i++) {
        bl_push_device *dev = &APR_ARRAY_IDX(devices, i, bl_push_device);
        const char *name = NULL, *err = NULL;

        switch (send_one(p, s, conf, n, dev, &name, &err)) {
        case BL_SEND_OK:
            if (!sent++)
                *provider_id = name;
            break;
        case BL_SEND_RETRY:
            retry = 1;
            last_error = err;
            break;
        default:
            gone += dev->unregistered;
            last_error = err;
            break;
        }
    }
    if (sent)
        return BL_SEND_OK;
    if (gone == devices->nelts) {
        *error = "no registered device (FCM unregistered them)";
        return BL_SEND_SKIPPED;
    }
    *error = last_error ? last_error : "fcm: not delivered";
    return retry ? BL_SEND_RETRY : BL_SEND_PERMANENT;
}
