/* Communities themselves: GET and POST /communities, GET, PUT and DELETE
 * /communities/:id (id or slug).
 *
 * Hidden communities are never listed to non-members and answer 404 to
 * them; a private one is listed, and GET /communities/:id gives its
 * listing (name, description, counts) to anyone signed in. */
#include "community_private.h"
#include "json.h"
#include "uuid.h"
#include "validate.h"

#include <apr_strings.h>

#include <string.h>

#define SQL_LIST   "community_list"
#define SQL_INSERT "community_insert"
#define SQL_GET    "community_get"
#define SQL_UPDATE "community_update"
#define SQL_DELETE "community_delete"

#define COMMUNITY_NAME_MIN 2
#define COMMUNITY_NAME_MAX 100
#define DESCRIPTION_MAX 5000
#define CANCER_TYPE_MAX 100
#define QUERY_MAX 100

static const char *const types[] = {"support_group", "treatment", "caregivers", "survivors",
                                    "research", "general", NULL};
static const char *const privacies[] = {"public", "private", "hidden", NULL};

/* The LIKE pattern of a search term: its own %, _ and \ match literally. */
#define LIKE_PATTERN(q) \
    "chr(37) || replace(replace(replace(" q ", '\\', '\\\\'), chr(37), '\\' || chr(37)), " \
    "'_', '\\_') || chr(37)"

/* The owner check of the statements that change a community. */
#define IS_OWNER(cid, viewer) \
    "EXISTS (SELECT 1 FROM community_members m WHERE m.community_id = " cid \
    " AND m.user_id = " viewer " AND m.role = 'owner')"
#define IS_STAFF(cid, viewer) \
    "EXISTS (SELECT 1 FROM community_members m WHERE m.community_id = " cid \
    " AND m.user_id = " viewer " AND m.role IN ('moderator', 'owner'))"

#define SET_FROM_J(col, expr) \
    col " = CASE WHEN p.j ? '" col "' THEN " expr " ELSE c." col " END"

