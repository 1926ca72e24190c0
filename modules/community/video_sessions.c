/* Video sessions: GET/POST /video-sessions, GET/PUT/DELETE
 * /video-sessions/:id, POST/DELETE /video-sessions/:id/join,
 * GET /video-sessions/:id/participants, GET /communities/:id/video-sessions.
 *
 * A session outside a community is visible to everyone signed in; one in
 * a community to its members (everyone for a public community). Hosts
 * are the community's owners and moderators, or doctors outside a
 * community; the host or an admin edits and cancels. The link is shown
 * only to the host and registered participants. Registration locks the
 * session row, so max_participants holds however many register at once. */
#include "chat_video.h"
#include "uuid.h"
#include "validate.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

#define TS_S(c) "to_char((" c ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* A ban shuts user u out of public community c's sessions as privacy
 * shuts out a non-member (the community module's read rule). */
#define VS_NOT_BANNED(c, u) \
    "NOT EXISTS (SELECT 1 FROM community_bans vb WHERE vb.community_id = " c \
    " AND vb.user_id = " u ")"

/* Who may see session s (viewer a.me with role a.vrole). */
#define VS_VISIBLE \
    "(s.community_id IS NULL OR a.vrole = 'admin' OR s.host_id = a.me " \
    " OR EXISTS (SELECT 1 FROM community_members cm WHERE cm.community_id = s.community_id " \
    "  AND cm.user_id = a.me) " \
    " OR EXISTS (SELECT 1 FROM communities vc WHERE vc.id = s.community_id " \
    "  AND vc.privacy = 'public' AND " VS_NOT_BANNED("vc.id", "a.me") ") " \
    " OR EXISTS (SELECT 1 FROM video_session_participants vp WHERE vp.session_id = s.id " \
    "  AND vp.user_id = a.me))"

#define VS_REGISTERED \
    "EXISTS (SELECT 1 FROM video_session_participants rp WHERE rp.session_id = s.id " \
    "AND rp.user_id = a.me)"

/* Session s as lists show it: whether it has a link, never the link. */
#define VS_FIELDS \
    "'id', s.id, 'community_id', s.community_id, 'title', s.title, " \
    "'description', s.description, 'scheduled_at', " TS_S("s.scheduled_at") ", " \
    "'duration_minutes', s.duration_minutes, " \
    "'ends_at', " TS_S("s.scheduled_at + s.duration_minutes * interval '1 minute'") ", " \
    "'max_participants', s.max_participants, 'status', s.status, " \
    "'participant_count', (SELECT count(*) FROM video_session_participants pc " \
    "  WHERE pc.session_id = s.id), " \
    "'host', (SELECT " CV_PERSON("hu") " FROM users hu WHERE hu.id = s.host_id), " \
    "'is_host', s.host_id = a.me, 'is_registered', " VS_REGISTERED ", " \
    "'has_link', s.meet_link IS NOT NULL, " \
    "'created_at', " TS_S("s.created_at") ", 'updated_at', " TS_S("s.updated_at")
#define VS_LIST_JSON "json_build_object(" VS_FIELDS ")"
/* One session: the link for the host and the registered; where it came
 * from and the calendar's state for the host and admins. */
#define VS_DETAIL_JSON \
    "(json_build_object(" VS_FIELDS ")::jsonb || jsonb_build_object(" \
    "'meet_link', CASE WHEN s.host_id = a.me OR " VS_REGISTERED " THEN s.meet_link END, " \
    "'link_source', CASE WHEN s.host_id = a.me OR a.vrole = 'admin' THEN s.link_source END, " \
    "'calendar', CASE WHEN s.host_id = a.me OR a.vrole = 'admin' THEN s.calendar_state END))"

#define VS_ARGS "a AS (SELECT %s::uuid AS me, %s::text AS vrole)"

#define SQL_LIST "video_sessions_list"
#define SQL_GET "video_session_get"
#define SQL_COMMUNITY_ROLE "video_community_role"
#define SQL_COMMUNITY_VISIBLE "video_community_visible"
#define SQL_INSERT "video_session_insert"
#define SQL_SET_CALENDAR "video_session_set_calendar"
#define SQL_LOCK "video_session_lock"
#define SQL_UPDATE "video_session_update"
#define SQL_CANCEL "video_session_cancel"
#define SQL_PARTICIPANT_IDS "video_session_participant_ids"
#define SQL_JOIN_LOCK "video_session_join_lock"
#define SQL_JOIN "video_session_join"
#define SQL_LEAVE "video_session_leave"
#define SQL_PARTICIPANTS "video_session_participants"

static const bl_statement video_statements[] = {
    /* me, role, from, to, community, mine, now, per_page, offset */
    {SQL_LIST,
     "WITH a AS (SELECT %s::uuid AS me, %s::text AS vrole, %s::timestamptz AS t_from, "
     "  %s::timestamptz AS t_to, %s::uuid AS cid, %s::boolean AS mine, %s::timestamptz AS now), "
     "vis AS (SELECT s.* FROM a, video_sessions s WHERE s.status <> 'cancelled' AND " VS_VISIBLE
     "  AND (a.cid IS NULL OR s.community_id = a.cid) "
     "  AND (CASE WHEN a.t_from IS NULL AND a.t_to IS NULL "
     "   THEN s.scheduled_at + s.duration_minutes * interval '1 minute' > a.now "
     "   ELSE (a.t_from IS NULL OR s.scheduled_at >= a.t_from) "
     "    AND (a.t_to IS NULL OR s.scheduled_at < a.t_to) END) "
     "  AND (NOT a.mine OR s.host_id = a.me OR " VS_REGISTERED ")), "
     "page AS (SELECT * FROM vis ORDER BY scheduled_at, id LIMIT %s::int OFFSET %s::int) "
     "SELECT json_build_object('total', (SELECT count(*) FROM vis), 'items', "
     "  coalesce((SELECT json_agg(" VS_LIST_JSON " ORDER BY s.scheduled_at, s.id) "
     "  FROM page s, a), '[]'::json))::text"},
    /* me, role, session */
    {SQL_GET,
     "WITH " VS_ARGS " SELECT " VS_DETAIL_JSON "::text FROM a, video_sessions s "
     "WHERE s.id = %s::uuid AND " VS_VISIBLE},
    /* community, me: my role there */
    {SQL_COMMUNITY_ROLE,
     "SELECT role FROM community_members WHERE community_id = %s::uuid AND user_id = %s::uuid"},
    /* me, role, community: may I see its sessions */
    {SQL_COMMUNITY_VISIBLE,
     "WITH " VS_ARGS " SELECT 1 FROM a, communities c WHERE c.id = %s::uuid AND "
     "((c.privacy = 'public' AND " VS_NOT_BANNED("c.id", "a.me") ") OR a.vrole = 'admin' "
     " OR EXISTS (SELECT 1 FROM community_members m "
     " WHERE m.community_id = c.id AND m.user_id = a.me))"},
    /* id, community, host, title, description, scheduled_at, duration,
     * max, link, link source, calendar state */
    {SQL_INSERT,
     "INSERT INTO video_sessions (id, community_id, host_id, title, description, scheduled_at, "
     " duration_minutes, max_participants, meet_link, link_source, calendar_state, "
     " calendar_next_attempt) "
     "SELECT v.id, v.cid, v.host, btrim(v.title), v.descr, v.at, v.dur, v.maxp, v.link, v.src, "
     " v.state, now() + interval '2 minutes' "
     "FROM (SELECT %s::uuid AS id, %s::uuid AS cid, %s::uuid AS host, %s AS title, %s AS descr, "
     " %s::timestamptz AS at, %s::int AS dur, %s::int AS maxp, %s AS link, "
     " %s::video_link_source AS src, %s::video_calendar_state AS state) v "
     "WHERE v.at > now()"},
    /* session, meet link (NULL: keep), event id, calendar state, retry
     * delay in seconds (NULL: none) */
    {SQL_SET_CALENDAR,
     "UPDATE video_sessions SET meet_link = coalesce(%s, meet_link), "
     " link_source = CASE WHEN %s::text IS NULL THEN link_source ELSE 'google' END, "
     " calendar_event_id = coalesce(%s, calendar_event_id), "
     " calendar_state = %s::video_calendar_state, "
     " calendar_next_attempt = now() + %s::int * interval '1 second' "
     "WHERE id = %s::uuid"},
    /* me, role, session: locked for an edit; what the handler decides on */
    {SQL_LOCK,
     "WITH " VS_ARGS " SELECT (s.host_id = a.me OR a.vrole = 'admin')::text, s.status::text, "
     " s.calendar_state::text, s.calendar_event_id, "
     " (SELECT count(*) FROM video_session_participants pc WHERE pc.session_id = s.id)::text "
     "FROM a, video_sessions s WHERE s.id = %s::uuid AND " VS_VISIBLE " FOR UPDATE OF s"},
    /* session, title, description set?, description, scheduled_at,
     * duration, max set?, max: the calendar's view of the result, and
     * whether the time moved */
    {SQL_UPDATE,
     "WITH old AS (SELECT scheduled_at, duration_minutes FROM video_sessions WHERE id = %s::uuid), "
     "up AS (UPDATE video_sessions s SET title = coalesce(btrim(%s), s.title), "
     "  description = CASE WHEN %s::boolean THEN %s ELSE s.description END, "
     "  scheduled_at = coalesce(%s::timestamptz, s.scheduled_at), "
     "  duration_minutes = coalesce(%s::int, s.duration_minutes), "
     "  max_participants = CASE WHEN %s::boolean THEN %s::int ELSE s.max_participants END "
     "  FROM old WHERE s.id = %s::uuid RETURNING s.*, old.scheduled_at AS old_at), "
     "rem AS (UPDATE video_session_participants p SET reminded_at = NULL FROM up "
     "  WHERE p.session_id = up.id AND up.scheduled_at <> up.old_at) "
     "SELECT title, description, " TS_S("scheduled_at") ", "
     " " TS_S("scheduled_at + duration_minutes * interval '1 minute'") ", "
     " (scheduled_at <> old_at)::text FROM up"},
    /* session */
    {SQL_CANCEL,
     "UPDATE video_sessions SET status = 'cancelled', cancelled_at = now(), "
     " calendar_state = CASE WHEN calendar_event_id IS NOT NULL THEN 'delete' ELSE 'none' END"
     "::video_calendar_state, calendar_next_attempt = now() + interval '2 minutes' "
     "WHERE id = %s::uuid RETURNING title"},
    /* session */
    {SQL_PARTICIPANT_IDS,
     "SELECT user_id::text FROM video_session_participants WHERE session_id = %s::uuid"},
    /* me, role, session: locks the session for a registration */
    {SQL_JOIN_LOCK,
     "WITH " VS_ARGS " SELECT (s.status = 'scheduled' AND s.scheduled_at > now())::text, "
     " (s.host_id = a.me)::text, " VS_REGISTERED "::text "
     "FROM a, video_sessions s WHERE s.id = %s::uuid AND " VS_VISIBLE " FOR UPDATE OF s"},
    /* session, me, session: registers while places are left (a statement
     * of its own after the lock, so it counts every committed registration) */
    {SQL_JOIN,
     "INSERT INTO video_session_participants (session_id, user_id) "
     "SELECT s.id, %s::uuid FROM video_sessions s WHERE s.id = %s::uuid "
     "AND (s.max_participants IS NULL OR (SELECT count(*) FROM video_session_participants p "
     " WHERE p.session_id = s.id) < s.max_participants) ON CONFLICT DO NOTHING"},
    /* session, me */
    {SQL_LEAVE,
     "DELETE FROM video_session_participants WHERE session_id = %s::uuid AND user_id = %s::uuid"},
    /* me, role, session: whether I may see the list, and the list */
    {SQL_PARTICIPANTS,
     "WITH " VS_ARGS " SELECT (s.host_id = a.me OR a.vrole = 'admin')::text, "
     " (SELECT coalesce(json_agg(json_build_object('user', " CV_PERSON("u") ", "
     "  'registered_at', " TS_S("p.registered_at") ") ORDER BY p.registered_at, u.id), '[]') "
     "  FROM video_session_participants p JOIN users u ON u.id = p.user_id "
     "  WHERE p.session_id = s.id)::text "
     "FROM a, video_sessions s WHERE s.id = %s::uuid AND " VS_VISIBLE},
    {NULL, NULL}
};

/* ---------------------------------------------------------------- input */

typedef struct {
    const char *title, *description, *scheduled_at, *community_id;
    int has_description, has_max;
    int64_t duration, max_participants;
} session_input;

static int read_time(request_rec *r, json_object *body, const char *field, int required,
                     const char **out)
{
    const char *v, *err;
    bl_field_status st = bl_json_get_string(r->pool, body, field, required, 1, 40, &v, &err);

    *out = NULL;
    if (st == BL_FIELD_ABSENT)
        return 0;
    if (st != BL_FIELD_OK)
        return bl_send_validation_error(r, field, err), -1;
    if (!bl_valid_rfc3339(v))
        return bl_send_validation_error(r, field,
                                        apr_pstrcat(r->pool, field,
                                                    " must be an RFC 3339 date-time", NULL)),
               -1;
    *out = v;
    return 0;
}

/* The fields of a create (all required ones) or an edit (any subset). */
static int read_session(request_rec *r, json_object *body, int create, session_input *in)
{
    const char *err;
    json_object *v;
    bl_field_status st;

    memset(in, 0, sizeof *in);
    in->duration = -1;
    st = bl_json_get_string(r->pool, body, "title", create, 1, 200, &in->title, &err);
    if (st == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "title", err), -1;
    if (in->title && !cv_has_text(in->title))
        return bl_send_validation_error(r, "title", "title must not be blank"), -1;
    if (json_object_object_get_ex(body, "description", &v)) {
        in->has_description = 1;
        if (v && bl_json_get_string(r->pool, body, "description", BL_OPTIONAL, 0, 5000,
                                    &in->description, &err) == BL_FIELD_INVALID)
            return bl_send_validation_error(r, "description", err), -1;
    }
    if (read_time(r, body, "scheduled_at", create, &in->scheduled_at))
        return -1;
    st = bl_json_get_int(r->pool, body, "duration_minutes", BL_OPTIONAL, 5, 480, &in->duration,
                         &err);
    if (st == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "duration_minutes", err), -1;
    if (st == BL_FIELD_ABSENT)
        in->duration = -1;
    if (json_object_object_get_ex(body, "max_participants", &v)) {
        in->has_max = 1;
        in->max_participants = -1;
        if (v && bl_json_get_int(r->pool, body, "max_participants", BL_OPTIONAL, 2, 1000,
                                 &in->max_participants, &err) == BL_FIELD_INVALID)
            return bl_send_validation_error(r, "max_participants", err), -1;
    }
    if (create) {
        st = bl_json_get_string(r->pool, body, "community_id", BL_OPTIONAL, 36, 36,
                                &in->community_id, &err);
        if (st == BL_FIELD_INVALID || (in->community_id && !bl_valid_uuid(in->community_id)))
            return bl_send_validation_error(r, "community_id",
                                            "community_id must be a community id"), -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static int send_session(request_rec *r, ap_dbd_t *db, int status, const char *message,
                        const bl_user *user, const char *id)
{
    const char *args[3] = {user->id, user->role, id}, *json;

    if (bl_db_value(r, db, SQL_GET, 3, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return cv_not_found(r, "video session");
    return bl_send_data(r, status, message, json, NULL);
}

/* Notifies every participant (push and in-app), in the caller's
 * transaction. Returns 0, or -1 after answering 503. */
static int notify_participants(request_rec *r, ap_dbd_t *db, const char *id, const char *type,
                               const char *title, const char *body)
{
    apr_dbd_results_t *res = bl_db_select(r, db, SQL_PARTICIPANT_IDS, 1, &id);
    apr_dbd_row_t *row = NULL;
    const char *data = apr_psprintf(r->pool, "{\"session_id\":\"%s\"}", id);
    int failed = 0;

    if (!res)
        return -1;
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        const char *user_id = bl_db_get(r, db, row, 0);
        if (!failed && (bl_outbox_add(r, db, user_id, "push", type, title, body, data) ||
                        bl_outbox_add(r, db, user_id, "in_app", type, title, body, data)))
            failed = 1;
    }
    if (failed) {
        bl_send_unavailable(r, "database");
        return -1;
    }
    return 0;
}

/* Records a Calendar outcome on the session (outside the request's
 * transaction; best effort: a failure leaves the retry state). */
static void record_calendar(request_rec *r, ap_dbd_t *db, const char *id, const char *link,
                            const char *event_id, const char *state, const char *retry_sec)
{
    const char *args[6] = {link, link, event_id, state, retry_sec, id};

    cv_exec_quiet(r->pool, r->server, db, SQL_SET_CALENDAR, 6, args);
}

/* ---------------------------------------------------------------- routes */

static int list_sessions(request_rec *r, const bl_user *user, ap_dbd_t *db, apr_table_t *q,
                         const char *community)
{
    int page, per_page;
    const char *args[9], *json, *mine = apr_table_get(q, "mine");
    const char *from = apr_table_get(q, "from"), *to = apr_table_get(q, "to");
    json_object *obj, *total, *items;

    if (bl_pagination_args(r, &page, &per_page))
        return OK;
    if ((from && !bl_valid_rfc3339(from)) || (to && !bl_valid_rfc3339(to)))
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                             "from and to must be RFC 3339 date-times", "query: from, to");
    if (mine && strcmp(mine, "true") && strcmp(mine, "false"))
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                             "mine must be true or false", "query: mine");
    if (!community && (community = apr_table_get(q, "community_id")) && !bl_valid_uuid(community))
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION,
                             "community_id must be a community id", "query: community_id");
    args[0] = user->id;
    args[1] = user->role;
    args[2] = from;
    args[3] = to;
    args[4] = community;
    args[5] = mine ? mine : "false";
    args[6] = cv_now_param(r);
    args[7] = apr_itoa(r->pool, per_page);
    args[8] = apr_itoa(r->pool, (page - 1) * per_page);
    if (bl_db_value(r, db, SQL_LIST, 9, args, &json) != APR_SUCCESS)
        return OK;
    if (!json || !(obj = json_tokener_parse(json)))
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL, "Internal error",
                             NULL);
    json_object_object_get_ex(obj, "total", &total);
    json_object_object_get_ex(obj, "items", &items);
    {
        const char *items_json = apr_pstrdup(r->pool, json_object_to_json_string_ext(
                                                          items, JSON_C_TO_STRING_PLAIN));
        long n = (long)json_object_get_int64(total);
        json_object_put(obj);
        return bl_send_data(r, HTTP_OK, NULL, items_json,
                            bl_pagination_meta(r, page, per_page, n));
    }
}

