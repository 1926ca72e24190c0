/* Internal interfaces between the files of mod_beautiful_medical.
 * Only the module structure is exported from the .so (Makefile.inc). */
#ifndef BL_MEDICAL_PRIVATE_H
#define BL_MEDICAL_PRIVATE_H

#include "beautiful.h"
#include "aead_stream.h"

#include <apr_tables.h>

extern module AP_MODULE_DECLARE_DATA beautiful_medical_module;

/* ---------------------------------------------------------------- config */

typedef struct {
    int version;                            /* > 0 */
    unsigned char key[BL_AEAD_KEY_LEN];
} medical_master_key;

typedef enum {
    MEDICAL_STORAGE_UNSET = 0,
    MEDICAL_STORAGE_LOCAL,
    MEDICAL_STORAGE_S3
} medical_storage_kind;

typedef struct {
    const char *endpoint;                   /* base URL, no trailing slash */
    const char *host;                       /* host[:port] as signed */
    const char *region, *bucket;
    const char *access_key_id, *secret_access_key;
} medical_s3;

typedef struct {
    medical_storage_kind storage;           /* BeautifulMedicalStorage */
    const char *storage_dir;                /* BeautifulMedicalStorage local DIR */
    medical_s3 *s3;                         /* BeautifulMedicalS3(Credentials) */
    apr_off_t max_upload;                   /* BeautifulMedicalMaxUpload (bytes) */
    int chunk_size;                         /* BeautifulMedicalChunkSize (bytes) */
    int emergency_minutes;                  /* BeautifulMedicalEmergencyMinutes */
    apr_array_header_t *master_keys;        /* BeautifulStorageMasterKey: medical_master_key */
} medical_conf;

const medical_conf *medical_config(const request_rec *r);

/* The newest master key (highest version), or NULL when none is set. */
const medical_master_key *medical_newest_key(const medical_conf *c);
/* Master key number version, or NULL. */
const medical_master_key *medical_key(const medical_conf *c, int version);

/* ---------------------------------------------------------------- routes */

typedef int medical_route_fn(request_rec *r, apr_table_t *params);

medical_route_fn medical_upload, medical_list, medical_get, medical_update,
    medical_delete, medical_download, medical_access_log, medical_share,
    medical_list_shares, medical_unshare, medical_emergency, medical_emergency_end,
    medical_link_create, medical_link_revoke, medical_link_get, medical_link_download,
    medical_export;

/* Streams the file of a row shaped like MEDICAL_SQL_FOR_DOWNLOAD's
 * (columns 1..10: storage key ... record id): unwraps the key, verifies
 * every chunk and the hash, writes the audit row (action, details) and
 * sends. Returns OK after answering. */
int medical_send_file(request_rec *r, ap_dbd_t *db, apr_dbd_row_t *row, const char *action,
                      const char *details_json);

/* ---------------------------------------------------------------- SQL */

extern const bl_statement medical_statements[];

#define MEDICAL_SQL_INSERT        "medical_insert"
#define MEDICAL_SQL_LIST          "medical_list"
#define MEDICAL_SQL_COUNT         "medical_count"
#define MEDICAL_SQL_GET           "medical_get"
#define MEDICAL_SQL_UPDATE        "medical_update"
#define MEDICAL_SQL_DELETE        "medical_delete"
#define MEDICAL_SQL_REVOKE_ALL    "medical_revoke_all"
#define MEDICAL_SQL_FOR_DOWNLOAD  "medical_for_download"
#define MEDICAL_SQL_ACCESS_LOG    "medical_access_log"
#define MEDICAL_SQL_ACCESS_COUNT  "medical_access_count"
#define MEDICAL_SQL_CHECK_EXPIRY  "medical_check_expiry"
#define MEDICAL_SQL_FIND_USER     "medical_find_user"
#define MEDICAL_SQL_SHARE_UPSERT  "medical_share_upsert"
#define MEDICAL_SQL_SHARE_LIST    "medical_share_list"
#define MEDICAL_SQL_SHARE_REVOKE  "medical_share_revoke"
#define MEDICAL_SQL_EMERGENCY     "medical_emergency"
#define MEDICAL_SQL_EMERGENCY_END "medical_emergency_end"
#define MEDICAL_SQL_LINK_INSERT   "medical_link_insert"
#define MEDICAL_SQL_LINK_REVOKE   "medical_link_revoke"
#define MEDICAL_SQL_LINK_LOOKUP   "medical_link_lookup"
#define MEDICAL_SQL_LINK_FAIL     "medical_link_fail"
#define MEDICAL_SQL_LINK_USE      "medical_link_use"
#define MEDICAL_SQL_EXPORT        "medical_export"
#define MEDICAL_SQL_USER_BLOBS    "medical_user_blobs"

/* The medical_record_type values, NULL-terminated. */
extern const char *const medical_record_types[];

/* First row of a random-access result, or NULL. */
apr_dbd_row_t *medical_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res);

/* The caller's access to a live record: "owner", "download", "view",
 * "emergency", or NULL when they may not see it (or it does not exist).
 * json (may be NULL) receives the record as JSON. Returns 0, or -1 after
 * answering 503. */
int medical_access(request_rec *r, ap_dbd_t *db, const char *record_id,
                   const char **access, const char **json);

/* Answers 404 for an id the caller cannot see, 403 when they can see the
 * record but not do this (access non-NULL). */
int medical_refuse(request_rec *r, const char *access, const char *what);

/* The body's expires_at: RFC 3339, in the future, at most a year ahead;
 * NULL after answering 400 (or 503). */
const char *medical_take_expiry(request_rec *r, ap_dbd_t *db, json_object *body);

/* The :id parameter when it is a UUID, else NULL after answering 404. */
const char *medical_record_id(request_rec *r, apr_table_t *params);

/* An audit row for record_id in the caller's name; returns 0 or -1 after
 * answering 503. */
int medical_audit(request_rec *r, ap_dbd_t *db, const char *action,
                  const char *record_id, const char *outcome, const char *details_json);

/* ---------------------------------------------------------------- keys */

/* The associated data binding a wrapped key to its record and version. */
const char *medical_key_aad(apr_pool_t *p, const char *record_id, int version);

/* ---------------------------------------------------------------- storage */

/* A blob being written: invisible until committed, removed if the request
 * ends without a commit (client gone, error, limit). */
typedef struct medical_writer medical_writer;

medical_writer *medical_storage_create(request_rec *r, const char *storage_key);
int medical_writer_write(medical_writer *w, const void *data, apr_size_t len);
int medical_writer_commit(medical_writer *w);
void medical_writer_abort(medical_writer *w);

/* Reads a blob from byte offset on, in pieces. fn returns non-zero to
 * stop. Returns 0 (whole blob read or fn stopped it) or -1 (missing or
 * unreadable; logged). */
typedef int medical_read_fn(void *ctx, const char *data, apr_size_t len);
int medical_storage_read(request_rec *r, const char *storage_key, apr_off_t offset,
                         medical_read_fn *fn, void *ctx);
int medical_storage_remove(request_rec *r, const char *storage_key);

/* Account deletion (mod_beautiful_auth's optional hook bl_account_deleted):
 * notes the user's blobs, which medical_erase_blobs removes once the
 * deletion has been answered with success. */
int medical_account_deleted(request_rec *r, ap_dbd_t *db, const char *user_id);
int medical_erase_blobs(request_rec *r);

/* Makes the local storage directory at start-up. */
void medical_storage_init(apr_pool_t *p, server_rec *s, const medical_conf *c);

#endif
