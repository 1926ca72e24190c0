/* Every SQL statement of mod_beautiful_auth, prepared at start-up.
 * Arguments are text (apr_dbd %s) and cast here; JSON answers are built by
 * PostgreSQL so a read is one round trip. */
#include "auth_private.h"

#include <http_log.h>

APLOG_USE_MODULE(beautiful_auth);

/* RFC 3339 UTC text of a timestamptz column (NULL stays NULL). */
#define TS(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The profile fields shared by the private and public views. */
#define PROFILE_PUBLIC_FIELDS \
    "'first_name', u.first_name, 'last_name', u.last_name, " \
    "'cancer_type', u.cancer_type, 'treatment_stage', u.treatment_stage, " \
    "'location', json_build_object('city', u.city, 'state', u.state, 'country', u.country), " \
    "'bio', u.bio, 'avatar_url', u.avatar_url"

/* The owner's (and an admin's) view of a user: never the password hash. */
#define USER_JSON \
    "json_build_object('id', u.id, 'email', u.email, 'role', u.role, " \
    "'is_active', u.is_active, 'email_verified', u.email_verified_at IS NOT NULL, " \
    "'email_verified_at', " TS("u.email_verified_at") ", " \
    "'profile', json_build_object(" PROFILE_PUBLIC_FIELDS ", " \
    "'date_of_birth', u.date_of_birth, 'gender', u.gender, " \
    "'diagnosis_date', u.diagnosis_date, 'is_public', u.is_public), " \
    "'last_active_at', " TS("u.last_active_at") ", " \
    "'created_at', " TS("u.created_at") ", 'updated_at', " TS("u.updated_at") ")"

/* What anyone may see of a public profile: no email, birth date or dates
 * of diagnosis. */
#define USER_PUBLIC_JSON \
    "json_build_object('id', u.id, 'role', u.role, " \
    "'profile', json_build_object(" PROFILE_PUBLIC_FIELDS "), " \
    "'created_at', " TS("u.created_at") ")"

/* One row of the admin list. */
#define ADMIN_ITEM_JSON \
    "json_build_object('id', u.id, 'email', u.email, 'role', u.role, " \
    "'is_active', u.is_active, 'email_verified', u.email_verified_at IS NOT NULL, " \
    "'first_name', u.first_name, 'last_name', u.last_name, " \
    "'last_active_at', " TS("u.last_active_at") ", 'created_at', " TS("u.created_at") ")"

/* Profile columns from a validated, flattened JSON object j (see
 * users_profile.c): a key present means "set", JSON null means "clear". */
#define SET_FROM_J(col, expr) \
    col " = CASE WHEN p.j ? '" col "' THEN " expr " ELSE u." col " END"