static int video_list(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"from", "to", "community_id", "mine", "page",
                                          "per_page", NULL};
    const bl_user *user = cv_user(r);
    apr_table_t *q;
    ap_dbd_t *db;

    if (!user || cv_query(r, allowed, &q) || !(db = cv_db(r)))
        return OK;
    return list_sessions(r, user, db, q, NULL);
}

static int video_community_list(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"from", "to", "mine", "page", "per_page", NULL};
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *args[3], *one;
    apr_table_t *q;
    ap_dbd_t *db;
    int found;

    if (!user || cv_path_id(r, id, "community") || cv_query(r, allowed, &q) ||
        !(db = cv_db(r)))
        return OK;
    args[0] = user->id;
    args[1] = user->role;
    args[2] = id;
    if ((found = cv_select_row(r, db, SQL_COMMUNITY_VISIBLE, 3, args, 1, &one)) <= 0)
        return found < 0 ? OK : cv_not_found(r, "community");
    return list_sessions(r, user, db, q, id);
}

/* Host rights for a new session: 0, or -1 after answering. */
static int may_host(request_rec *r, ap_dbd_t *db, const bl_user *user, const char *community)
{
    const char *args[2] = {community, user->id}, *role;
    int found;

    if (!community) {
        if (!strcmp(user->role, "doctor"))
            return 0;
        bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                      "only doctors host sessions outside a community", NULL);
        return -1;
    }
    if ((found = cv_select_row(r, db, SQL_COMMUNITY_ROLE, 2, args, 1, &role)) < 0)
        return -1;
    if (!found) {
        cv_not_found(r, "community");
        return -1;
    }
    if (strcmp(role, "owner") && strcmp(role, "moderator")) {
        bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                      "only the community's owners and moderators host its sessions", NULL);
        return -1;
    }
    return 0;
}

