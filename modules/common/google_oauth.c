/* Google service accounts and the JWT-bearer assertion (RFC 7523). */
#include "google_oauth.h"
#include "http_client.h"
#include "json.h"

#include <apr_file_io.h>
#include <apr_strings.h>

#include <string.h>

#define ACCOUNT_FILE_MAX (64 * 1024)

static const char *string_field(json_object *obj, const char *name)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_string)
        || json_object_get_string_len(v) == 0)
        return NULL;
    return json_object_get_string(v);
}

static int http_url(const char *u)
{
    return u && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0);
}

bl_google_account *bl_google_account_parse(apr_pool_t *p, const char *json, size_t len,
                                           const char **err)
{
    json_object *doc = bl_json_parse_object(p, json, len, 4, err);
    bl_google_account *sa;
    const char *pem, *type;
    bl_jwt_keyset *ks;

    if (!doc)
        return NULL;
    type = string_field(doc, "type");
    if (type && strcmp(type, "service_account") != 0) {
        *err = "type must be service_account";
        return NULL;
    }
    sa = apr_pcalloc(p, sizeof(*sa));
    sa->client_email = apr_pstrdup(p, string_field(doc, "client_email"));
    sa->token_uri = apr_pstrdup(p, string_field(doc, "token_uri"));
    sa->private_key_id = apr_pstrdup(p, string_field(doc, "private_key_id"));
    sa->project_id = apr_pstrdup(p, string_field(doc, "project_id"));
    pem = string_field(doc, "private_key");
    if (!sa->client_email) {
        *err = "client_email is missing";
        return NULL;
    }
    if (!http_url(sa->token_uri)) {
        *err = "token_uri must be an https:// (or http://) URL";
        return NULL;
    }
    if (!pem) {
        *err = "private_key is missing";
        return NULL;
    }
    ks = bl_jwt_keyset_create(p);
    /* without private_key_id the kid is the key's thumbprint */
    sa->key = bl_jwt_keyset_add_pem(ks, pem, strlen(pem), sa->private_key_id, err);
    if (!sa->key || !sa->key->can_sign) {
        *err = "private_key is not an RSA private key";
        return NULL;
    }
    return sa;
}

bl_google_account *bl_google_account_load(apr_pool_t *p, const char *path, const char **err)
{
    apr_file_t *f;
    char *buf = apr_palloc(p, ACCOUNT_FILE_MAX + 1);
    apr_size_t len = ACCOUNT_FILE_MAX + 1;
    apr_status_t rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, p);
    bl_google_account *sa;

    if (rv != APR_SUCCESS) {
        *err = "cannot open the service-account file";
        return NULL;
    }
    rv = apr_file_read_full(f, buf, len, &len);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        *err = "cannot read the service-account file";
        return NULL;
    }
    if (len > ACCOUNT_FILE_MAX) {
        *err = "the service-account file is larger than 64 KiB";
        return NULL;
    }
    sa = bl_google_account_parse(p, buf, len, err);
    memset(buf, 0, len);   /* the private key's text */
    return sa;
}

const char *bl_google_assertion(apr_pool_t *p, const bl_google_account *sa,
                                const char *scope, apr_time_t now)
{
    json_object *claims = json_object_new_object();
    apr_int64_t iat = (apr_int64_t)apr_time_sec(now);
    const char *jwt;

    json_object_object_add(claims, "iss", json_object_new_string(sa->client_email));
    json_object_object_add(claims, "scope", json_object_new_string(scope));
    json_object_object_add(claims, "aud", json_object_new_string(sa->token_uri));
    json_object_object_add(claims, "iat", json_object_new_int64(iat));
    json_object_object_add(claims, "exp", json_object_new_int64(iat + BL_GOOGLE_ASSERTION_TTL));
    jwt = bl_jwt_sign(p, sa->key, "JWT", claims);
    json_object_put(claims);
    return jwt;
}

const char *bl_google_token_request(apr_pool_t *p, const char *assertion)
{
    return apr_pstrcat(p, "grant_type=", bl_http_form_escape(p, BL_GOOGLE_GRANT_TYPE),
                       "&assertion=", bl_http_form_escape(p, assertion), NULL);
}

int bl_google_token_parse(apr_pool_t *p, const char *body, size_t len, const char **token,
                          apr_interval_time_t *expires_in, const char **err)
{
    json_object *doc = bl_json_parse_object(p, body, len, 4, err), *v;
    const char *type;
    int64_t secs;

    if (!doc)
        return -1;
    if (!(*token = string_field(doc, "access_token"))) {
        *err = "no access_token in the answer";
        return -1;
    }
    type = string_field(doc, "token_type");
    if (type && strcasecmp(type, "Bearer") != 0) {
        *err = "token_type is not Bearer";
        return -1;
    }
    if (!json_object_object_get_ex(doc, "expires_in", &v)
        || !json_object_is_type(v, json_type_int)
        || (secs = json_object_get_int64(v)) <= 0 || secs > 86400) {
        *err = "expires_in is missing or out of range";
        return -1;
    }
    *token = apr_pstrdup(p, *token);
    *expires_in = apr_time_from_sec(secs);
    return 0;
}
