/* mod_beautiful_medical — encrypted medical records: handler
 * "beautiful-medical" for /api/v1/medical-records/....
 *
 * This file holds the module: directives, hooks, the route table and the
 * dispatcher. Each route lives in the file named after its job. */
#include "medical_private.h"
#include "router.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <apr_optional_hooks.h>
#include "http_client.h"

#include <stdlib.h>
#include <string.h>

#define MEDICAL_HANDLER "beautiful-medical"
#define DEFAULT_MAX_UPLOAD (50 * 1024 * 1024)
#define DEFAULT_CHUNK_SIZE 65536
#define DEFAULT_EMERGENCY_MINUTES 60
/* Share-link tokens travel in the path: never into the logs. */
#define LINK_PREFIX "/api/v1/share-links/"

static bl_router *medical_router;

static const struct {
    const char *method;
    const char *pattern;
    medical_route_fn *fn;
} medical_routes[] = {
    {"POST", "/medical-records", medical_upload},
    {"GET", "/medical-records", medical_list},
    {"GET", "/medical-records/export", medical_export},
    {"GET", "/medical-records/:id", medical_get},
    {"PUT", "/medical-records/:id", medical_update},
    {"DELETE", "/medical-records/:id", medical_delete},
    {"GET", "/medical-records/:id/download", medical_download},
    {"GET", "/medical-records/:id/access-log", medical_access_log},
    {"POST", "/medical-records/:id/share", medical_share},
    {"GET", "/medical-records/:id/shares", medical_list_shares},
    {"DELETE", "/medical-records/:id/shares/:share_id", medical_unshare},
    {"POST", "/medical-records/:id/emergency-access", medical_emergency},
    {"DELETE", "/medical-records/:id/emergency-access/:grant_id", medical_emergency_end},
    {"POST", "/medical-records/:id/share-links", medical_link_create},
    {"DELETE", "/medical-records/:id/share-links/:link_id", medical_link_revoke},
    {"GET", "/share-links/:token", medical_link_get},
    {"GET", "/share-links/:token/download", medical_link_download},
    {NULL, NULL, NULL}
};

/* ---------------------------------------------------------------- config */

static void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    medical_conf *c = apr_pcalloc(p, sizeof *c);

    (void)s;
    c->master_keys = apr_array_make(p, 2, sizeof(medical_master_key));
    return c;
}

static void *merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    const medical_conf *base = basev, *add = addv;
    medical_conf *c = apr_pcalloc(p, sizeof *c);

    c->storage = add->storage ? add->storage : base->storage;
    c->storage_dir = add->storage_dir ? add->storage_dir : base->storage_dir;
    c->s3 = add->s3 ? add->s3 : base->s3;
    c->max_upload = add->max_upload ? add->max_upload : base->max_upload;
    c->chunk_size = add->chunk_size ? add->chunk_size : base->chunk_size;
    c->emergency_minutes = add->emergency_minutes ? add->emergency_minutes
                                                  : base->emergency_minutes;
    c->master_keys = add->master_keys->nelts ? add->master_keys : base->master_keys;
    return c;
}

static void apply_defaults(apr_pool_t *p, medical_conf *c)
{
    if (!c->storage)
        c->storage = MEDICAL_STORAGE_LOCAL;
    if (!c->storage_dir)
        c->storage_dir = ap_server_root_relative(p, "uploads/medical");
    if (!c->max_upload)
        c->max_upload = DEFAULT_MAX_UPLOAD;
    if (!c->chunk_size)
        c->chunk_size = DEFAULT_CHUNK_SIZE;
    if (!c->emergency_minutes)
        c->emergency_minutes = DEFAULT_EMERGENCY_MINUTES;
}

const medical_conf *medical_config(const request_rec *r)
{
    return ap_get_module_config(r->server->module_config, &beautiful_medical_module);
}

static medical_conf *cmd_conf(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &beautiful_medical_module);
}

const medical_master_key *medical_newest_key(const medical_conf *c)
{
    const medical_master_key *keys = (const medical_master_key *)c->master_keys->elts;
    const medical_master_key *best = NULL;
    int i;

    for (i = 0; i < c->master_keys->nelts; i++)
        if (!best || keys[i].version > best->version)
            best = &keys[i];
    return best;
}

