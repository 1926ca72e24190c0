/* What every part of mod_beautiful_community shares: the viewer's standing
 * in a community (one prepared statement), query and body validation, and
 * the outbox and audit calls in the caller's transaction. */
#include "community_private.h"
#include "json.h"
#include "validate.h"

#include <http_log.h>
#include <apr_strings.h>
#include <util_script.h>

#include <ctype.h>
#include <string.h>

APLOG_USE_MODULE(beautiful_community);

#define SQL_ACCESS "community_access"
#define SQL_POST_ACCESS "community_post_access"
#define SQL_STAFF "community_staff"
#define SLUG_MAX 100

static const bl_statement common_statements[] = {
    /* id, slug, viewer, viewer role: one row when the community exists. */
    {SQL_ACCESS,
     "WITH " CM_ARGS_COMMUNITY ", " CM_ACCESS " "
     "SELECT acc.id, acc.name, acc.privacy, acc.my_role, acc.is_admin, acc.can_see, "
     "acc.can_read, acc.can_moderate, "
     "EXISTS (SELECT 1 FROM community_bans b WHERE b.community_id = acc.id "
     " AND b.user_id = a.viewer), "
     "EXISTS (SELECT 1 FROM community_invitations i WHERE i.community_id = acc.id "
     " AND i.user_id = a.viewer), "
     "EXISTS (SELECT 1 FROM community_join_requests j WHERE j.community_id = acc.id "
     " AND j.user_id = a.viewer) "
     "FROM acc, a"},
    /* post, viewer, viewer role: one row when the viewer may read it. */
    {SQL_POST_ACCESS,
     "SELECT p.id, c.id, c.name, p.author_id, m.role, a.vrole = 'admin', "
     "(m.role IN ('moderator', 'owner') OR a.vrole = 'admin') AS can_mod, p.is_anonymous, "
     "p.hidden_at IS NOT NULL "
     "FROM (SELECT %s::uuid AS pid, %s::uuid AS viewer, %s::text AS vrole) a "
     "JOIN community_posts p ON p.id = a.pid AND p.deleted_at IS NULL "
     "JOIN communities c ON c.id = p.community_id "
     "LEFT JOIN community_members m ON m.community_id = c.id AND m.user_id = a.viewer "
     "WHERE " CM_READS("c", "m") " "
     "AND (p.hidden_at IS NULL OR m.role IN ('moderator', 'owner') OR a.vrole = 'admin')"},
    {SQL_STAFF,
     "SELECT user_id FROM community_members WHERE community_id = %s::uuid "
     "AND role IN ('moderator', 'owner') ORDER BY user_id"},
    {NULL, NULL}
};

const community_part community_common_part = {"common", NULL, common_statements};

/* ---------------------------------------------------------------- access */

static int valid_slug(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (!(islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '-'))
            return 0;
    return n > 0 && n <= SLUG_MAX;
}

int community_ref_args(request_rec *r, const char *ref, const char **id, const char **slug)
{
    *id = *slug = NULL;
    if (!ref)
        return -1;
    if (bl_valid_uuid(ref)) {
        *id = ref;
        return 0;
    }
    if (valid_slug(ref)) {
        *slug = ref;
        return 0;
    }
    return -1;
}

int community_lookup(request_rec *r, ap_dbd_t *db, const char *ref, community_access *acc)
{
    const bl_user *user = bl_current_user(r);
    const char *args[4];
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;

    memset(acc, 0, sizeof *acc);
    if (community_ref_args(r, ref, &args[0], &args[1]) != 0)
        return community_not_found(r, "community"), -1;
    args[2] = user ? user->id : NULL;
    args[3] = user ? user->role : NULL;
    if (!(res = bl_db_select(r, db, SQL_ACCESS, 4, args)))
        return -1;
    row = community_first_row(r, db, res);
    if (!row || !community_is_true(bl_db_get(r, db, row, 5)))
        return community_not_found(r, "community"), -1;
    acc->id = bl_db_get(r, db, row, 0);
    acc->name = bl_db_get(r, db, row, 1);
    acc->privacy = bl_db_get(r, db, row, 2);
    acc->role = bl_db_get(r, db, row, 3);
    acc->is_admin = community_is_true(bl_db_get(r, db, row, 4));
    acc->can_read = community_is_true(bl_db_get(r, db, row, 6));
    acc->can_moderate = community_is_true(bl_db_get(r, db, row, 7));
    acc->banned = community_is_true(bl_db_get(r, db, row, 8));
    acc->invited = community_is_true(bl_db_get(r, db, row, 9));
    acc->requested = community_is_true(bl_db_get(r, db, row, 10));
    return 0;
}

