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

/* A share s with its grantee u. */
#define SHARE_JSON \
    "json_build_object('id', s.id, 'record_id', s.record_id, " \
    "'shared_with', json_build_object('id', u.id, 'email', u.email, " \
    "'first_name', u.first_name, 'last_name', u.last_name, 'role', u.role), " \
    "'access_level', s.access_level, 'note', s.note, " \
    "'expires_at', " TS("s.expires_at") ", 'revoked_at', " TS("s.revoked_at") ", " \
    "'created_at', " TS("s.created_at") ", " \
    "'active', s.revoked_at IS NULL AND s.expires_at > now())"

#define LINK_JSON \
    "json_build_object('id', id, 'record_id', record_id, 'expires_at', " TS("expires_at") ", " \
    "'max_uses', max_uses, 'uses', uses, 'has_passcode', passcode_hash IS NOT NULL, " \
    "'created_at', " TS("created_at") ")"

const bl_statement medical_statements[] = {
    {MEDICAL_SQL_INSERT,
     "INSERT INTO medical_records (id, owner_id, title, description, record_type, "
     "record_date, storage_key, original_filename, content_type, size_bytes, sha256, "
     "wrapped_key, key_version, nonce_prefix, chunk_size, sha1) VALUES (%s::uuid, %s::uuid, "
     "%s, %s, coalesce(%s::medical_record_type, 'other'), %s::date, %s, %s, %s, %s::bigint, "
     "decode(%s, 'hex'), decode(%s, 'hex'), %s::int, decode(%s, 'hex'), %s::int, "
     "decode(%s, 'hex'))"},
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
     "WHERE record_id = %s::uuid AND revoked_at IS NULL RETURNING 1), "
     "l AS (UPDATE medical_share_links SET revoked_at = now(), revoke_reason = 'record_deleted' "
     "WHERE record_id = %s::uuid AND revoked_at IS NULL RETURNING 1) "
     "UPDATE medical_record_emergency_access SET revoked_at = now() "
     "WHERE record_id = %s::uuid AND revoked_at IS NULL"},
    /* (uid, rid) -> access, storage_key, content_type, size, sha256 hex,
     * wrapped key hex, key version, nonce prefix hex, chunk size,
     * original filename */
    {MEDICAL_SQL_FOR_DOWNLOAD,
     ACCESS_PARAMS "SELECT a.* FROM (SELECT " ACCESS_EXPR " AS access, r.storage_key, "
     "r.content_type, r.size_bytes, encode(r.sha256, 'hex'), encode(r.wrapped_key, 'hex'), "
     "r.key_version, encode(r.nonce_prefix, 'hex'), r.chunk_size, r.original_filename, r.id "
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
    /* ------------------------------------------------------------ shares */
    /* (t, t) -> whether t is ahead, at most a year */
    {MEDICAL_SQL_CHECK_EXPIRY,
     "SELECT %s::timestamptz > now() AND %s::timestamptz <= now() + interval '366 days'"},
    /* (user id or NULL, email or NULL) -> id of an active account */
    {MEDICAL_SQL_FIND_USER,
     "SELECT id FROM users WHERE (id = %s::uuid OR lower(email) = lower(%s)) "
     "AND is_active AND deleted_at IS NULL LIMIT 1"},
    /* (rid, owner, grantee, level, expires, note) -> json, created. A live
     * share (unrevoked, even if expired) is renewed in place. */
    {MEDICAL_SQL_SHARE_UPSERT,
     "WITH rec AS (SELECT id FROM medical_records WHERE id = %s::uuid AND owner_id = %s::uuid "
     "AND deleted_at IS NULL), "
     "s AS (INSERT INTO medical_record_shares (record_id, shared_with_id, access_level, "
     "expires_at, note) SELECT rec.id, %s::uuid, %s::share_access_level, %s::timestamptz, %s "
     "FROM rec ON CONFLICT (record_id, shared_with_id) WHERE revoked_at IS NULL DO UPDATE SET "
     "access_level = EXCLUDED.access_level, expires_at = EXCLUDED.expires_at, "
     "note = EXCLUDED.note RETURNING *, (xmax = 0) AS created) "
     "SELECT " SHARE_JSON "::text, s.created FROM s JOIN users u ON u.id = s.shared_with_id"},
    /* (uid, rid) -> json array */
    {MEDICAL_SQL_SHARE_LIST,
     "SELECT coalesce(json_agg(" SHARE_JSON " ORDER BY s.created_at DESC, s.id), '[]')::text "
     "FROM medical_records r JOIN medical_record_shares s ON s.record_id = r.id "
     "JOIN users u ON u.id = s.shared_with_id "
     "WHERE r.owner_id = %s::uuid AND r.id = %s::uuid AND r.deleted_at IS NULL"},
    /* (share id, rid, uid) -> grantee */
    {MEDICAL_SQL_SHARE_REVOKE,
     "UPDATE medical_record_shares s SET revoked_at = now() FROM medical_records r "
     "WHERE s.id = %s::uuid AND s.record_id = %s::uuid AND r.id = s.record_id "
     "AND r.owner_id = %s::uuid AND r.deleted_at IS NULL AND s.revoked_at IS NULL "
     "RETURNING s.shared_with_id"},
    /* ------------------------------------------------------------ break-glass */
    /* (doctor, reason, ip, minutes, rid, doctor) -> json, owner id, grant id */
    {MEDICAL_SQL_EMERGENCY,
     "WITH g AS (INSERT INTO medical_record_emergency_access (record_id, doctor_id, reason, "
     "ip_address, expires_at) SELECT r.id, %s::uuid, %s, %s::inet, "
     "now() + make_interval(mins => %s::int) FROM medical_records r "
     "WHERE r.id = %s::uuid AND r.deleted_at IS NULL AND r.owner_id <> %s::uuid RETURNING *) "
     "SELECT json_build_object('id', g.id, 'record_id', g.record_id, 'reason', g.reason, "
     "'granted_at', " TS("g.granted_at") ", 'expires_at', " TS("g.expires_at") ")::text, "
     "r.owner_id, g.id FROM g JOIN medical_records r ON r.id = g.record_id"},
    /* (grant id, rid, uid, uid) -> doctor id: the record's owner or an
     * active admin ends a live grant early. */
    {MEDICAL_SQL_EMERGENCY_END,
     "UPDATE medical_record_emergency_access e SET revoked_at = now() FROM medical_records r "
     "WHERE e.id = %s::uuid AND e.record_id = %s::uuid AND r.id = e.record_id "
     "AND r.deleted_at IS NULL AND e.revoked_at IS NULL AND e.expires_at > now() "
     "AND (r.owner_id = %s::uuid OR EXISTS (SELECT 1 FROM users a WHERE a.id = %s::uuid "
     "AND a.role = 'admin' AND a.is_active AND a.deleted_at IS NULL)) "
     "RETURNING e.doctor_id"},
    /* ------------------------------------------------------------ share links */
    /* (token hash, passcode hash, expires, max uses, rid, uid) -> json */
    {MEDICAL_SQL_LINK_INSERT,
     "INSERT INTO medical_share_links (record_id, created_by, token_hash, passcode_hash, "
     "expires_at, max_uses) SELECT r.id, r.owner_id, %s, %s, %s::timestamptz, %s::int "
     "FROM medical_records r WHERE r.id = %s::uuid AND r.owner_id = %s::uuid "
     "AND r.deleted_at IS NULL RETURNING " LINK_JSON "::text"},
    /* (link id, rid, uid) */
    {MEDICAL_SQL_LINK_REVOKE,
     "UPDATE medical_share_links l SET revoked_at = now(), revoke_reason = 'owner' "
     "FROM medical_records r WHERE l.id = %s::uuid AND l.record_id = %s::uuid "
     "AND r.id = l.record_id AND r.owner_id = %s::uuid AND l.revoked_at IS NULL"},
    /* (token hash) -> id, passcode hash, live, record id, json */
    {MEDICAL_SQL_LINK_LOOKUP,
     "SELECT l.id, l.passcode_hash, (l.revoked_at IS NULL AND l.expires_at > now() "
     "AND (l.max_uses IS NULL OR l.uses < l.max_uses) AND r.deleted_at IS NULL), r.id, "
     "json_build_object('record', json_build_object('id', r.id, 'title', r.title, "
     "'description', r.description, 'record_type', r.record_type, "
     "'record_date', r.record_date, 'original_filename', r.original_filename, "
     "'content_type', r.content_type, 'size_bytes', r.size_bytes, "
     "'sha256', encode(r.sha256, 'hex')), 'expires_at', " TS("l.expires_at") ", "
     "'uses', l.uses, 'max_uses', l.max_uses)::text "
     "FROM medical_share_links l JOIN medical_records r ON r.id = l.record_id "
     "WHERE l.token_hash = %s"},
    /* (link id) -> failed attempts so far; the fifth revokes */
    {MEDICAL_SQL_LINK_FAIL,
     "UPDATE medical_share_links SET failed_passcodes = failed_passcodes + 1, "
     "revoked_at = CASE WHEN failed_passcodes + 1 >= 5 THEN now() END, "
     "revoke_reason = CASE WHEN failed_passcodes + 1 >= 5 THEN 'passcode' END "
     "WHERE id = %s::uuid AND revoked_at IS NULL RETURNING failed_passcodes"},
    /* (link id) -> the download columns (as MEDICAL_SQL_FOR_DOWNLOAD),
     * counting one use */
    {MEDICAL_SQL_LINK_USE,
     "UPDATE medical_share_links l SET uses = l.uses + 1 FROM medical_records r "
     "WHERE l.id = %s::uuid AND r.id = l.record_id AND r.deleted_at IS NULL "
     "AND l.revoked_at IS NULL AND l.expires_at > now() "
     "AND (l.max_uses IS NULL OR l.uses < l.max_uses) "
     "RETURNING 'link', r.storage_key, r.content_type, r.size_bytes, encode(r.sha256, 'hex'), "
     "encode(r.wrapped_key, 'hex'), r.key_version, encode(r.nonce_prefix, 'hex'), "
     "r.chunk_size, r.original_filename, r.id"},
    /* (uid) -> the storage keys of the user's live records */
    {MEDICAL_SQL_USER_BLOBS,
     "SELECT storage_key FROM medical_records WHERE owner_id = %s::uuid AND deleted_at IS NULL"},
    /* ------------------------------------------------------------ export */
    /* (uid, public base URL) -> FHIR R4 Bundle (collection): the Patient
     * from the caller's profile and a DocumentReference per live record
     * they own. Nulls are stripped: FHIR has no null values. */
    {MEDICAL_SQL_EXPORT,
     "WITH q AS (SELECT %s::uuid AS uid, %s::text AS base), "
     "me AS (SELECT u.* FROM users u, q WHERE u.id = q.uid), "
     "patient AS (SELECT jsonb_strip_nulls(jsonb_build_object('resourceType', 'Patient', "
     "'id', me.id, "
     "'name', CASE WHEN me.first_name IS NULL AND me.last_name IS NULL THEN NULL ELSE "
     "jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('family', me.last_name, "
     "'given', CASE WHEN me.first_name IS NULL THEN NULL "
     "ELSE jsonb_build_array(me.first_name) END))) END, "
     "'telecom', jsonb_build_array(jsonb_build_object('system', 'email', 'value', me.email)), "
     "'gender', CASE me.gender::text WHEN 'male' THEN 'male' WHEN 'female' THEN 'female' "
     "WHEN 'non_binary' THEN 'other' WHEN 'other' THEN 'other' "
     "WHEN 'prefer_not_to_say' THEN 'unknown' END, "
     "'birthDate', me.date_of_birth::text, "
     "'address', CASE WHEN coalesce(me.city, me.state, me.country) IS NULL THEN NULL ELSE "
     "jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('city', me.city, "
     "'state', me.state, 'country', me.country))) END)) AS res FROM me), "
     "docs AS (SELECT r.created_at, r.id, jsonb_strip_nulls(jsonb_build_object("
     "'resourceType', 'DocumentReference', 'id', r.id, 'status', 'current', "
     "'type', jsonb_build_object('text', r.record_type::text), "
     "'subject', jsonb_build_object('reference', 'urn:uuid:' || r.owner_id), "
     "'date', " TS("r.created_at") ", 'description', r.title, "
     "'content', jsonb_build_array(jsonb_build_object('attachment', jsonb_strip_nulls("
     "jsonb_build_object('contentType', r.content_type, 'size', r.size_bytes, "
     "'hash', encode(r.sha1, 'base64'), 'title', coalesce(r.original_filename, r.title), "
     "'url', q.base || '/api/v1/medical-records/' || r.id || '/download', "
     "'creation', " TS("r.created_at") ")))), "
     "'context', CASE WHEN r.record_date IS NULL THEN NULL ELSE jsonb_build_object('period', "
     "jsonb_build_object('start', r.record_date::text)) END)) AS res "
     "FROM medical_records r, q WHERE r.owner_id = q.uid AND r.deleted_at IS NULL) "
     "SELECT jsonb_build_object('resourceType', 'Bundle', 'id', gen_random_uuid(), "
     "'type', 'collection', 'timestamp', " TS("now()") ", "
     "'entry', jsonb_build_array(jsonb_build_object('fullUrl', 'urn:uuid:' || "
     "(SELECT id FROM me), 'resource', (SELECT res FROM patient))) || coalesce((SELECT "
     "jsonb_agg(jsonb_build_object('fullUrl', 'urn:uuid:' || d.id, 'resource', d.res) "
     "ORDER BY d.created_at DESC, d.id) FROM docs d), '[]'::jsonb))::text, "
     "(SELECT count(*) FROM docs)"},
    {NULL, NULL}
};

apr_dbd_row_t *medical_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res)
{
    apr_dbd_row_t *row = NULL;

    if (!res || apr_dbd_get_row(db->driver, r->pool, res, &row, -1) != 0)
        return NULL;
    return row;
}