static video_cal_event calendar_event(apr_pool_t *p, const char *id, const char *title,
                                      const char *description, const char *starts,
                                      const char *ends)
{
    video_cal_event ev;

    ev.session_id = id;
    ev.title = title;
    ev.description = description;
    ev.starts_at = starts;
    ev.ends_at = ends;
    ev.event_id = video_event_id(p, id);
    return ev;
}

static int video_create(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"title", "description", "community_id",
                                          "scheduled_at", "duration_minutes",
                                          "max_participants", NULL};
    const bl_user *user = cv_user(r);
    json_object *body;
    session_input in;
    ap_dbd_t *db;
    const char *id, *link, *args[11], *meet = NULL, *why = NULL, *message;
    int google = video_calendar_configured(), n;

    if (!user || !(body = cv_read_body(r, allowed)) || read_session(r, body, 1, &in))
        return OK;
    if (!(db = cv_db(r)) || may_host(r, db, user, in.community_id))
        return OK;
    if (!(id = bl_uuid_v4(r->pool)) || !(link = video_template_link(r->pool)))
        return bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL, "Internal error",
                             NULL);
    /* Stored first with the template link (and, with Google, the insert
     * pending), so a crash before Calendar answers leaves work for the
     * retry task rather than a session without a link. */
    args[0] = id;
    args[1] = in.community_id;
    args[2] = user->id;
    args[3] = in.title;
    args[4] = in.description;
    args[5] = in.scheduled_at;
    args[6] = apr_psprintf(r->pool, "%d", in.duration > 0 ? (int)in.duration : 60);
    args[7] = in.has_max && in.max_participants > 0
                  ? apr_psprintf(r->pool, "%d", (int)in.max_participants) : NULL;
    args[8] = link;
    args[9] = "template";
    args[10] = google ? "insert" : "none";
    if ((n = bl_db_exec(r, db, SQL_INSERT, 11, args)) < 0)
        return OK;
    if (n == 0)
        return bl_send_validation_error(r, "scheduled_at", "scheduled_at must be in the future");
    message = "session created with a video link from the template";
    if (google) {
        const char *cols[4], *gargs[3] = {user->id, user->role, id};
        video_cal_result rv;
        video_cal_event ev;

        /* The start and end as PostgreSQL normalised them. */
        if (cv_select_row(r, db, SQL_GET, 3, gargs, 1, cols) <= 0)
            return OK;
        {
            json_object *s = json_tokener_parse(cols[0]), *v;
            const char *starts = NULL, *ends = NULL;
            if (s && json_object_object_get_ex(s, "scheduled_at", &v))
                starts = apr_pstrdup(r->pool, json_object_get_string(v));
            if (s && json_object_object_get_ex(s, "ends_at", &v))
                ends = apr_pstrdup(r->pool, json_object_get_string(v));
            if (s)
                json_object_put(s);
            ev = calendar_event(r->pool, id, in.title, in.description, starts, ends);
        }
        rv = video_calendar_insert(r->pool, r->server, &ev, &meet, &why);
        if (rv == VIDEO_CAL_OK) {
            record_calendar(r, db, id, meet, ev.event_id, "synced", NULL);
            message = meet ? "session created with a Google Meet link"
                           : "session added to Google Calendar; the link is from the template";
        } else {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "video session %s: Google Calendar insert failed (%s)%s", id, why,
                          rv == VIDEO_CAL_RETRY ? "; retried in the background" : "");
            /* The row was leased to this request; a retry is due now. */
            record_calendar(r, db, id, NULL, NULL, rv == VIDEO_CAL_RETRY ? "insert" : "none",
                            rv == VIDEO_CAL_RETRY ? "0" : NULL);
            message = rv == VIDEO_CAL_RETRY
                          ? "session created with a video link from the template: Google "
                            "Calendar failed and is retried in the background"
                          : "session created with a video link from the template: Google "
                            "Calendar refused the event";
        }
    }
    return send_session(r, db, HTTP_CREATED, message, user, id);
}

