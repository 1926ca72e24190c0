/* Share links, like SMART Health Links: POST /medical-records/:id/share-links
 * makes a URL carrying a random token; anyone holding it (no account)
 * reads the record's metadata (GET /share-links/:token) and downloads it
 * (GET /share-links/:token/download), giving the passcode in
 * X-Share-Passcode when one was set. Five wrong passcodes kill the link;
 * attempts are also throttled per client address. Only the token's SHA-256
 * is stored, and the token never reaches a log line (medical_redact_log). */
#include "medical_private.h"
#include "hmac.h"
#include "json.h"
#include "password.h"
#include "random.h"
#include "validate.h"

#include <apr_strings.h>

#include <stdlib.h>
#include <string.h>

#define TOKEN_BYTES 32
#define PASSCODE_MIN_CHARS 4
#define PASSCODE_MAX_CHARS 64
#define PASSCODE_HEADER "X-Share-Passcode"
#define MAX_WRONG_PASSCODES 5
/* Per client address: link lookups, and passcode attempts. */
#define LINK_LIMIT 120
#define LINK_WINDOW 60
#define PASSCODE_LIMIT 10
#define PASSCODE_WINDOW 300

int medical_link_create(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"expires_at", "passcode", "max_uses", NULL};
    const bl_user *user = bl_require_user(r);
    const char *id, *unknown, *expires, *passcode = NULL, *err = NULL, *token, *args[6];
    const char *json = NULL, *phash = NULL, *url;
    int64_t max_uses = 0;
    json_object *body, *out;
    ap_dbd_t *db;

    if (!user || !(id = medical_record_id(r, params)) || !(body = bl_read_json(r)))
        return OK;
    if ((unknown = bl_json_unknown_field(body, allowed)))
        return bl_send_validation_error(r, unknown, apr_pstrcat(r->pool, "unknown field ",
                                        unknown, NULL));
    if (bl_json_get_string(r->pool, body, "passcode", BL_OPTIONAL, PASSCODE_MIN_CHARS,
                           PASSCODE_MAX_CHARS, &passcode, &err) == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "passcode", err);
    if (bl_json_get_int(r->pool, body, "max_uses", BL_OPTIONAL, 1, 1000, &max_uses, &err)
            == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "max_uses", err);
    if (!(db = bl_db(r)) || !(expires = medical_take_expiry(r, db, body)))
        return OK;
    if (!(token = bl_random_token(r->pool, TOKEN_BYTES)))
        return bl_send_unavailable(r, "randomness");
    if (passcode && !(phash = bl_password_hash(r->pool, passcode, strlen(passcode))))
        return bl_send_unavailable(r, "passcode hashing");
    args[0] = bl_sha256_hex(r->pool, token, strlen(token));
    args[1] = phash;
    args[2] = expires;
    args[3] = max_uses ? apr_psprintf(r->pool, "%d", (int)max_uses) : NULL;
    args[4] = id;
    args[5] = user->id;
    if (bl_db_begin(r, db) != 0
        || bl_db_value(r, db, MEDICAL_SQL_LINK_INSERT, 6, args, &json) != APR_SUCCESS)
        return OK;
    if (!json) {
        const char *access = NULL;
        bl_db_rollback(r, db);
        if (medical_access(r, db, id, &access, NULL) != 0)
            return OK;
        return medical_refuse(r, access, "making share links");
    }
    if (!(out = json_tokener_parse(json)))
        return bl_send_unavailable(r, "database");
    if (medical_audit(r, db, "medical.record.share_link", id, "success",
                      apr_psprintf(r->pool, "{\"link_id\":%s,\"passcode\":%s}",
                                   bl_json_quote(r->pool, json_object_get_string(
                                       json_object_object_get(out, "id"))),
                                   phash ? "true" : "false"))
        || bl_db_commit(r, db) != 0) {
        json_object_put(out);
        return OK;
    }
    url = apr_pstrcat(r->pool, bl_public_base_url(r), BL_API_PREFIX "/share-links/", token, NULL);
    json_object_object_add(out, "token", json_object_new_string(token));
    json_object_object_add(out, "url", json_object_new_string(url));
    {
        int rc = bl_send_object(r, HTTP_CREATED, "share link created", out);
        json_object_put(out);
        return rc;
    }
}

int medical_link_revoke(request_rec *r, apr_table_t *params)
{
    const bl_user *user = bl_require_user(r);
    const char *id, *link_id = apr_table_get(params, "link_id"), *args[3], *access = NULL;
    ap_dbd_t *db;
    int n;

    if (!user || !(id = medical_record_id(r, params)) || !(db = bl_db(r)))
        return OK;
    if (!link_id || !bl_valid_uuid(link_id))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "share link not found", NULL);
    args[0] = link_id;
    args[1] = id;
    args[2] = user->id;
    if (bl_db_begin(r, db) != 0 || (n = bl_db_exec(r, db, MEDICAL_SQL_LINK_REVOKE, 3, args)) < 0)
        return OK;
    if (n == 0) {
        bl_db_rollback(r, db);
        if (medical_access(r, db, id, &access, NULL) != 0)
            return OK;
        if (access && strcmp(access, "owner") == 0)
            return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND,
                                 "no live share link with this id on the record", NULL);
        return medical_refuse(r, access, "changing its share links");
    }
    if (medical_audit(r, db, "medical.record.share_link_revoke", id, "success",
                      apr_psprintf(r->pool, "{\"link_id\":\"%s\"}", link_id))
        || bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_no_content(r);
}

