/* Every SQL statement of mod_beautiful_medical, prepared at start-up.
 * Arguments are text (apr_dbd %s) and cast here. Who may do what is
 * decided in each statement: the owner, an unexpired and unrevoked share,
 * or an unexpired break-glass grant; nobody else, admins included. */
#include "medical_private.h"

#include <http_log.h>

APLOG_USE_MODULE(beautiful_medical);

#define TS(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* A record r (owner o) as the API shows it, with the caller's access. */
#define RECORD_JSON(access) \
    "json_build_object('id', r.id, " \
    "'owner', json_build_object('id', o.id, 'first_name', o.first_name, " \
    "'last_name', o.last_name), " \
    "'access', " access ", 'title', r.title, 'description', r.description, " \
    "'record_type', r.record_type, 'record_date', r.record_date, " \
    "'original_filename', r.original_filename, 'content_type', r.content_type, " \
    "'size_bytes', r.size_bytes, 'sha256', encode(r.sha256, 'hex'), " \
    "'created_at', " TS("r.created_at") ", 'updated_at', " TS("r.updated_at") ")"

/* The caller's access to record q.rid: params q(uid, rid) come first. */
#define ACCESS_EXPR \
    "CASE WHEN r.owner_id = q.uid THEN 'owner' " \
    "WHEN s.access_level IS NOT NULL THEN s.access_level::text " \
    "WHEN e.ok IS NOT NULL THEN 'emergency' END"
#define ACCESS_FROM \
    "FROM q JOIN medical_records r ON r.id = q.rid AND r.deleted_at IS NULL " \
    "JOIN users o ON o.id = r.owner_id " \
    "LEFT JOIN medical_record_shares s ON s.record_id = r.id AND s.shared_with_id = q.uid " \
    "AND s.revoked_at IS NULL AND s.expires_at > now() " \
    "LEFT JOIN LATERAL (SELECT 1 AS ok FROM medical_record_emergency_access e " \
    "WHERE e.record_id = r.id AND e.doctor_id = q.uid AND e.revoked_at IS NULL " \
    "AND e.expires_at > now() LIMIT 1) e ON true "
#define ACCESS_PARAMS "WITH q AS (SELECT %s::uuid AS uid, %s::uuid AS rid) "

