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
    /* from, to (NULL: the 30 days up to today, UTC), max days. NULL when
     * the range is longer. Days are UTC dates; a half-open range per day. */
    {AUTH_SQL_ADMIN_ANALYTICS,
     "WITH b AS (SELECT d_to - CASE WHEN %s::date IS NULL THEN 29 ELSE d_to - $1::date END AS d_from, "
     "d_to FROM (SELECT coalesce(%s::date, (now() AT TIME ZONE 'UTC')::date) AS d_to) t), "
     "r AS (SELECT d_from, d_to, (d_from::timestamp AT TIME ZONE 'UTC') AS t_from, "
     "((d_to + 1)::timestamp AT TIME ZONE 'UTC') AS t_to FROM b), "
     "days AS (SELECT d::date AS day FROM r, generate_series(r.d_from, r.d_to, '1 day') d), "
     "signups AS (SELECT (u.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM users u, r "
     "WHERE u.created_at >= r.t_from AND u.created_at < r.t_to GROUP BY 1), "
     "posts AS (SELECT (p.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n "
     "FROM community_posts p, r WHERE p.created_at >= r.t_from AND p.created_at < r.t_to "
     "AND p.deleted_at IS NULL GROUP BY 1), "
     "comments AS (SELECT (c.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n "
     "FROM post_comments c, r WHERE c.created_at >= r.t_from AND c.created_at < r.t_to "
     "AND c.deleted_at IS NULL GROUP BY 1), "
     "records AS (SELECT (m.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n "
     "FROM medical_records m, r WHERE m.created_at >= r.t_from AND m.created_at < r.t_to GROUP BY 1), "
     "doses AS (SELECT (l.scheduled_for AT TIME ZONE 'UTC')::date AS day, count(*) AS due, "
     "count(*) FILTER (WHERE l.status::text = 'taken') AS taken FROM reminder_logs l, r "
     "WHERE l.scheduled_for >= r.t_from AND l.scheduled_for < r.t_to "
     "AND l.status::text IN ('fired', 'taken', 'missed', 'acknowledged', 'snoozed') GROUP BY 1), "
     "revenue AS (SELECT coalesce(p.plan, 'unknown') AS plan, p.currency, count(*) AS payments, "
     "sum(p.amount_paise) AS amount FROM payments p, r WHERE p.status = 'captured' "
     "AND p.paid_at >= r.t_from AND p.paid_at < r.t_to GROUP BY 1, 2) "
     "SELECT CASE WHEN r.d_to - r.d_from >= %s::int THEN NULL ELSE json_build_object("
     "'from', r.d_from, 'to', r.d_to, "
     "'active_users', json_build_object("
     "'daily', (SELECT count(*) FROM users u WHERE u.deleted_at IS NULL "
     "AND u.last_active_at >= r.t_to - interval '1 day' AND u.last_active_at < r.t_to), "
     "'weekly', (SELECT count(*) FROM users u WHERE u.deleted_at IS NULL "
     "AND u.last_active_at >= r.t_to - interval '7 days' AND u.last_active_at < r.t_to), "
     "'monthly', (SELECT count(*) FROM users u WHERE u.deleted_at IS NULL "
     "AND u.last_active_at >= r.t_to - interval '30 days' AND u.last_active_at < r.t_to)), "
     "'totals', json_build_object("
     "'signups', (SELECT coalesce(sum(n), 0) FROM signups), "
     "'posts', (SELECT coalesce(sum(n), 0) FROM posts), "
     "'comments', (SELECT coalesce(sum(n), 0) FROM comments), "
     "'records_uploaded', (SELECT coalesce(sum(n), 0) FROM records), "
     "'reminders_due', (SELECT coalesce(sum(due), 0) FROM doses), "
     "'reminders_taken', (SELECT coalesce(sum(taken), 0) FROM doses)), "
     "'days', (SELECT json_agg(json_build_object('date', d.day, "
     "'signups', coalesce(s.n, 0), 'posts', coalesce(p.n, 0), 'comments', coalesce(c.n, 0), "
     "'records_uploaded', coalesce(m.n, 0), 'reminders_due', coalesce(o.due, 0), "
     "'reminders_taken', coalesce(o.taken, 0)) ORDER BY d.day) "
     "FROM days d LEFT JOIN signups s USING (day) LEFT JOIN posts p USING (day) "
     "LEFT JOIN comments c USING (day) LEFT JOIN records m USING (day) "
     "LEFT JOIN doses o USING (day)), "
     "'revenue', (SELECT coalesce(json_agg(json_build_object('plan', v.plan, "
     "'currency', v.currency, 'payments', v.payments, 'amount_paise', v.amount) "
     "ORDER BY v.plan, v.currency), '[]'::json) FROM revenue v)) END FROM r"},
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
