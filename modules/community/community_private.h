/* Internal interfaces between the files of mod_beautiful_community.
 * Only the module structure is exported from the .so (Makefile.inc), so
 * these names never clash with another module's.
 *
 * Each feature file (communities_*.c, posts_*.c, comments_*.c,
 * reports_*.c ...) exports one community_part: its routes and its
 * prepared statements. mod_beautiful_community.c lists the parts; a new
 * file is one line there and one in Makefile.inc. */
#ifndef BL_COMMUNITY_PRIVATE_H
#define BL_COMMUNITY_PRIVATE_H

#include "beautiful.h"
#include <apr_tables.h>

extern module AP_MODULE_DECLARE_DATA beautiful_community_module;

/* ---------------------------------------------------------------- config */

typedef struct {
    int hide_after_reports;          /* BeautifulCommunityHideAfterReports */
} community_conf;

const community_conf *community_config(const request_rec *r);

/* ---------------------------------------------------------------- parts */

/* A route handler: params holds the ":name" segments. Returns OK after
 * answering (every path answers through core's envelope functions). */
typedef int community_route_fn(request_rec *r, apr_table_t *params);

typedef struct {
    const char *method;
    const char *pattern;
    community_route_fn *fn;
} community_route;

typedef struct {
    const char *name;
    const community_route *routes;        /* ended by {NULL, NULL, NULL} */
    const bl_statement *statements;       /* ended by {NULL, NULL} */
} community_part;

extern const community_part community_common_part, communities_part,
    communities_membership_part, posts_part, comments_part, reports_part,
    communities_admin_part;

/* ---------------------------------------------------------------- SQL */

/* RFC 3339 UTC text of a timestamptz column (NULL stays NULL). */
#define CM_TS(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* A user as other members see them: never the email. */
#define CM_PERSON(u) \
    "json_build_object('id', " u ".id, 'first_name', " u ".first_name, " \
    "'avatar_url', " u ".avatar_url)"

/* A community as a reader sees it; role is the viewer's role or NULL. */
#define CM_COMMUNITY_JSON(c, role) \
    "json_build_object('id', " c ".id, 'name', " c ".name, 'slug', " c ".slug, " \
    "'description', " c ".description, 'type', " c ".type, 'cancer_type', " c ".cancer_type, " \
    "'privacy', " c ".privacy, 'avatar_url', " c ".avatar_url, " \
    "'member_count', " c ".member_count, 'post_count', " c ".post_count, " \
    "'my_role', " role ", " \
    "'created_at', " CM_TS(c ".created_at") ", 'updated_at', " CM_TS(c ".updated_at") ")"

/* The request parameters every access statement starts with: community by
 * id or slug (one of them NULL), viewer, viewer's role. */
#define CM_ARGS_COMMUNITY \
    "a AS (SELECT %s::uuid AS cid, %s::text AS slug, %s::uuid AS viewer, %s::text AS vrole)"

/* The one read rule of every statement: the viewer (a.viewer, a.vrole)
 * reads the content of community c (m: their membership row, LEFT JOINed)
 * when it is public and has not banned them, when they are a member, or
 * when they are an admin. A banned user is never a member (a ban removes
 * the membership, and joining, approval and invitation refuse them), so a
 * ban shuts them out of a public community as its privacy shuts out a
 * non-member of a private one. */
#define CM_READS(c, m) \
    "((" c ".privacy = 'public' AND NOT EXISTS (SELECT 1 FROM community_bans rb " \
    " WHERE rb.community_id = " c ".id AND rb.user_id = a.viewer)) " \
    " OR " m ".role IS NOT NULL OR a.vrole = 'admin')"

/* The viewer's standing in community c (joined with a): my_role (NULL for
 * a non-member), is_admin, can_see (not hidden from them), can_read,
 * can_moderate. */
#define CM_ACCESS \
    "acc AS (SELECT c.*, m.role AS my_role, a.vrole = 'admin' AS is_admin, " \
    "(c.privacy <> 'hidden' OR m.role IS NOT NULL OR a.vrole = 'admin' " \
    " OR EXISTS (SELECT 1 FROM community_invitations i WHERE i.community_id = c.id " \
    "  AND i.user_id = a.viewer)) AS can_see, " \
    CM_READS("c", "m") " AS can_read, " \
    "(m.role IN ('moderator', 'owner') OR a.vrole = 'admin') AS can_moderate " \
    "FROM a JOIN communities c ON (c.id = a.cid OR c.slug = a.slug) " \
    "LEFT JOIN community_members m ON m.community_id = c.id AND m.user_id = a.viewer)"

/* ---------------------------------------------------------------- access */

/* The viewer's standing in one community. */
typedef struct {
    const char *id;
    const char *name;
    const char *privacy;     /* public | private | hidden */
    const char *role;        /* member | moderator | owner, NULL for none */
    int is_admin;
    int can_read;
    int can_moderate;
    int banned;
    int invited;
    int requested;           /* a pending join request */
} community_access;