static const bl_statement statements[] = {
    /* q, type, cancer_type, mine, viewer, limit, offset. */
    {SQL_LIST,
     "WITH a AS (SELECT %s::text AS q, %s::community_type AS type, %s::text AS cancer, "
     "coalesce(%s::boolean, false) AS mine, %s::uuid AS viewer), "
     "f AS (SELECT c.*, m.role AS my_role FROM a CROSS JOIN communities c "
     "LEFT JOIN community_members m ON m.community_id = c.id AND m.user_id = a.viewer "
     "WHERE (c.privacy <> 'hidden' OR m.role IS NOT NULL) "
     "AND (NOT a.mine OR m.role IS NOT NULL) "
     "AND (a.type IS NULL OR c.type = a.type) "
     "AND (a.cancer IS NULL OR lower(c.cancer_type) = lower(a.cancer)) "
     "AND (a.q IS NULL OR c.name ILIKE " LIKE_PATTERN("a.q")
     " OR c.description ILIKE " LIKE_PATTERN("a.q") ")) "
     "SELECT (SELECT count(*) FROM f), coalesce((SELECT json_agg("
     CM_COMMUNITY_JSON("p", "p.my_role") " ORDER BY p.member_count DESC, p.created_at DESC, p.id) "
     "FROM (SELECT * FROM f ORDER BY member_count DESC, created_at DESC, id "
     "LIMIT %s::int OFFSET %s::int) p), '[]'::json)"},
    /* id, name, description, type, cancer_type, privacy, creator: the
     * community and its owner in one statement. */
    {SQL_INSERT,
     "WITH a AS (SELECT %s::uuid AS id, btrim(%s) AS name, %s::text AS description, "
     "coalesce(%s::community_type, 'general') AS type, %s::text AS cancer, "
     "coalesce(%s::community_privacy, 'public') AS privacy, %s::uuid AS viewer), "
     "b AS (SELECT coalesce(nullif(btrim(left(btrim(regexp_replace(lower(a.name), "
     "'[^a-z0-9]+', '-', 'g'), '-'), 80), '-'), ''), 'community') AS s FROM a), "
     "c AS (INSERT INTO communities (id, name, slug, description, type, cancer_type, "
     "privacy, is_private, created_by) "
     "SELECT a.id, a.name, CASE WHEN EXISTS (SELECT 1 FROM communities x WHERE x.slug = b.s) "
     "THEN b.s || '-' || substr(md5(a.id::text), 1, 8) ELSE b.s END, a.description, a.type, "
     "a.cancer, a.privacy, a.privacy <> 'public', a.viewer FROM a, b RETURNING id) "
     "INSERT INTO community_members (community_id, user_id, role) "
     "SELECT c.id, a.viewer, 'owner' FROM c, a"},
    /* id, slug, viewer, viewer role. */
    {SQL_GET,
     "WITH " CM_ARGS_COMMUNITY ", " CM_ACCESS " "
     "SELECT " CM_COMMUNITY_JSON("acc", "acc.my_role") " FROM acc WHERE acc.can_see"},
    /* changes (flat JSON), id, viewer, viewer role: moderators edit, only
     * owners (and admins) change privacy. */
    {SQL_UPDATE,
     "UPDATE communities c SET "
     SET_FROM_J("name", "btrim(p.j->>'name')") ", "
     SET_FROM_J("description", "p.j->>'description'") ", "
     SET_FROM_J("type", "(p.j->>'type')::community_type") ", "
     SET_FROM_J("cancer_type", "p.j->>'cancer_type'") ", "
     SET_FROM_J("privacy", "(p.j->>'privacy')::community_privacy") ", "
     "is_private = CASE WHEN p.j ? 'privacy' THEN p.j->>'privacy' <> 'public' "
     "ELSE c.is_private END "
     "FROM (SELECT %s::jsonb AS j, %s::uuid AS id, %s::uuid AS viewer, %s::text AS vrole) p "
     "WHERE c.id = p.id AND (p.vrole = 'admin' OR (" IS_STAFF("c.id", "p.viewer")
     " AND (NOT p.j ? 'privacy' OR " IS_OWNER("c.id", "p.viewer") ")))"},
    /* id, viewer, viewer role. */
    {SQL_DELETE,
     "DELETE FROM communities c "
     "USING (SELECT %s::uuid AS id, %s::uuid AS viewer, %s::text AS vrole) p "
     "WHERE c.id = p.id AND (p.vrole = 'admin' OR " IS_OWNER("c.id", "p.viewer") ")"},
    {NULL, NULL}
};

/* ---------------------------------------------------------------- list */

static int communities_list(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"q", "type", "cancer_type", "mine", "page",
                                          "per_page", NULL};
    const bl_user *user;
    apr_table_t *q;
    const char *args[7], *mine;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ap_dbd_t *db;
    int page, per_page;

    if (!(user = community_user(r)) || community_query(r, allowed, &q) != 0
        || bl_pagination_args(r, &page, &per_page) != 0
        || community_query_bool(r, q, "mine", &mine) != 0)
        return OK;
    args[0] = apr_table_get(q, "q");
    if (args[0] && !bl_valid_length(args[0], 1, QUERY_MAX))
        return bl_send_validation_error(r, "q", "q must be 1 to 100 characters");
    args[1] = apr_table_get(q, "type");
    if (args[1] && !bl_valid_enum(args[1], types))
        return bl_send_validation_error(r, "type", "type must be one of support_group, "
                                        "treatment, caregivers, survivors, research, general");
    args[2] = apr_table_get(q, "cancer_type");
    if (args[2] && !bl_valid_length(args[2], 1, CANCER_TYPE_MAX))
        return bl_send_validation_error(r, "cancer_type",
                                        "cancer_type must be 1 to 100 characters");
    args[3] = mine;
    args[4] = user->id;
    args[5] = apr_itoa(r->pool, per_page);
    args[6] = apr_itoa(r->pool, (page - 1) * per_page);
    if (!(db = bl_db(r)) || !(res = bl_db_select(r, db, SQL_LIST, 7, args)))
        return OK;
    if (!(row = community_first_row(r, db, res)))
        return bl_send_unavailable(r, "database");
    return bl_send_data(r, HTTP_OK, NULL, bl_db_get(r, db, row, 1),
                        bl_pagination_meta(r, page, per_page,
                                           apr_atoi64(bl_db_get(r, db, row, 0))));
}