int community_post_lookup(request_rec *r, ap_dbd_t *db, const char *id, post_access *pa)
{
    const bl_user *user = bl_current_user(r);
    const char *args[3] = {id, user ? user->id : NULL, user ? user->role : NULL};
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;

    memset(pa, 0, sizeof *pa);
    if (community_valid_id(r, id, "post") != 0)
        return -1;
    if (!(res = bl_db_select(r, db, SQL_POST_ACCESS, 3, args)))
        return -1;
    if (!(row = community_first_row(r, db, res)))
        return community_not_found(r, "post"), -1;
    pa->id = bl_db_get(r, db, row, 0);
    pa->community_id = bl_db_get(r, db, row, 1);
    pa->community_name = bl_db_get(r, db, row, 2);
    pa->author_id = bl_db_get(r, db, row, 3);
    pa->role = bl_db_get(r, db, row, 4);
    pa->is_admin = community_is_true(bl_db_get(r, db, row, 5));
    pa->can_moderate = community_is_true(bl_db_get(r, db, row, 6));
    pa->anonymous = community_is_true(bl_db_get(r, db, row, 7));
    pa->hidden = community_is_true(bl_db_get(r, db, row, 8));
    return 0;
}

int community_refuse_read(request_rec *r, int banned)
{
    return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                         banned ? "you are banned from this community"
                                : "only members read this community", NULL);
}

int community_require_read(request_rec *r, const community_access *acc)
{
    if (acc->can_read)
        return 0;
    return community_refuse_read(r, acc->banned), -1;
}

int community_require_member(request_rec *r, const community_access *acc)
{
    if (acc->role)
        return 0;
    if (!acc->can_read)
        return community_require_read(r, acc);
    return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                         "join the community first", NULL), -1;
}

int community_require_moderator(request_rec *r, const community_access *acc)
{
    if (acc->can_moderate)
        return 0;
    return bl_send_error(r, HTTP_FORBIDDEN, BL_ERR_FORBIDDEN,
                         "only the community's moderators may do this", NULL), -1;
}

/* ---------------------------------------------------------------- helpers */

const bl_user *community_user(request_rec *r)
{
    return bl_require_user(r);
}

int community_refuse_unknown(request_rec *r, json_object *obj, const char *const *allowed)
{
    const char *bad = bl_json_unknown_field(obj, allowed);

    if (!bad)
        return 0;
    return bl_send_validation_error(r, bad, apr_pstrcat(r->pool, "unknown field: ", bad,
                                                        NULL)), -1;
}

int community_query(request_rec *r, const char *const *allowed, apr_table_t **q)
{
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    int i, j;

    *q = NULL;
    if (r->args && strstr(r->args, "%00"))
        return bl_send_validation_error(r, "query", "parameters must not contain NUL"), -1;
    if (r->args && strchr(r->args, '+')) {
        /* A form-encoded '+' is a space; ap_args_to_table leaves it. */
        char *args = apr_pstrdup(r->pool, r->args), *saved = r->args, *c;
        for (c = args; *c; c++)
            if (*c == '+')
                *c = ' ';
        r->args = args;
        ap_args_to_table(r, q);
        r->args = saved;
    } else
        ap_args_to_table(r, q);
    if (!*q)
        *q = apr_table_make(r->pool, 1);
    arr = apr_table_elts(*q);
    e = (const apr_table_entry_t *)arr->elts;
    for (i = 0; i < arr->nelts; i++) {
        if (!bl_valid_enum(e[i].key, allowed))
            return bl_send_validation_error(r, e[i].key,
                                            apr_pstrcat(r->pool, "unknown parameter: ",
                                                        e[i].key, NULL)), -1;
        for (j = 0; j < i; j++)
            if (strcmp(e[i].key, e[j].key) == 0)
                return bl_send_validation_error(r, e[i].key,
                                                apr_pstrcat(r->pool, "parameter given twice: ",
                                                            e[i].key, NULL)), -1;
        if (!bl_valid_utf8(e[i].val, strlen(e[i].val)))
            return bl_send_validation_error(r, e[i].key,
                                            apr_pstrcat(r->pool, e[i].key,
                                                        " must be UTF-8", NULL)), -1;
    }
    return 0;
}