const bl_statement auth_statements[] = {
    {AUTH_SQL_USER_EXISTS,
     "SELECT 1 FROM users WHERE lower(email) = lower(%s)"},
    {AUTH_SQL_USER_INSERT,
     "INSERT INTO users (id, email, password_hash, role, first_name, last_name, "
     "date_of_birth, gender, cancer_type, diagnosis_date, treatment_stage, "
     "city, state, country, is_public) "
     "SELECT %s::uuid, %s, %s, %s::user_role, j->>'first_name', j->>'last_name', "
     "(j->>'date_of_birth')::date, (j->>'gender')::gender_type, j->>'cancer_type', "
     "(j->>'diagnosis_date')::date, (j->>'treatment_stage')::treatment_stage, "
     "j->>'city', j->>'state', j->>'country', coalesce((j->>'is_public')::boolean, false) "
     "FROM (SELECT %s::jsonb AS j) p"},
    {AUTH_SQL_USER_JSON,
     "SELECT " USER_JSON " FROM users u WHERE u.id = %s::uuid AND u.deleted_at IS NULL"},
    /* target, viewer (NULL when anonymous), viewer role: a private,
     * inactive or unknown profile is simply no row (404). */
    {AUTH_SQL_USER_PUBLIC_JSON,
     "SELECT CASE WHEN u.id = a.viewer OR a.vrole = 'admin' THEN " USER_JSON
     " ELSE " USER_PUBLIC_JSON " END "
     "FROM users u, (SELECT %s::uuid AS target, %s::uuid AS viewer, %s::text AS vrole) a "
     "WHERE u.id = a.target AND u.deleted_at IS NULL "
     "AND (a.vrole = 'admin' OR u.id = a.viewer OR (u.is_public AND u.is_active))"},
    {AUTH_SQL_USER_FOR_LOGIN,
     "SELECT id, password_hash, role, is_active FROM users "
     "WHERE lower(email) = lower(%s) AND deleted_at IS NULL"},
    {AUTH_SQL_USER_BY_ID,
     "SELECT id, email, password_hash, role, is_active FROM users "
     "WHERE id = %s::uuid AND deleted_at IS NULL"},
    {AUTH_SQL_USER_SET_PASSWORD,
     "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s::uuid"},
    /* The condition keeps writes to at most one a minute per user, across
     * children and hosts. */
    {AUTH_SQL_USER_TOUCH,
     "UPDATE users SET last_active_at = now() WHERE id = %s::uuid "
     "AND (last_active_at IS NULL OR last_active_at < now() - interval '1 minute')"},
    {AUTH_SQL_USER_UPDATE_PROFILE,
     "UPDATE users u SET "
     SET_FROM_J("first_name", "p.j->>'first_name'") ", "
     SET_FROM_J("last_name", "p.j->>'last_name'") ", "
     SET_FROM_J("date_of_birth", "(p.j->>'date_of_birth')::date") ", "
     SET_FROM_J("gender", "(p.j->>'gender')::gender_type") ", "
     SET_FROM_J("cancer_type", "p.j->>'cancer_type'") ", "
     SET_FROM_J("diagnosis_date", "(p.j->>'diagnosis_date')::date") ", "
     SET_FROM_J("treatment_stage", "(p.j->>'treatment_stage')::treatment_stage") ", "
     SET_FROM_J("city", "p.j->>'city'") ", "
     SET_FROM_J("state", "p.j->>'state'") ", "
     SET_FROM_J("country", "p.j->>'country'") ", "
     SET_FROM_J("bio", "p.j->>'bio'") ", "
     SET_FROM_J("is_public", "(p.j->>'is_public')::boolean") ", "
     "updated_at = now() "
     "FROM (SELECT %s::jsonb AS j) p WHERE u.id = %s::uuid AND u.deleted_at IS NULL"},
    /* Returns the previous URL so the old file can be removed. */
    {AUTH_SQL_USER_SET_AVATAR,
     "WITH a AS (SELECT %s::uuid AS id, %s::text AS url), "
     "old AS (SELECT u.id, u.avatar_url FROM users u, a WHERE u.id = a.id "
     "AND u.deleted_at IS NULL FOR UPDATE OF u) "
     "UPDATE users u SET avatar_url = a.url, updated_at = now() FROM a, old "
     "WHERE u.id = old.id RETURNING old.avatar_url"},
    /* The trail stays, but no longer says where the person connected from
     * (the append-only trigger allows exactly this). */
    {AUTH_SQL_AUDIT_SCRUB,
     "UPDATE audit_logs SET ip_address = NULL, user_agent = NULL, details = NULL "
     "WHERE user_id = %s::uuid"},
    {AUTH_SQL_USER_DELETE,
     "DELETE FROM users WHERE id = %s::uuid RETURNING avatar_url"},
    {AUTH_SQL_USER_VERIFIED,
     "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), "
     "updated_at = now() WHERE id = %s::uuid"},

    {AUTH_SQL_USER_UNVERIFIED,
     "SELECT id FROM users WHERE lower(email) = lower(%s) AND deleted_at IS NULL "
     "AND is_active AND email_verified_at IS NULL"},

    {AUTH_SQL_SESSION_INSERT,
     "INSERT INTO sessions (id, user_id, expires_at, ip, user_agent) "
     "VALUES (%s::uuid, %s::uuid, now() + make_interval(secs => %s::int), "
     "%s::inet, left(%s, 512))"},
    {AUTH_SQL_SESSION_REVOKE,
     "UPDATE sessions SET revoked_at = now(), revoke_reason = %s "
     "WHERE id = %s::uuid AND revoked_at IS NULL"},
    {AUTH_SQL_SESSIONS_REVOKE_USER,
     "UPDATE sessions SET revoked_at = now(), revoke_reason = %s "
     "WHERE user_id = %s::uuid AND revoked_at IS NULL "
     "AND id IS DISTINCT FROM %s::uuid RETURNING id"},
    {AUTH_SQL_SESSION_EXTEND,
     "UPDATE sessions SET expires_at = now() + make_interval(secs => %s::int), "
     "last_used_at = now() WHERE id = %s::uuid"},

    {AUTH_SQL_REFRESH_INSERT,
     "INSERT INTO refresh_tokens (session_id, token_hash, expires_at) "
     "VALUES (%s::uuid, %s, now() + make_interval(secs => %s::int))"},
    /* Locks the token and its family so two refreshes cannot both win. */
    {AUTH_SQL_REFRESH_LOOKUP,
     "SELECT t.id, t.used_at IS NOT NULL, t.expires_at <= now(), s.id, s.user_id, "
     "s.revoked_at IS NOT NULL OR s.expires_at <= now(), u.role, "
     "u.is_active AND u.deleted_at IS NULL "
     "FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "
     "JOIN users u ON u.id = s.user_id WHERE t.token_hash = %s FOR UPDATE OF t, s"},
    {AUTH_SQL_REFRESH_USE,
     "UPDATE refresh_tokens SET used_at = now() WHERE id = %s::uuid AND used_at IS NULL"},

    {AUTH_SQL_VERIFY_INSERT,
     "INSERT INTO email_verification_tokens (user_id, token_hash, expires_at) "
     "VALUES (%s::uuid, %s, now() + make_interval(secs => %s::int))"},
    {AUTH_SQL_VERIFY_LOOKUP,
     "SELECT t.id, t.user_id, t.used_at IS NOT NULL, t.expires_at <= now() "
     "FROM email_verification_tokens t JOIN users u ON u.id = t.user_id "
     "WHERE t.token_hash = %s AND u.deleted_at IS NULL FOR UPDATE OF t"},
    {AUTH_SQL_VERIFY_USE,
     "UPDATE email_verification_tokens SET used_at = now() "
     "WHERE id = %s::uuid AND used_at IS NULL"},
    /* A newer email supersedes older links: they expire now. */
    {AUTH_SQL_VERIFY_RETIRE,
     "UPDATE email_verification_tokens SET expires_at = least(expires_at, now()) "
     "WHERE user_id = %s::uuid AND used_at IS NULL"},

    {AUTH_SQL_RESET_INSERT,
     "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at) "
     "VALUES (%s::uuid, %s, now() + make_interval(secs => %s::int))"},
    {AUTH_SQL_RESET_LOOKUP,
     "SELECT t.id, t.user_id, t.used_at IS NOT NULL, t.expires_at <= now(), "
     "u.email, u.is_active "
     "FROM password_reset_tokens t JOIN users u ON u.id = t.user_id "
     "WHERE t.token_hash = %s AND u.deleted_at IS NULL FOR UPDATE OF t"},
    {AUTH_SQL_RESET_USE,
     "UPDATE password_reset_tokens SET used_at = now() "
     "WHERE id = %s::uuid AND used_at IS NULL"},
    {AUTH_SQL_RESET_RETIRE,
     "UPDATE password_reset_tokens SET expires_at = least(expires_at, now()) "
     "WHERE user_id = %s::uuid AND used_at IS NULL"},

    /* role, active, verified, email prefix (each NULL: any), limit, offset. */
    {AUTH_SQL_ADMIN_LIST,
     "WITH f AS (SELECT u.* FROM users u, "
     "(SELECT %s::user_role AS role, %s::boolean AS active, %s::boolean AS verified, "
     "%s::text AS prefix) a "
     "WHERE u.deleted_at IS NULL AND (a.role IS NULL OR u.role = a.role) "
     "AND (a.active IS NULL OR u.is_active = a.active) "
     "AND (a.verified IS NULL OR (u.email_verified_at IS NOT NULL) = a.verified) "
     "AND (a.prefix IS NULL OR starts_with(u.email, a.prefix))) "
     "SELECT (SELECT count(*) FROM f), coalesce((SELECT json_agg(" ADMIN_ITEM_JSON
     " ORDER BY u.created_at DESC, u.id) FROM (SELECT * FROM f "
     "ORDER BY created_at DESC, id LIMIT %s::int OFFSET %s::int) u), '[]'::json)"},
    {AUTH_SQL_ADMIN_LOCK,
     "SELECT role, is_active FROM users WHERE id = %s::uuid AND deleted_at IS NULL "
     "FOR UPDATE"},
    {AUTH_SQL_ADMIN_UPDATE,
     "UPDATE users SET role = coalesce(%s::user_role, role), "
     "is_active = coalesce(%s::boolean, is_active), updated_at = now() "
     "WHERE id = %s::uuid"},

    /* Watchdog: forget what can no longer be used, a week after the fact
     * (used refresh tokens are kept until then to detect their reuse). */
    {AUTH_SQL_CLEANUP,
     "WITH s AS (DELETE FROM sessions WHERE expires_at < now() - interval '7 days' "
     "OR revoked_at < now() - interval '7 days'), "
     "v AS (DELETE FROM email_verification_tokens WHERE expires_at < now() - interval '7 days'), "
     "p AS (DELETE FROM password_reset_tokens WHERE expires_at < now() - interval '7 days') "
     "DELETE FROM refresh_tokens WHERE expires_at < now() - interval '7 days'"},
    {NULL, NULL}
};

apr_dbd_row_t *auth_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res)
{
    apr_dbd_row_t *row = NULL;

    if (!res || apr_dbd_get_row(db->driver, r->pool, res, &row, -1) != 0)
        return NULL;
    return row;
}

int auth_db_exec_quiet(request_rec *r, ap_dbd_t *db, const char *label, int nargs,
                       const char *const *args)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, label, APR_HASH_KEY_STRING);
    int nrows = 0, rv;

    if (!st)
        return -1;
    rv = apr_dbd_pquery(db->driver, r->pool, db->handle, &nrows, st, nargs,
                        (const char **)args);
    if (rv != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "mod_beautiful_auth: %s failed: %s",
                      label, apr_dbd_error(db->driver, db->handle, rv));
        return -1;
    }
    return nrows;
}