const medical_master_key *medical_key(const medical_conf *c, int version)
{
    const medical_master_key *keys = (const medical_master_key *)c->master_keys->elts;
    int i;

    for (i = 0; i < c->master_keys->nelts; i++)
        if (keys[i].version == version)
            return &keys[i];
    return NULL;
}

const char *medical_key_aad(apr_pool_t *p, const char *record_id, int version)
{
    return apr_psprintf(p, "bl-medical-dek:%s:%d", record_id, version);
}

/* A decimal number in [min, max], else -1. */
static long parse_number(const char *arg, long min, long max)
{
    char *end;
    long v;

    if (!*arg)
        return -1;
    v = strtol(arg, &end, 10);
    if (*end || v < min || v > max)
        return -1;
    return v;
}

/* BeautifulMedicalStorage local DIR | s3 */
static const char *cmd_storage(cmd_parms *cmd, void *dc, const char *kind, const char *arg)
{
    medical_conf *c = cmd_conf(cmd);

    (void)dc;
    if (strcmp(kind, "local") == 0 && arg) {
        c->storage = MEDICAL_STORAGE_LOCAL;
        c->storage_dir = ap_server_root_relative(cmd->pool, arg);
        return NULL;
    }
    if (strcmp(kind, "s3") == 0 && !arg) {
        c->storage = MEDICAL_STORAGE_S3;
        return NULL;
    }
    return "BeautifulMedicalStorage takes \"local DIR\" or \"s3\"";
}

static medical_s3 *s3_conf(cmd_parms *cmd)
{
    medical_conf *c = cmd_conf(cmd);

    if (!c->s3)
        c->s3 = apr_pcalloc(cmd->pool, sizeof *c->s3);
    return c->s3;
}

/* BeautifulMedicalS3 ENDPOINT REGION BUCKET (path-style addressing) */
static const char *cmd_s3(cmd_parms *cmd, void *dc, const char *endpoint, const char *region,
                          const char *bucket)
{
    medical_s3 *s3 = s3_conf(cmd);
    apr_uri_t uri;
    size_t len = strlen(endpoint);

    (void)dc;
    while (len > 0 && endpoint[len - 1] == '/')
        len--;
    s3->endpoint = apr_pstrndup(cmd->pool, endpoint, len);
    if (apr_uri_parse(cmd->pool, s3->endpoint, &uri) != APR_SUCCESS || !uri.hostname
        || !uri.scheme || (strcmp(uri.scheme, "http") != 0 && strcmp(uri.scheme, "https") != 0))
        return "BeautifulMedicalS3: the endpoint is an http(s) URL";
    s3->host = uri.port_str ? apr_pstrcat(cmd->pool, uri.hostname, ":", uri.port_str, NULL)
                            : uri.hostname;
    s3->region = region;
    s3->bucket = bucket;
    if (!*region || !*bucket || strchr(bucket, '/'))
        return "BeautifulMedicalS3: give a region and a bucket name";
    return NULL;
}

/* BeautifulMedicalS3Credentials ACCESS_KEY_ID SECRET_ACCESS_KEY */
static const char *cmd_s3_credentials(cmd_parms *cmd, void *dc, const char *id,
                                      const char *secret)
{
    medical_s3 *s3 = s3_conf(cmd);

    (void)dc;
    s3->access_key_id = id;
    s3->secret_access_key = secret;
    return NULL;
}

static const char *cmd_max_upload(cmd_parms *cmd, void *dc, const char *arg)
{
    long v = parse_number(arg, 1, 4L * 1024 * 1024 * 1024);

    (void)dc;
    if (v < 0)
        return "BeautifulMedicalMaxUpload takes a positive number of bytes";
    cmd_conf(cmd)->max_upload = (apr_off_t)v;
    return NULL;
}

static const char *cmd_chunk_size(cmd_parms *cmd, void *dc, const char *arg)
{
    long v = parse_number(arg, 1024, 16 * 1024 * 1024);

    (void)dc;
    if (v < 0)
        return "BeautifulMedicalChunkSize takes a number of bytes from 1024 to 16777216";
    cmd_conf(cmd)->chunk_size = (int)v;
    return NULL;
}

