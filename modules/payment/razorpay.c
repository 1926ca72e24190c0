/* The Razorpay API through common/http_client.h: HTTP Basic with the key
 * id and secret, JSON in and out, bounded retries. Also the signature
 * checks of checkout and webhooks (HMAC-SHA256, constant time).
 *
 * Nothing here logs a body, a key, a signature or a customer detail: only
 * the method, the path, the status and the outcome. */
#include "payment_private.h"
#include "hmac.h"
#include "http_client.h"
#include "json.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(beautiful_payment);

/* Razorpay's answers are small; anything bigger is not one of them. */
#define RZP_MAX_RESPONSE (256 * 1024)

static const char *const json_headers[] = {"Accept: application/json", NULL};

rzp_outcome rzp_call(apr_pool_t *p, server_rec *s, const char *traceparent,
                     const payment_conf *c,
                     const char *method, const char *path, json_object *body,
                     json_object **out)
{
    bl_http_request req;
    bl_http_response resp;
    const char *err = NULL;
    int is_get = strcmp(method, "GET") == 0;

    *out = NULL;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.url = apr_pstrcat(p, c->url, path, NULL);
    req.headers = json_headers;
    if (body) {
        req.body = bl_json_to_string(p, body);
        req.body_len = strlen(req.body);
        req.content_type = "application/json";
    }
    req.basic_user = c->key_id;
    req.basic_password = c->key_secret;
    req.connect_timeout = c->connect_timeout;
    req.timeout = c->timeout;
    /* A retried POST may make a second order or subscription at Razorpay;
     * only the one we record is ever used, but keep such retries few. */
    req.max_attempts = is_get ? c->max_attempts : (c->max_attempts > 1 ? 2 : 1);
    req.deadline = apr_time_now() + c->timeout * req.max_attempts + apr_time_from_sec(2);
    req.max_response = RZP_MAX_RESPONSE;
    req.traceparent = traceparent;

    bl_http_perform(p, &req, &resp);
    if (resp.outcome != BL_HTTP_OK || resp.status == 429 || resp.status >= 500) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_beautiful_payment: Razorpay %s %s unavailable (status %ld, %d "
                     "attempts%s%s)", method, path, resp.status, resp.attempts,
                     resp.error ? ": " : "", resp.error ? resp.error : "");
        return RZP_UNAVAILABLE;
    }
    if (resp.status < 200 || resp.status > 299) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_beautiful_payment: Razorpay refused %s %s with status %ld", method,
                     path, resp.status);
        return RZP_REFUSED;
    }
    *out = bl_json_parse_object(p, resp.body, resp.body_len, BL_JSON_DEFAULT_MAX_DEPTH, &err);
    if (!*out) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_beautiful_payment: Razorpay %s %s answered no JSON object (%s)",
                     method, path, err ? err : "?");
        return RZP_BAD_ANSWER;
    }
    return RZP_OK;
}

int payment_signature_ok(const char *secret, const char *msg, apr_size_t len,
                         const char *sig)
{
    static const char hexdigits[] = "0123456789abcdef";
    unsigned char mac[BL_SHA256_LEN];
    char hex[BL_SHA256_LEN * 2 + 1];
    size_t i;

    if (!secret || !sig || strlen(sig) != BL_SHA256_LEN * 2)
        return 0;
    if (!bl_hmac_sha256(secret, strlen(secret), msg, len, mac))
        return 0;
    for (i = 0; i < BL_SHA256_LEN; i++) {
        hex[2 * i] = hexdigits[mac[i] >> 4];
        hex[2 * i + 1] = hexdigits[mac[i] & 0x0f];
    }
    hex[BL_SHA256_LEN * 2] = '\0';
    return bl_ct_equal(hex, sig, BL_SHA256_LEN * 2);
}

const char *rzp_string(json_object *o, const char *name)
{
    json_object *v = NULL;

    if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

apr_int64_t rzp_int(json_object *o, const char *name)
{
    json_object *v = NULL;

    if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    return json_object_get_int64(v);
}

int payment_send_provider_error(request_rec *r, rzp_outcome outcome)
{
    if (outcome == RZP_UNAVAILABLE) {
        apr_table_setn(r->err_headers_out, "Retry-After", "30");
        return bl_send_error(r, HTTP_SERVICE_UNAVAILABLE, "PAYMENT_PROVIDER_UNAVAILABLE",
                             "the payment provider cannot be reached; nothing was charged, "
                             "try again shortly", NULL);
    }
    return bl_send_error(r, HTTP_BAD_GATEWAY, "PAYMENT_PROVIDER_ERROR",
                         "the payment provider refused the request", NULL);
}