static int video_get(request_rec *r, apr_table_t *params)
{
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id");
    ap_dbd_t *db;

    if (!user || cv_path_id(r, id, "video session") || !(db = cv_db(r)))
        return OK;
    return send_session(r, db, HTTP_OK, NULL, user, id);
}

/* Locks the session for its host or an admin. Returns 1 with cols (may
 * edit, status, calendar state, event id, participants) in an open
 * transaction, or 0/-1 after answering (rolled back). */
static int lock_for_edit(request_rec *r, ap_dbd_t *db, const bl_user *user, const char *id,
                         const char **cols)
{
    const char *args[3] = {user->id, user->role, id};
    int found;

    if (bl_db_begin(r, db))
        return -1;
    if ((found = cv_select_row(r, db, SQL_LOCK, 3, args, 5, cols)) <= 0) {
        bl_db_rollback(r, db);
        if (!found)
            cv_not_found(r, "video session");
        return found < 0 ? -1 : 0;
    }
    if (!cv_is_true(cols[0])) {
        bl_db_rollback(r, db);
        bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                      "only the host or an admin changes a session", NULL);
        return 0;
    }
    if (!strcmp(cols[1], "cancelled") || !strcmp(cols[1], "ended")) {
        bl_db_rollback(r, db);
        bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                      apr_pstrcat(r->pool, "the session is ", cols[1], NULL), NULL);
        return 0;
    }
    return 1;
}