static const char *cmd_emergency(cmd_parms *cmd, void *dc, const char *arg)
{
    long v = parse_number(arg, 1, 24 * 60);

    (void)dc;
    if (v < 0)
        return "BeautifulMedicalEmergencyMinutes takes 1 to 1440 minutes";
    cmd_conf(cmd)->emergency_minutes = (int)v;
    return NULL;
}

/* 32 raw bytes, or 64 hex digits (and an optional line break). */
static const char *decode_master_key(const char *data, apr_size_t len, unsigned char *out)
{
    apr_size_t i;

    if (len == BL_AEAD_KEY_LEN) {
        memcpy(out, data, BL_AEAD_KEY_LEN);
        return NULL;
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (len != 2 * BL_AEAD_KEY_LEN)
        return "must hold 32 bytes (raw, or as 64 hex digits)";
    for (i = 0; i < BL_AEAD_KEY_LEN; i++) {
        char pair[3] = {data[2 * i], data[2 * i + 1], 0};
        char *end;
        unsigned long b = strtoul(pair, &end, 16);
        if (*end)
            return "must hold 32 bytes (raw, or as 64 hex digits)";
        out[i] = (unsigned char)b;
    }
    return NULL;
}

/* BeautifulStorageMasterKey VERSION FILE (repeatable; the newest wraps). */
static const char *cmd_master_key(cmd_parms *cmd, void *dc, const char *version,
                                  const char *file)
{
    medical_conf *c = cmd_conf(cmd);
    const char *path = ap_server_root_relative(cmd->pool, file), *err;
    medical_master_key *k;
    apr_file_t *f;
    char buf[160];
    apr_size_t len = sizeof buf;
    long v = parse_number(version, 1, 1000000);
    apr_status_t rv;

    (void)dc;
    if (v < 0)
        return "BeautifulStorageMasterKey: the version is a positive number";
    if (medical_key(c, (int)v))
        return apr_psprintf(cmd->pool, "BeautifulStorageMasterKey: version %ld given twice", v);
    if (!path || (rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, cmd->temp_pool)) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "BeautifulStorageMasterKey: cannot open %s", file);
    rv = apr_file_read_full(f, buf, sizeof buf, &len);
    apr_file_close(f);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv))
        return apr_psprintf(cmd->pool, "BeautifulStorageMasterKey: cannot read %s", file);
    k = apr_array_push(c->master_keys);
    k->version = (int)v;
    err = decode_master_key(buf, len, k->key);
    memset(buf, 0, sizeof buf);
    if (err)
        return apr_psprintf(cmd->pool, "BeautifulStorageMasterKey %s: %s", file, err);
    return NULL;
}

static const command_rec medical_cmds[] = {
    AP_INIT_TAKE12("BeautifulMedicalStorage", cmd_storage, NULL, RSRC_CONF,
                   "local DIR | s3: where encrypted record files are stored"),
    AP_INIT_TAKE3("BeautifulMedicalS3", cmd_s3, NULL, RSRC_CONF,
                  "ENDPOINT REGION BUCKET of the S3-compatible object storage"),
    AP_INIT_TAKE2("BeautifulMedicalS3Credentials", cmd_s3_credentials, NULL, RSRC_CONF,
                  "ACCESS_KEY_ID SECRET_ACCESS_KEY for the object storage"),
    AP_INIT_TAKE1("BeautifulMedicalMaxUpload", cmd_max_upload, NULL, RSRC_CONF,
                  "Largest record file accepted, in bytes (default 52428800)"),
    AP_INIT_TAKE1("BeautifulMedicalChunkSize", cmd_chunk_size, NULL, RSRC_CONF,
                  "Plaintext bytes per encrypted chunk of new records (default 65536)"),
    AP_INIT_TAKE1("BeautifulMedicalEmergencyMinutes", cmd_emergency, NULL, RSRC_CONF,
                  "Lifetime of a break-glass grant, minutes (default 60)"),
    AP_INIT_TAKE2("BeautifulStorageMasterKey", cmd_master_key, NULL, RSRC_CONF,
                  "VERSION FILE: a master key wrapping the records' data keys; the "
                  "highest version wraps new keys, older ones still unwrap"),
    {NULL}
};