int community_query_bool(request_rec *r, apr_table_t *q, const char *name, const char **out)
{
    const char *v = apr_table_get(q, name);

    *out = NULL;
    if (!v)
        return 0;
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
        *out = v;
        return 0;
    }
    return bl_send_validation_error(r, name, apr_pstrcat(r->pool, name,
                                                         " must be true or false", NULL)), -1;
}

int community_string_field(request_rec *r, json_object *body, const char *field, int required,
                           size_t min_chars, size_t max_chars, const char **out, int *present)
{
    json_object *v = NULL;
    const char *err = NULL, *s = NULL;
    int has = json_object_object_get_ex(body, field, &v);

    *out = NULL;
    if (present)
        *present = has;
    if (has && v == NULL && !required)
        return 0;    /* null clears */
    switch (bl_json_get_string(r->pool, body, field, required, 0, max_chars, &s, &err)) {
    case BL_FIELD_ABSENT:
        return 0;
    case BL_FIELD_OK:
        break;
    default:
        return bl_send_validation_error(r, field, err), -1;
    }
    /* Blank text counts as empty: the database checks the trimmed length. */
    {
        const char *b = s, *e = s + strlen(s);
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (bl_utf8_chars(b, (size_t)(e - b)) < min_chars)
            return bl_send_validation_error(
                       r, field, min_chars <= 1
                                     ? apr_pstrcat(r->pool, field, " must not be empty", NULL)
                                     : apr_psprintf(r->pool, "%s must be at least %lu characters",
                                                    field, (unsigned long)min_chars)), -1;
    }
    *out = s;
    return 0;
}

apr_dbd_row_t *community_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res)
{
    apr_dbd_row_t *row = NULL;

    if (!res || apr_dbd_get_row(db->driver, r->pool, res, &row, -1) != 0)
        return NULL;
    return row;
}

int community_is_true(const char *v)
{
    return v && strcmp(v, "t") == 0;
}

int community_not_found(request_rec *r, const char *what)
{
    return bl_send_error(r, HTTP_NOT_FOUND, BL_ERR_NOT_FOUND,
                         apr_pstrcat(r->pool, "no such ", what, NULL), NULL);
}

int community_valid_id(request_rec *r, const char *id, const char *what)
{
    if (id && bl_valid_uuid(id))
        return 0;
    return community_not_found(r, what), -1;
}

int community_notify(request_rec *r, ap_dbd_t *db, const char *user_id, const char *type,
                     const char *title, const char *body, const char *data_json)
{
    return bl_outbox_add(r, db, user_id, "in_app", type, title, body, data_json);
}

int community_notify_staff(request_rec *r, ap_dbd_t *db, const char *cid, int by_email,
                           const char *type, const char *title, const char *body,
                           const char *data)
{
    const char *args[1] = {cid}, *uid;
    apr_dbd_results_t *res = bl_db_select(r, db, SQL_STAFF, 1, args);
    apr_dbd_row_t *row = NULL;
    int rv = 0;

    if (!res)
        return -1;
    /* Every row is read: the result is fetched whole, but stay in order. */
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        uid = bl_db_get(r, db, row, 0);
        if (community_notify(r, db, uid, type, title, body, data) != 0
            || (by_email && bl_outbox_add(r, db, uid, "email", type, title, body, data) != 0))
            rv = -1;
    }
    if (rv != 0)
        bl_send_unavailable(r, "database");
    return rv;
}

int community_audit(request_rec *r, ap_dbd_t *db, const char *action, const char *type,
                    const char *id, const char *details_json)
{
    if (bl_audit(r, db, NULL, action, type, id, "success", details_json) != 0)
        return bl_send_unavailable(r, "database"), -1;
    return 0;
}