/* ---------------------------------------------------------------- public side */

typedef struct {
    const char *id, *passcode_hash, *record_id, *json;
    int live;
} share_link;

static int link_gone(request_rec *r)
{
    return bl_send_error(r, HTTP_GONE, "SHARE_LINK_GONE",
                         "this share link has expired, been used up or been revoked", NULL);
}

/* Finds the link of the :token parameter and checks the passcode. Returns
 * 0 with *link filled, or -1 after answering (404, 410, 401, 403, 429). */
static int open_link(request_rec *r, ap_dbd_t *db, apr_table_t *params, share_link *link,
                     const char *use)
{
    const char *token = apr_table_get(params, "token"), *hash, *args[1], *passcode;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;

    switch (bl_rate_limit(r, "medical_share_link", bl_client_ip(r), LINK_LIMIT, LINK_WINDOW)) {
    case 0:
        break;
    default:
        return -1;
    }
    if (!token || strlen(token) > 128)
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "share link not found",
                             NULL), -1;
    hash = bl_sha256_hex(r->pool, token, strlen(token));
    args[0] = hash;
    if (!(res = bl_db_select(r, db, MEDICAL_SQL_LINK_LOOKUP, 1, args)))
        return -1;
    if (!(row = medical_first_row(r, db, res)))
        return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND, "share link not found",
                             NULL), -1;
    link->id = bl_db_get(r, db, row, 0);
    link->passcode_hash = bl_db_get(r, db, row, 1);
    link->live = *bl_db_get(r, db, row, 2) == 't';
    link->record_id = bl_db_get(r, db, row, 3);
    link->json = bl_db_get(r, db, row, 4);
    if (!link->live) {
        bl_audit(r, db, NULL, use, "medical_record", link->record_id, "denied",
                 apr_psprintf(r->pool, "{\"link_id\":\"%s\",\"reason\":\"gone\"}", link->id));
        return link_gone(r), -1;
    }
    if (!link->passcode_hash)
        return 0;
    passcode = apr_table_get(r->headers_in, PASSCODE_HEADER);
    if (!passcode || !*passcode) {
        bl_audit(r, db, NULL, use, "medical_record", link->record_id, "denied",
                 apr_psprintf(r->pool, "{\"link_id\":\"%s\",\"reason\":\"no passcode\"}",
                              link->id));
        return bl_send_error(r, HTTP_UNAUTHORIZED, "PASSCODE_REQUIRED",
                             "this share link needs its passcode in " PASSCODE_HEADER, NULL), -1;
    }
    if (bl_rate_limit(r, "medical_share_passcode", bl_client_ip(r), PASSCODE_LIMIT,
                      PASSCODE_WINDOW) != 0)
        return -1;
    if (!bl_password_verify(link->passcode_hash, passcode, strlen(passcode))) {
        const char *failed = NULL;
        int left;
        args[0] = link->id;
        if (bl_db_value(r, db, MEDICAL_SQL_LINK_FAIL, 1, args, &failed) != APR_SUCCESS)
            return -1;
        bl_audit(r, db, NULL, use, "medical_record", link->record_id, "denied",
                 apr_psprintf(r->pool, "{\"link_id\":\"%s\",\"reason\":\"passcode\"}",
                              link->id));
        left = MAX_WRONG_PASSCODES - (failed ? atoi(failed) : MAX_WRONG_PASSCODES);
        if (left <= 0)
            return link_gone(r), -1;
        return bl_send_error(r, HTTP_FORBIDDEN, "INVALID_PASSCODE", "wrong passcode",
                             apr_psprintf(r->pool, "attempts left: %d", left)), -1;
    }
    return 0;
}

int medical_link_get(request_rec *r, apr_table_t *params)
{
    share_link link;
    ap_dbd_t *db;

    memset(&link, 0, sizeof link);
    if (!(db = bl_db(r)) || open_link(r, db, params, &link, "medical.share_link.view") != 0)
        return OK;
    if (medical_audit(r, db, "medical.share_link.view", link.record_id, "success",
                      apr_psprintf(r->pool, "{\"link_id\":\"%s\"}", link.id)))
        return OK;
    return bl_send_data(r, HTTP_OK, NULL, link.json, NULL);
}

int medical_link_download(request_rec *r, apr_table_t *params)
{
    share_link link;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    const char *args[1];
    ap_dbd_t *db;

    memset(&link, 0, sizeof link);
    if (!(db = bl_db(r)) || open_link(r, db, params, &link, "medical.share_link.download") != 0)
        return OK;
    /* One use, counted atomically: the last one wins once. */
    args[0] = link.id;
    if (!(res = bl_db_select(r, db, MEDICAL_SQL_LINK_USE, 1, args)))
        return OK;
    if (!(row = medical_first_row(r, db, res)))
        return link_gone(r);
    return medical_send_file(r, db, row, "medical.share_link.download",
                             apr_psprintf(r->pool, "{\"link_id\":\"%s\"}", link.id));
}