/* ---------------------------------------------------------------- dispatch */

static int medical_handler(request_rec *r)
{
    apr_table_t *params;
    void *handler;

    if (!r->handler || strcmp(r->handler, MEDICAL_HANDLER) != 0)
        return DECLINED;
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (!(handler = bl_route(r, medical_router, &params)))
        return OK;
    return ((medical_route_fn *)handler)(r, params);
}

/* ---------------------------------------------------------------- hooks */

static int medical_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    server_rec *vs;
    int i;

    (void)plog;
    for (vs = s; vs; vs = vs->next) {
        medical_conf *c = ap_get_module_config(vs->module_config, &beautiful_medical_module);
        apply_defaults(pconf, c);
        if (c->storage == MEDICAL_STORAGE_S3
            && (!c->s3 || !c->s3->endpoint || !c->s3->access_key_id)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, vs, "mod_beautiful_medical: "
                         "BeautifulMedicalStorage s3 needs BeautifulMedicalS3 and "
                         "BeautifulMedicalS3Credentials");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (vs == s) {
            medical_storage_init(ptemp, s, c);
            if (!medical_newest_key(c))
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             "mod_beautiful_medical: no BeautifulStorageMasterKey: uploads "
                             "and downloads answer 503");
        }
    }
    bl_db_prepare_all(s, medical_statements);
    bl_http_global_init();
    medical_router = bl_router_create(pconf);
    for (i = 0; medical_routes[i].method; i++) {
        if (bl_router_add(medical_router, medical_routes[i].method, medical_routes[i].pattern,
                          (void *)medical_routes[i].fn) != 0) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "mod_beautiful_medical: bad route %s %s",
                         medical_routes[i].method, medical_routes[i].pattern);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* "<prefix>[redacted]<rest>" for a string holding a share-link token. */
static const char *redact(apr_pool_t *p, const char *s)
{
    const char *at = s ? strstr(s, LINK_PREFIX) : NULL, *end;

    if (!at)
        return s;
    end = at + sizeof(LINK_PREFIX) - 1;
    end += strcspn(end, " ?#/");
    return apr_pstrcat(p, apr_pstrmemdup(p, s, (apr_size_t)(at - s)), LINK_PREFIX "[redacted]",
                       end, NULL);
}

/* Masks share-link tokens in the request line and URI before the access
 * log (and anything else logging the request) sees them. */
static int medical_redact_log(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, MEDICAL_HANDLER) != 0)
        return DECLINED;
    r->the_request = (char *)redact(r->pool, r->the_request);
    if (strncmp(r->uri, LINK_PREFIX, sizeof(LINK_PREFIX) - 1) == 0) {
        r->uri = (char *)redact(r->pool, r->uri);
        r->unparsed_uri = r->uri;
        r->parsed_uri.path = r->uri;
    }
    return DECLINED;
}

static void medical_register_hooks(apr_pool_t *p)
{
    static const char *const succ_dbd_wd[] = {"mod_dbd.c", "mod_watchdog.c", NULL};
    static const char *const succ_log[] = {"mod_log_config.c", NULL};

    (void)p;
    ap_hook_post_config(medical_post_config, NULL, succ_dbd_wd, APR_HOOK_MIDDLE);
    ap_hook_handler(medical_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(medical_redact_log, NULL, succ_log, APR_HOOK_REALLY_FIRST);
    ap_hook_log_transaction(medical_erase_blobs, NULL, NULL, APR_HOOK_MIDDLE);
    apr_optional_hook_add("bl_account_deleted", (void (*)(void))medical_account_deleted,
                          NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(beautiful_medical) = {
    STANDARD20_MODULE_STUFF,
    NULL,
    NULL,
    create_server_conf,
    merge_server_conf,
    medical_cmds,
    medical_register_hooks,
    AP_MODULE_FLAG_NONE
};
