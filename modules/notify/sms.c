/* The sms channel: Twilio's Messages API, or the file sink when no Twilio
 * URL is configured (development, and hosts without an account).
 *
 * POST {url}/2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded
 * To, From, Body, HTTP Basic AccountSid:AuthToken. 201 carries the
 * message's sid. A 4xx other than 401/429 is Twilio saying the message can
 * never go (21211 invalid number, 21610 unsubscribed ...): the row fails at
 * once. 429, 5xx and transport errors are retried with the row's backoff;
 * so is 401 (credentials being fixed should not lose messages). */
#include "notify_private.h"
#include "http_client.h"
#include "json.h"

#include <apr_strings.h>

#include <string.h>

/* Twilio joins longer bodies into up to 10 segments; past that it refuses. */
#define SMS_MAX_CHARS 1600

/* "Title\nBody", cut (on a UTF-8 boundary) to what Twilio accepts. */
static const char *sms_text(apr_pool_t *p, const bl_notification *n)
{
    const char *text = n->title && *n->title
                           ? apr_pstrcat(p, n->title, "\n", n->body ? n->body : "", NULL)
                           : (n->body ? n->body : "");
    size_t chars = 0, i;

    for (i = 0; text[i]; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80 && ++chars > SMS_MAX_CHARS)
            return apr_pstrndup(p, text, i);
    return text;
}

static bl_send_status sink(apr_pool_t *p, const bl_sms_conf *conf, const bl_notification *n,
                           const char *text, const char **error)
{
    json_object *o = json_object_new_object();
    const char *doc;

    json_object_object_add(o, "to", json_object_new_string(n->phone));
    json_object_object_add(o, "from", json_object_new_string(conf->from ? conf->from : ""));
    json_object_object_add(o, "body", json_object_new_string(text));
    json_object_object_add(o, "type", json_object_new_string(n->type ? n->type : ""));
    doc = bl_json_to_string(p, o);
    json_object_put(o);
    return bl_sink_write(p, conf->dir, n->id, ".json", doc, error);
}

/* Twilio's error code from a 4xx body, or 0. */
static long twilio_code(apr_pool_t *p, const bl_http_response *resp)
{
    const char *err = NULL;
    json_object *doc = bl_json_parse_object(p, resp->body, resp->body_len, 4, &err), *v;

    if (doc && json_object_object_get_ex(doc, "code", &v) && json_object_is_type(v, json_type_int))
        return (long)json_object_get_int64(v);
    return 0;
}

static const char *twilio_sid(apr_pool_t *p, const bl_http_response *resp)
{
    const char *err = NULL;
    json_object *doc = bl_json_parse_object(p, resp->body, resp->body_len, 4, &err), *v;

    if (doc && json_object_object_get_ex(doc, "sid", &v) && json_object_is_type(v, json_type_string)
        && json_object_get_string_len(v) <= 64)
        return apr_pstrdup(p, json_object_get_string(v));
    return NULL;
}

static bl_send_status twilio(apr_pool_t *p, const bl_sms_conf *conf, const bl_notification *n,
                             const char *text, const char **provider_id, const char **error)
{
    bl_http_request req;
    bl_http_response resp;
    long code;

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = apr_pstrcat(p, conf->url, "/2010-04-01/Accounts/",
                          bl_http_form_escape(p, conf->account_sid), "/Messages.json", NULL);
    req.body = apr_pstrcat(p, "To=", bl_http_form_escape(p, n->phone),
                           "&From=", bl_http_form_escape(p, conf->from),
                           "&Body=", bl_http_form_escape(p, text), NULL);
    req.body_len = strlen(req.body);
    req.content_type = "application/x-www-form-urlencoded";
    req.basic_user = conf->account_sid;
    req.basic_password = conf->auth_token;
    req.timeout = apr_time_from_sec(15);
    req.max_attempts = 1;    /* the row's backoff retries */
    req.max_response = 64 * 1024;
    if (bl_http_perform(p, &req, &resp) != BL_HTTP_OK) {
        *error = apr_pstrcat(p, "twilio: ", resp.error ? resp.error : "no answer", NULL);
        return BL_SEND_RETRY;
    }
    if (resp.status >= 200 && resp.status < 300) {
        *provider_id = twilio_sid(p, &resp);
        return BL_SEND_OK;
    }
    if (bl_http_status_retryable(resp.status) || resp.status == 401) {
        *error = apr_psprintf(p, "twilio answered %ld", resp.status);
        return BL_SEND_RETRY;
    }
    code = twilio_code(p, &resp);
    *error = code ? apr_psprintf(p, "twilio refused the message: error %ld", code)
                  : apr_psprintf(p, "twilio refused the message: HTTP %ld", resp.status);
    return BL_SEND_PERMANENT;
}

bl_send_status bl_sms_deliver(apr_pool_t *p, const bl_sms_conf *conf,
                              const bl_notification *n, const char **provider_id,
                              const char **error)
{
    const char *text;

    *provider_id = NULL;
    if (!n->phone || !*n->phone) {
        *error = "no phone number in the preferences";
        return BL_SEND_SKIPPED;
    }
    text = sms_text(p, n);
    return conf->url ? twilio(p, conf, n, text, provider_id, error)
                     : sink(p, conf, n, text, error);
}