static int video_update(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"title", "description", "scheduled_at",
                                          "duration_minutes", "max_participants", NULL};
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *cols[5], *args[10], *up[5];
    json_object *body;
    session_input in;
    ap_dbd_t *db;
    int found;

    if (!user || cv_path_id(r, id, "video session") || !(body = cv_read_body(r, allowed)) ||
        read_session(r, body, 0, &in) || !(db = cv_db(r)))
        return OK;
    if (lock_for_edit(r, db, user, id, cols) <= 0)
        return OK;
    if (in.has_max && in.max_participants > 0 && in.max_participants < atol(cols[4])) {
        bl_db_rollback(r, db);
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                             "more participants are registered than max_participants", NULL);
    }
    args[0] = id;
    args[1] = in.title;
    args[2] = in.has_description ? "true" : "false";
    args[3] = in.description;
    args[4] = in.scheduled_at;
    args[5] = in.duration > 0 ? apr_psprintf(r->pool, "%d", (int)in.duration) : NULL;
    args[6] = in.has_max ? "true" : "false";
    args[7] = in.has_max && in.max_participants > 0
                  ? apr_psprintf(r->pool, "%d", (int)in.max_participants) : NULL;
    args[8] = id;
    if ((found = cv_select_row(r, db, SQL_UPDATE, 9, args, 5, up)) <= 0) {
        bl_db_rollback(r, db);
        return found < 0 ? OK : cv_not_found(r, "video session");
    }
    if (notify_participants(r, db, id, "video.changed",
                            apr_pstrcat(r->pool, "Session changed: ", up[0], NULL),
                            cv_is_true(up[4])
                                ? apr_pstrcat(r->pool, "It now starts at ", up[2], ".", NULL)
                                : "Its details were updated.")) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (!strcmp(cols[2], "synced") && cols[3]) {
        /* Patched after the commit; on failure the task retries. */
        if (bl_db_commit(r, db))
            return OK;
        {
            video_cal_event ev = calendar_event(r->pool, id, up[0], up[1], up[2], up[3]);
            const char *why = NULL;
            if (video_calendar_patch(r->pool, r->server, &ev, &why) != VIDEO_CAL_OK) {
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                              "video session %s: Google Calendar patch failed (%s)", id, why);
                record_calendar(r, db, id, NULL, NULL, "patch", "0");
            }
        }
    } else if (bl_db_commit(r, db)) {
        return OK;
    }
    return send_session(r, db, HTTP_OK, "session updated", user, id);
}

