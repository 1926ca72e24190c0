/* GET /admin/communities: every community, hidden ones included, with its
 * member, post and open report counts. The shipped conf reaches it only
 * through "Require bl-role admin"; the handler checks the role again. */
#include "community_private.h"
#include "validate.h"

#include <apr_strings.h>

#include <string.h>

#define SQL_ADMIN_LIST "community_admin_list"

static const char *const types[] = {"support_group", "treatment", "caregivers", "survivors",
                                    "research", "general", NULL};
static const char *const privacies[] = {"public", "private", "hidden", NULL};

static const bl_statement statements[] = {
    /* q (name or slug prefix, case-insensitive), type, privacy, limit,
     * offset: newest first. */
    {SQL_ADMIN_LIST,
     "WITH a AS (SELECT lower(%s::text) AS q, %s::community_type AS type, "
     "%s::community_privacy AS privacy), "
     "f AS (SELECT c.* FROM communities c, a "
     "WHERE (a.q IS NULL OR starts_with(lower(c.name), a.q) OR starts_with(c.slug, a.q)) "
     "AND (a.type IS NULL OR c.type = a.type) "
     "AND (a.privacy IS NULL OR c.privacy = a.privacy)) "
     "SELECT (SELECT count(*) FROM f), coalesce((SELECT json_agg(json_build_object("
     "'id', c.id, 'name', c.name, 'slug', c.slug, 'type', c.type, 'privacy', c.privacy, "
     "'cancer_type', c.cancer_type, 'member_count', c.member_count, "
     "'post_count', c.post_count, "
     "'open_report_count', (SELECT count(*) FROM content_reports r "
     " WHERE r.community_id = c.id AND r.resolved_at IS NULL), "
     "'owners', (SELECT coalesce(json_agg(m.user_id ORDER BY m.joined_at), '[]'::json) "
     " FROM community_members m WHERE m.community_id = c.id AND m.role = 'owner'), "
     "'created_at', " CM_TS("c.created_at") ") ORDER BY c.created_at DESC, c.id) "
     "FROM (SELECT * FROM f ORDER BY created_at DESC, id LIMIT %s::int OFFSET %s::int) c), "
     "'[]'::json)"},
    {NULL, NULL}
};

static int admin_communities(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"q", "type", "privacy", "page", "per_page", NULL};
    const bl_user *user = community_user(r);
    apr_table_t *q;
    const char *args[5];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;

    if (!user)
        return OK;
    if (strcmp(user->role, "admin") != 0)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN, "administrators only", NULL);
    if (community_query(r, allowed, &q) != 0 || bl_pagination_args(r, &page, &per_page) != 0)
        return OK;
    args[0] = apr_table_get(q, "q");
    if (args[0] && !bl_valid_length(args[0], 1, 100))
        return bl_send_validation_error(r, "q", "q must be 1 to 100 characters");
    args[1] = apr_table_get(q, "type");
    if (args[1] && !bl_valid_enum(args[1], types))
        return bl_send_validation_error(r, "type", "type must be one of support_group, "
                                        "treatment, caregivers, survivors, research, general");
    args[2] = apr_table_get(q, "privacy");
    if (args[2] && !bl_valid_enum(args[2], privacies))
        return bl_send_validation_error(r, "privacy",
                                        "privacy must be one of public, private, hidden");
    args[3] = apr_itoa(r->pool, per_page);
    args[4] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(db = bl_db(r)) || !(res = bl_db_select(r, db, SQL_ADMIN_LIST, 5, args)))
        return OK;
    if (!(row = community_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 1),
                        bl_pagination_meta(r, page, per_page,
                                           apr_atoi64(bl_db_get(r, db, row, 0))));
}

static const community_route routes[] = {
    {"GET", "/admin/communities", admin_communities},
    {NULL, NULL, NULL}
};

const community_part communities_admin_part = {"admin", routes, statements};