/* ---------------------------------------------------------------- fields */

/* The validated fields of a create (for_update 0) or update body into the
 * flat object out; absent keys stay absent, null clears (update only, and
 * only the optional texts). Returns 0, or -1 after answering 400. */
static int read_fields(request_rec *r, json_object *body, int for_update, json_object *out)
{
    static const char *const allowed[] = {"name", "description", "type", "cancer_type",
                                          "privacy", NULL};
    static const struct {
        const char *field;
        size_t min, max;
        int required, nullable;
    } texts[] = {
        {"name", COMMUNITY_NAME_MIN, COMMUNITY_NAME_MAX, 1, 0},
        {"description", 1, DESCRIPTION_MAX, 0, 1},
        {"cancer_type", 1, CANCER_TYPE_MAX, 0, 1},
    };
    static const struct {
        const char *field;
        const char *const *values;
    } enums[] = {{"type", types}, {"privacy", privacies}};
    const char *value, *err = NULL;
    json_object *v;
    size_t i;
    int present;

    if (community_refuse_unknown(r, body, allowed) != 0)
        return -1;
    for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (json_object_object_get_ex(body, texts[i].field, &v) && !v && !texts[i].nullable)
            return bl_send_validation_error(r, texts[i].field,
                                            apr_pstrcat(r->pool, texts[i].field,
                                                        " must be a string", NULL)), -1;
        if (community_string_field(r, body, texts[i].field, texts[i].required && !for_update,
                                   texts[i].min, texts[i].max, &value, &present) != 0)
            return -1;
        if (present)
            json_object_object_add(out, texts[i].field,
                                   value ? json_object_new_string(value) : NULL);
    }
    for (i = 0; i < sizeof enums / sizeof enums[0]; i++) {
        switch (bl_json_get_enum(r->pool, body, enums[i].field, BL_OPTIONAL, enums[i].values,
                                 &value, &err)) {
        case BL_FIELD_OK:
            json_object_object_add(out, enums[i].field, json_object_new_string(value));
            break;
        case BL_FIELD_ABSENT:
            if (json_object_object_get_ex(body, enums[i].field, &v))
                return bl_send_validation_error(r, enums[i].field,
                                                apr_pstrcat(r->pool, enums[i].field,
                                                            " must not be null", NULL)), -1;
            break;
        default:
            return bl_send_validation_error(r, enums[i].field, err), -1;
        }
    }
    return 0;
}

static apr_status_t release_json(void *obj)
{
    json_object_put(obj);
    return APR_SUCCESS;
}

static json_object *pool_object(request_rec *r)
{
    json_object *o = json_object_new_object();

    apr_pool_cleanup_register(r->pool, o, release_json, apr_pool_cleanup_null);
    return o;
}

static const char *flat_text(json_object *o, const char *field)
{
    json_object *v = NULL;

    return json_object_object_get_ex(o, field, &v) && v ? json_object_get_string(v) : NULL;
}