static int video_cancel(request_rec *r, apr_table_t *params)
{
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *cols[5], *title;
    ap_dbd_t *db;
    int found;

    if (!user || cv_path_id(r, id, "video session") || !(db = cv_db(r)))
        return OK;
    if (lock_for_edit(r, db, user, id, cols) <= 0)
        return OK;
    if ((found = cv_select_row(r, db, SQL_CANCEL, 1, &id, 1, &title)) <= 0) {
        bl_db_rollback(r, db);
        return found < 0 ? OK : cv_not_found(r, "video session");
    }
    if (notify_participants(r, db, id, "video.cancelled",
                            apr_pstrcat(r->pool, "Session cancelled: ", title, NULL),
                            "The host cancelled this session.")) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (bl_db_commit(r, db))
        return OK;
    if (cols[3]) {
        const char *why = NULL;
        if (video_calendar_delete(r->pool, r->server, cols[3], &why) == VIDEO_CAL_OK) {
            record_calendar(r, db, id, NULL, NULL, "none", NULL);
        } else {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "video session %s: Google Calendar delete failed (%s); retried "
                          "in the background", id, why);
            record_calendar(r, db, id, NULL, NULL, "delete", "0");
        }
    }
    return bl_send_no_content(r);
}

static int video_join(request_rec *r, apr_table_t *params)
{
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *args[3], *cols[3];
    ap_dbd_t *db;
    int found, n;

    if (!user || cv_path_id(r, id, "video session") || !(db = cv_db(r)) || bl_db_begin(r, db))
        return OK;
    args[0] = user->id;
    args[1] = user->role;
    args[2] = id;
    if ((found = cv_select_row(r, db, SQL_JOIN_LOCK, 3, args, 3, cols)) <= 0) {
        bl_db_rollback(r, db);
        return found < 0 ? OK : cv_not_found(r, "video session");
    }
    if (cv_is_true(cols[2])) {
        bl_db_rollback(r, db);
        return send_session(r, db, HTTP_OK, "already registered", user, id);
    }
    if (!cv_is_true(cols[0]) || cv_is_true(cols[1])) {
        bl_db_rollback(r, db);
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT,
                             cv_is_true(cols[1]) ? "the host takes part without registering"
                                                 : "the session is not open for registration",
                             NULL);
    }
    args[0] = user->id;
    args[1] = id;
    if ((n = bl_db_exec(r, db, SQL_JOIN, 2, args)) < 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (n == 0) {
        bl_db_rollback(r, db);
        return bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT, "the session is full", NULL);
    }
    if (bl_db_commit(r, db))
        return OK;
    return send_session(r, db, HTTP_CREATED, "registered", user, id);
}

