/* Google Calendar for video sessions: events.insert with a Meet
 * conference, events.patch and events.delete on BeautifulGoogleCalendarID,
 * authenticated as the service account of BeautifulGoogleCredentials
 * (OAuth 2.0 JWT-bearer grant, RFC 7523, scope .../auth/calendar: core's
 * bl_google_access_token, which caches the token per child).
 *
 * Without Google configured, or when it fails, a session's link comes from
 * BeautifulVideoLinkTemplate. */
#include "chat_video.h"
#include "http_client.h"
#include "json.h"
#include "random.h"

#include <apr_strings.h>

#include <string.h>

#define CALENDAR_SCOPE "https://www.googleapis.com/auth/calendar"


/* Read at start-up (pconf), read-only afterwards. */
static struct {
    int configured;
    bl_google_credentials *creds;   /* core caches its tokens per child */
    const char *events_url;         /* <base>/calendar/v3/calendars/<id>/events */
} google;

int video_calendar_configured(void)
{
    return google.configured;
}

/* Path segment escaping ('@' of group calendars, anything but unreserved). */
static const char *path_escape(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static const char *json_string_of(json_object *obj, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

const char *video_calendar_init(apr_pool_t *pconf, server_rec *s)
{
    const chat_video_conf *conf = chat_video_config();
    const char *err = NULL;

    memset(&google, 0, sizeof google);
    if (!conf->credentials_file || !conf->calendar_id) {
        if (conf->credentials_file || conf->calendar_id)
            return "BeautifulGoogleCredentials and BeautifulGoogleCalendarID go together";
        return NULL;
    }
    if (!(google.creds = bl_google_credentials_load(pconf, conf->credentials_file, &err)))
        return apr_psprintf(pconf, "BeautifulGoogleCredentials %s: %s", conf->credentials_file,
                            err ? err : "unusable");
    google.events_url = apr_pstrcat(pconf, conf->calendar_url, "/calendar/v3/calendars/",
                                    path_escape(pconf, conf->calendar_id), "/events", NULL);
    google.configured = 1;
    return NULL;
}

static void http_defaults(bl_http_request *req)
{
    const chat_video_conf *conf = chat_video_config();

    req->connect_timeout = apr_time_from_sec(3);
    req->timeout = conf->calendar_timeout;
    req->deadline = apr_time_now() + conf->calendar_timeout;
    req->max_attempts = 2;
    req->backoff_base = apr_time_from_msec(200);
    req->backoff_max = apr_time_from_sec(2);
    req->max_response = 256 * 1024;
}

/* A Bearer token for Calendar (core's cache); forget drops the cached one
 * first (Calendar answered 401). */
static const char *access_token(apr_pool_t *p, server_rec *s, int forget, const char **why)
{
    const char *token;

    if (forget)
        bl_google_token_invalidate(google.creds, CALENDAR_SCOPE);
    token = bl_google_access_token(p, s, google.creds, CALENDAR_SCOPE, why);
    if (!token && !*why)
        *why = "no access token";
    return token;
}

/* One Calendar call with a bearer token, renewed once after a 401. */
static video_cal_result calendar_call(apr_pool_t *p, server_rec *s, const char *method,
                                      const char *url, const char *body,
                                      bl_http_response *resp, const char **why)
{
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        bl_http_request req = {0};
        const char *token = access_token(p, s, attempt > 0, why);

        if (!token)
            return VIDEO_CAL_RETRY;
        http_defaults(&req);
        req.method = method;
        req.url = url;
        req.bearer = token;
        if (body) {
            req.body = body;
            req.body_len = strlen(body);
            req.content_type = "application/json";
        }
        if (bl_http_perform(p, &req, resp) != BL_HTTP_OK) {
            *why = apr_pstrcat(p, "Calendar unreachable: ", resp->error ? resp->error : "",
                               NULL);
            return VIDEO_CAL_RETRY;
        }
        if (resp->status != 401)
            break;
    }
    if (resp->status >= 200 && resp->status < 300)
        return VIDEO_CAL_OK;
    *why = apr_psprintf(p, "Calendar answered %ld", resp->status);
    return bl_http_status_retryable(resp->status) || resp->status == 401 ? VIDEO_CAL_RETRY
                                                                          : VIDEO_CAL_FAILED;
}

/* The Meet URL of an event resource: the "video" entry point. */
static const char *meet_link_of(apr_pool_t *p, const char *body, apr_size_t len)
{
    const char *err;
    json_object *event = bl_json_parse_object(p, body, len, 0, &err), *conf, *points;
    size_t i;

    if (!event || !json_object_object_get_ex(event, "conferenceData", &conf) ||
        !json_object_object_get_ex(conf, "entryPoints", &points) ||
        !json_object_is_type(points, json_type_array))
        return NULL;
    for (i = 0; i < json_object_array_length(points); i++) {
        json_object *point = json_object_array_get_idx(points, i);
        const char *type = json_string_of(point, "entryPointType");
        const char *uri = json_string_of(point, "uri");

        if (type && uri && !strcmp(type, "video") && !strncmp(uri, "https://", 8) &&
            strlen(uri) <= 2048)
            return apr_pstrdup(p, uri);
    }
    return NULL;
}

/* The event's fields; with_conference adds the Meet create request. */
static const char *event_body(apr_pool_t *p, const video_cal_event *ev, int with_conference)
{
    json_object *o = json_object_new_object(), *start, *end;
    const char *text;

    if (with_conference) {
        json_object *cd = json_object_new_object(), *cr = json_object_new_object(),
                    *key = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(ev->event_id));
        json_object_object_add(key, "type", json_object_new_string("hangoutsMeet"));
        json_object_object_add(cr, "requestId", json_object_new_string(ev->session_id));
        json_object_object_add(cr, "conferenceSolutionKey", key);
        json_object_object_add(cd, "createRequest", cr);
        json_object_object_add(o, "conferenceData", cd);
    }
    json_object_object_add(o, "summary", json_object_new_string(ev->title));
    json_object_object_add(o, "description",
                           json_object_new_string(ev->description ? ev->description : ""));
    start = json_object_new_object();
    json_object_object_add(start, "dateTime", json_object_new_string(ev->starts_at));
    json_object_object_add(start, "timeZone", json_object_new_string("UTC"));
    json_object_object_add(o, "start", start);
    end = json_object_new_object();
    json_object_object_add(end, "dateTime", json_object_new_string(ev->ends_at));
    json_object_object_add(end, "timeZone", json_object_new_string("UTC"));
    json_object_object_add(o, "end", end);
    text = apr_pstrdup(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

video_cal_result video_calendar_insert(apr_pool_t *p, server_rec *s,
                                       const video_cal_event *ev,
                                       const char **meet_link, const char **why)
{
    bl_http_response resp;
    video_cal_result rv;

    *meet_link = NULL;
    if (!google.configured)
        return VIDEO_CAL_FAILED;
    rv = calendar_call(p, s, "POST",
                       apr_pstrcat(p, google.events_url, "?conferenceDataVersion=1", NULL),
                       event_body(p, ev, 1), &resp, why);
    if (rv == VIDEO_CAL_FAILED && resp.status == 409) {
        /* Made by an earlier attempt whose answer was lost: read it back. */
        rv = calendar_call(p, s, "GET",
                           apr_pstrcat(p, google.events_url, "/", ev->event_id, NULL), NULL,
                           &resp, why);
    }
    if (rv == VIDEO_CAL_OK)
        *meet_link = meet_link_of(p, resp.body, resp.body_len);
    return rv;
}

video_cal_result video_calendar_patch(apr_pool_t *p, server_rec *s,
                                      const video_cal_event *ev, const char **why)
{
    bl_http_response resp;

    if (!google.configured)
        return VIDEO_CAL_FAILED;
    return calendar_call(p, s, "PATCH",
                         apr_pstrcat(p, google.events_url, "/", ev->event_id, NULL),
                         event_body(p, ev, 0), &resp, why);
}

video_cal_result video_calendar_delete(apr_pool_t *p, server_rec *s, const char *event_id,
                                       const char **why)
{
    bl_http_response resp;
    video_cal_result rv;

    if (!google.configured)
        return VIDEO_CAL_FAILED;
    rv = calendar_call(p, s, "DELETE", apr_pstrcat(p, google.events_url, "/", event_id, NULL),
                       NULL, &resp, why);
    /* Gone already: what a delete wants. */
    if (rv == VIDEO_CAL_FAILED && (resp.status == 404 || resp.status == 410))
        return VIDEO_CAL_OK;
    return rv;
}

const char *video_template_link(apr_pool_t *p)
{
    const char *tpl = chat_video_config()->link_template, *at = strstr(tpl, "{room}");
    unsigned char bytes[16];
    char room[33];
    int i;

    if (!at || !bl_random_bytes(bytes, sizeof bytes))
        return NULL;
    for (i = 0; i < 16; i++)
        apr_snprintf(room + 2 * i, 3, "%02x", bytes[i]);
    return apr_pstrcat(p, apr_pstrndup(p, tpl, (apr_size_t)(at - tpl)), room,
                       at + sizeof("{room}") - 1, NULL);
}

const char *video_event_id(apr_pool_t *p, const char *session_id)
{
    char *out = apr_palloc(p, strlen(session_id) + 1), *o = out;

    for (; *session_id; session_id++)
        if (*session_id != '-')
            *o++ = *session_id;
    *o = '\0';
    return out;
}