/* Answers with the community as the caller now sees it. */
static int send_community(request_rec *r, ap_dbd_t *db, const char *id, int status,
                          const char *message)
{
    const bl_user *user = bl_current_user(r);
    const char *args[4] = {id, NULL, user->id, user->role}, *json = NULL;

    if (bl_db_value(r, db, SQL_GET, 4, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return community_not_found(r, "community");
    return bl_send_data(r, status, message, json, NULL);
}

/* ---------------------------------------------------------------- create */

static int communities_create(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    json_object *body, *f;
    const char *args[7];
    ap_dbd_t *db;

    if (!(user = community_user(r)) || !(body = bl_read_json(r)))
        return OK;
    f = pool_object(r);
    if (read_fields(r, body, 0, f) != 0 || !(db = bl_db(r)))
        return OK;
    if (!(args[0] = bl_uuid_v4(r->pool)))
        return bl_send_unavailable(r, "random number generator");
    args[1] = flat_text(f, "name");
    args[2] = flat_text(f, "description");
    args[3] = flat_text(f, "type");
    args[4] = flat_text(f, "cancer_type");
    args[5] = flat_text(f, "privacy");
    args[6] = user->id;
    if (bl_db_exec(r, db, SQL_INSERT, 7, args) < 0)
        return OK;    /* 409 when the name is taken */
    return send_community(r, db, args[0], HTTP_CREATED, "community created");
}

/* ---------------------------------------------------------------- read */

static int communities_get(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    const char *args[4], *json = NULL;
    ap_dbd_t *db;

    if (!(user = community_user(r)))
        return OK;
    if (community_ref_args(r, apr_table_get(params, "id"), &args[0], &args[1]) != 0)
        return community_not_found(r, "community");
    args[2] = user->id;
    args[3] = user->role;
    if (!(db = bl_db(r)) || bl_db_value(r, db, SQL_GET, 4, args, &json) != APR_SUCCESS)
        return OK;
    if (!json)
        return community_not_found(r, "community");
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}

/* ---------------------------------------------------------------- update */

static int communities_update(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    community_access acc;
    json_object *body, *f;
    const char *args[4];
    ap_dbd_t *db;
    int n;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0
        || community_require_moderator(r, &acc) != 0 || !(body = bl_read_json(r)))
        return OK;
    f = pool_object(r);
    if (read_fields(r, body, 1, f) != 0)
        return OK;
    if (json_object_object_length(f) == 0)
        return bl_send_validation_error(r, "name", "give at least one field to change");
    if (json_object_object_get_ex(f, "privacy", NULL) && !acc.is_admin
        && (!acc.role || strcmp(acc.role, "owner") != 0))
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only an owner changes the privacy", NULL);
    args[0] = bl_json_to_string(r->pool, f);
    args[1] = acc.id;
    args[2] = user->id;
    args[3] = user->role;
    if ((n = bl_db_exec(r, db, SQL_UPDATE, 4, args)) < 0)
        return OK;
    if (n == 0)
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only the community's moderators may do this", NULL);
    return send_community(r, db, acc.id, HTTP_OK, "community updated");
}

/* ---------------------------------------------------------------- delete */

static int communities_delete(request_rec *r, apr_table_t *params)
{
    const bl_user *user;
    community_access acc;
    const char *args[3], *details;
    ap_dbd_t *db;
    int n;

    if (!(user = community_user(r)) || !(db = bl_db(r))
        || community_lookup(r, db, apr_table_get(params, "id"), &acc) != 0)
        return OK;
    if (!acc.is_admin && (!acc.role || strcmp(acc.role, "owner") != 0))
        return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                             "only an owner or an administrator deletes a community", NULL);
    if (bl_db_begin(r, db) != 0)
        return OK;
    details = apr_psprintf(r->pool, "{\"name\":%s,\"as\":%s}", bl_json_quote(r->pool, acc.name),
                           acc.is_admin && (!acc.role || strcmp(acc.role, "owner") != 0)
                               ? "\"admin\"" : "\"owner\"");
    args[0] = acc.id;
    args[1] = user->id;
    args[2] = user->role;
    if (community_audit(r, db, "community.deleted", "community", acc.id, details) != 0
        || (n = bl_db_exec(r, db, SQL_DELETE, 3, args)) < 0) {
        bl_db_rollback(r, db);
        return OK;
    }
    if (n == 0) {
        bl_db_rollback(r, db);
        return community_not_found(r, "community");
    }
    if (bl_db_commit(r, db) != 0)
        return OK;
    return bl_send_no_content(r);
}

static const community_route routes[] = {
    {"GET", "/communities", communities_list},
    {"POST", "/communities", communities_create},
    {"GET", "/communities/:id", communities_get},
    {"PUT", "/communities/:id", communities_update},
    {"DELETE", "/communities/:id", communities_delete},
    {NULL, NULL, NULL}
};

const community_part communities_part = {"communities", routes, statements};