static int video_leave(request_rec *r, apr_table_t *params)
{
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *args[2];
    ap_dbd_t *db;
    int n;

    if (!user || cv_path_id(r, id, "video session") || !(db = cv_db(r)))
        return OK;
    args[0] = id;
    args[1] = user->id;
    if ((n = bl_db_exec(r, db, SQL_LEAVE, 2, args)) < 0)
        return OK;
    if (n == 0)
        return cv_not_found(r, "registration");
    return bl_send_no_content(r);
}

static int video_participants(request_rec *r, apr_table_t *params)
{
    const bl_user *user = cv_user(r);
    const char *id = apr_table_get(params, "id"), *args[3], *cols[2];
    ap_dbd_t *db;
    int found;

    if (!user || cv_path_id(r, id, "video session") || !(db = cv_db(r)))
        return OK;
    args[0] = user->id;
    args[1] = user->role;
    args[2] = id;
    if ((found = cv_select_row(r, db, SQL_PARTICIPANTS, 3, args, 2, cols)) <= 0)
        return found < 0 ? OK : cv_not_found(r, "video session");
    if (!cv_is_true(cols[0]))
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only the host sees who registered", NULL);
    return bl_send_data(r, HTTP_OK, NULL, cols[1], NULL);
}

static const community_route video_routes[] = {
    {"GET", "/video-sessions", video_list},
    {"POST", "/video-sessions", video_create},
    {"GET", "/video-sessions/:id", video_get},
    {"PUT", "/video-sessions/:id", video_update},
    {"DELETE", "/video-sessions/:id", video_cancel},
    {"POST", "/video-sessions/:id/join", video_join},
    {"DELETE", "/video-sessions/:id/join", video_leave},
    {"GET", "/video-sessions/:id/participants", video_participants},
    {"GET", "/communities/:id/video-sessions", video_community_list},
    {NULL, NULL, NULL}
};

const community_part video_sessions_part = {
    "video sessions", video_routes, video_statements
};