const bl_statement medical_statements[] = {
    {MEDICAL_SQL_INSERT,
     "INSERT INTO medical_records (id, owner_id, title, description, record_type, "
     "record_date, storage_key, original_filename, content_type, size_bytes, sha256, "
     "wrapped_key, key_version, nonce_prefix, chunk_size) VALUES (%s::uuid, %s::uuid, %s, %s, "
     "coalesce(%s::medical_record_type, 'other'), %s::date, %s, %s, %s, %s::bigint, "
     "decode(%s, 'hex'), decode(%s, 'hex'), %s::int, decode(%s, 'hex'), %s::int)"},
    /* (uid, rid) -> access, json */
    {MEDICAL_SQL_GET,
     ACCESS_PARAMS "SELECT a.access, a.json FROM (SELECT " ACCESS_EXPR " AS access, "
     RECORD_JSON(ACCESS_EXPR) "::text AS json " ACCESS_FROM ") a WHERE a.access IS NOT NULL"},
    /* (uid, type, from, to, shared, limit, offset) -> items json, total */
    {MEDICAL_SQL_LIST,
     "WITH q AS (SELECT %s::uuid AS uid, %s::medical_record_type AS type, %s::date AS dfrom, "
     "%s::date AS dto, %s::boolean AS shared, %s::int AS lim, %s::int AS off), "
     "vis AS (SELECT r.id, 'owner'::text AS access FROM q JOIN medical_records r "
     "ON r.owner_id = q.uid AND r.deleted_at IS NULL WHERE q.shared IS NOT TRUE "
     "UNION ALL SELECT r.id, s.access_level::text FROM q JOIN medical_record_shares s "
     "ON s.shared_with_id = q.uid AND s.revoked_at IS NULL AND s.expires_at > now() "
     "JOIN medical_records r ON r.id = s.record_id AND r.deleted_at IS NULL "
     "WHERE q.shared IS NOT FALSE), "
     "f AS (SELECT r.*, v.access FROM vis v JOIN medical_records r ON r.id = v.id, q "
     "WHERE (q.type IS NULL OR r.record_type = q.type) "
     "AND (q.dfrom IS NULL OR r.record_date >= q.dfrom) "
     "AND (q.dto IS NULL OR r.record_date <= q.dto)), "
     "page AS (SELECT f.* FROM f, q ORDER BY f.created_at DESC, f.id LIMIT (SELECT lim FROM q) "
     "OFFSET (SELECT off FROM q)) "
     "SELECT coalesce((SELECT json_agg(" RECORD_JSON("r.access")
     " ORDER BY r.created_at DESC, r.id) FROM page r JOIN users o ON o.id = r.owner_id), "
     "'[]')::text, (SELECT count(*) FROM f)"},
    /* (json, rid, uid) */
    {MEDICAL_SQL_UPDATE,
     "UPDATE medical_records r SET "
     "title = CASE WHEN p.j ? 'title' THEN p.j->>'title' ELSE r.title END, "
     "description = CASE WHEN p.j ? 'description' THEN p.j->>'description' "
     "ELSE r.description END, "
     "record_type = CASE WHEN p.j ? 'record_type' "
     "THEN (p.j->>'record_type')::medical_record_type ELSE r.record_type END, "
     "record_date = CASE WHEN p.j ? 'record_date' THEN (p.j->>'record_date')::date "
     "ELSE r.record_date END "
     "FROM (SELECT %s::jsonb AS j) p "
     "WHERE r.id = %s::uuid AND r.owner_id = %s::uuid AND r.deleted_at IS NULL"},
    /* (rid, uid) -> storage_key. The key goes (crypto-erase); the row keeps
     * what the audit trail refers to. */
    {MEDICAL_SQL_DELETE,
     "UPDATE medical_records SET deleted_at = now(), wrapped_key = NULL, "
     "title = 'deleted record', description = NULL, original_filename = NULL "
     "WHERE id = %s::uuid AND owner_id = %s::uuid AND deleted_at IS NULL "
     "RETURNING storage_key"},
    /* (rid, rid) */
    {MEDICAL_SQL_REVOKE_ALL,
     "WITH s AS (UPDATE medical_record_shares SET revoked_at = now() "
     "WHERE record_id = %s::uuid AND revoked_at IS NULL RETURNING 1) "
     "UPDATE medical_record_emergency_access SET revoked_at = now() "
     "WHERE record_id = %s::uuid AND revoked_at IS NULL"},
    /* (uid, rid) -> access, storage_key, content_type, size, sha256 hex,
     * wrapped key hex, key version, nonce prefix hex, chunk size,
     * original filename */
    {MEDICAL_SQL_FOR_DOWNLOAD,
     ACCESS_PARAMS "SELECT a.* FROM (SELECT " ACCESS_EXPR " AS access, r.storage_key, "
     "r.content_type, r.size_bytes, encode(r.sha256, 'hex'), encode(r.wrapped_key, 'hex'), "
     "r.key_version, encode(r.nonce_prefix, 'hex'), r.chunk_size, r.original_filename "
     ACCESS_FROM ") a WHERE a.access IS NOT NULL"},
    /* (rid, uid, limit, offset) -> entries json: the owner's view. */
    {MEDICAL_SQL_ACCESS_LOG,
     "SELECT coalesce(json_agg(json_build_object('id', x.id, 'action', x.action, "
     "'outcome', x.outcome, 'at', " TS("x.created_at") ", "
     "'actor', CASE WHEN x.user_id IS NULL THEN NULL ELSE json_build_object('id', x.user_id, "
     "'first_name', x.first_name, 'last_name', x.last_name, 'role', x.role) END, "
     "'ip_address', host(x.ip_address), 'user_agent', x.user_agent, 'details', x.details) "
     "ORDER BY x.created_at DESC, x.id), '[]')::text "
     "FROM (SELECT a.*, u.first_name, u.last_name, u.role FROM audit_logs a "
     "JOIN medical_records r ON r.id = %s::uuid AND r.owner_id = %s::uuid "
     "AND r.deleted_at IS NULL "
     "LEFT JOIN users u ON u.id = a.user_id "
     "WHERE a.resource_type = 'medical_record' AND a.resource_id = r.id::text "
     "ORDER BY a.created_at DESC, a.id LIMIT %s::int OFFSET %s::int) x"},
    /* (rid) -> count */
    {MEDICAL_SQL_ACCESS_COUNT,
     "SELECT count(*) FROM audit_logs WHERE resource_type = 'medical_record' "
     "AND resource_id = %s"},
    {NULL, NULL}
};

apr_dbd_row_t *medical_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res)
{
    apr_dbd_row_t *row = NULL;

    if (!res || apr_dbd_get_row(db->driver, r->pool, res, &row, -1) != 0)
        return NULL;
    return row;
}