/* Looks the community up by id or slug (ref) for the current user.
 * Returns 0 with *acc filled; -1 after answering 404 (unknown, malformed,
 * or hidden from the viewer) or 503. */
int community_lookup(request_rec *r, ap_dbd_t *db, const char *ref, community_access *acc);
/* Splits ref into the (id, slug) pair the statements take: one is NULL.
 * Returns 0, or -1 when ref is neither a UUID nor a slug. */
int community_ref_args(request_rec *r, const char *ref, const char **id, const char **slug);

/* 403 FORBIDDEN to a viewer who may not read a community's content: a
 * private community's non-member, or a user the community banned. */
int community_refuse_read(request_rec *r, int banned);
/* Answers 403 when the viewer may not read the community's content (a
 * private community's non-member, a banned user). Returns 0 when they may. */
int community_require_read(request_rec *r, const community_access *acc);
/* Answers 403 unless the viewer is a member. */
int community_require_member(request_rec *r, const community_access *acc);
/* Answers 403 unless the viewer moderates (moderator, owner, admin). */
int community_require_moderator(request_rec *r, const community_access *acc);

/* The viewer's standing towards one post (and its community). */
typedef struct {
    const char *id;
    const char *community_id;
    const char *community_name;
    const char *author_id;   /* NULL once the author's account is gone */
    const char *role;        /* the viewer's role in the community, or NULL */
    int is_admin;
    int can_moderate;
    int anonymous;
    int hidden;              /* hidden by reports */
} post_access;

/* Looks up a post the viewer may read: unknown, malformed, deleted, in a
 * community they do not read, or hidden by reports (to non-moderators)
 * all answer 404. Returns 0, or -1 after answering. */
int community_post_lookup(request_rec *r, ap_dbd_t *db, const char *id, post_access *pa);

/* ---------------------------------------------------------------- helpers */

/* The signed-in caller, or NULL after answering 401. */
const bl_user *community_user(request_rec *r);
/* Answers 400 naming the first unknown field; returns -1, or 0 when none. */
int community_refuse_unknown(request_rec *r, json_object *obj, const char *const *allowed);
/* Answers 400 for a query parameter not in allowed or given twice;
 * returns -1, or 0. Fills *q with the parsed query (may be empty). */
int community_query(request_rec *r, const char *const *allowed, apr_table_t **q);
/* "true"/"false" of a query flag into *out (NULL when absent); -1 after
 * answering 400 for another value. */
int community_query_bool(request_rec *r, apr_table_t *q, const char *name, const char **out);
/* An optional (allow_null) or required string field, trimmed length
 * between min and max characters. *out NULL when absent (or null when
 * allowed); *present tells whether the key was there. Returns 0, or -1
 * after answering 400. */
int community_string_field(request_rec *r, json_object *body, const char *field, int required,
                           size_t min_chars, size_t max_chars, const char **out, int *present);
/* The first row of a random-access result, or NULL. */
apr_dbd_row_t *community_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res);
/* True when the text column is PostgreSQL's "t". */
int community_is_true(const char *v);
/* 404 NOT_FOUND with "no such <what>". */
int community_not_found(request_rec *r, const char *what);
/* Answers 400 (or 404 for ids in the path) when id is not a UUID. */
int community_valid_id(request_rec *r, const char *id, const char *what);
/* Writes an in_app notification to the outbox in the caller's transaction;
 * returns 0, or -1 (logged). */
int community_notify(request_rec *r, ap_dbd_t *db, const char *user_id, const char *type,
                     const char *title, const char *body, const char *data_json);
/* Notifies every moderator and owner of community cid in the caller's
 * transaction (in_app, and email too when by_email). Returns 0, or -1
 * after answering 503. */
int community_notify_staff(request_rec *r, ap_dbd_t *db, const char *cid, int by_email,
                           const char *type, const char *title, const char *body,
                           const char *data);
/* A success audit row in the caller's transaction; -1 after answering 503. */
int community_audit(request_rec *r, ap_dbd_t *db, const char *action, const char *type,
                    const char *id, const char *details_json);

/* POST .../like for a post or a comment the caller may like: reads the
 * optional {"liked": bool} body (none: toggle), runs like_sql (item, user,
 * wanted state; first column 0 when the item is gone) and answers
 * {liked, like_count} from count_sql. Returns what the handler returns. */
int community_set_like(request_rec *r, ap_dbd_t *db, const char *item_id,
                       const char *user_id, const char *what, const char *like_sql,
                       const char *count_sql);

/* bl_account_deleted hook: the user's memberships go (communities_membership.c). */
int community_account_deleted(request_rec *r, ap_dbd_t *db, const char *user_id);

#endif
