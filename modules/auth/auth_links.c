/* Single-use emailed links (email verification, password reset): making
 * one and taking one. Both kinds share a table shape: id, user_id,
 * token_hash, expires_at, used_at; a newer link retires the older ones. */
#include "auth_private.h"
#include "hmac.h"

#include <apr_strings.h>

#include <string.h>

const char *auth_new_link(request_rec *r, ap_dbd_t *db, const char *user_id,
                          const char *retire_label, const char *insert_label,
                          int ttl, const char *page)
{
    const char *base = bl_public_base_url(r);
    const char *retire[1] = {user_id}, *insert[3];
    size_t blen = base ? strlen(base) : 0;
    auth_token t;

    if (auth_new_token(r, &t) != 0)
        return NULL;
    insert[0] = user_id;
    insert[1] = t.hash;
    insert[2] = apr_itoa(r->pool, ttl);
    if (bl_db_exec(r, db, retire_label, 1, retire) < 0
        || bl_db_exec(r, db, insert_label, 3, insert) < 0)
        return NULL;
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    /* The token in the fragment, which browsers never send: it stays out
     * of Referer headers and the site's access logs. */
    return apr_pstrcat(r->pool, apr_pstrmemdup(r->pool, base ? base : "", blen),
                       page, "#token=", t.token, NULL);
}

apr_dbd_row_t *auth_take_link(request_rec *r, ap_dbd_t *db, const char *lookup_label,
                              const char *use_label, const char *token, const char *what,
                              int active_col)
{
    const char *args[1] = {bl_sha256_hex(r->pool, token, strlen(token))};
    apr_dbd_results_t *res = bl_db_select(r, db, lookup_label, 1, args);
    apr_dbd_row_t *row;

    if (!res)
        return NULL;
    row = auth_first_row(r, db, res);
    /* An inactive account's link answers as an unknown one: nothing tells
     * the holder the account exists. */
    if (!row || (active_col >= 0 && strcmp(bl_db_get(r, db, row, active_col), "t") != 0))
        return bl_send_error(r, HTTP_BAD_REQUEST, "INVALID_TOKEN",
                             apr_pstrcat(r->pool, "this ", what, " is not valid", NULL),
                             NULL), NULL;
    if (strcmp(bl_db_get(r, db, row, 2), "t") == 0)
        return bl_send_error(r, HTTP_BAD_REQUEST, "TOKEN_USED",
                             apr_pstrcat(r->pool, "this ", what, " has already been used",
                                         NULL), NULL), NULL;
    if (strcmp(bl_db_get(r, db, row, 3), "t") == 0)
        return bl_send_error(r, HTTP_BAD_REQUEST, "TOKEN_EXPIRED",
                             apr_pstrcat(r->pool, "this ", what,
                                         " has expired: ask for a new one", NULL), NULL), NULL;
    args[0] = bl_db_get(r, db, row, 0);
    if (bl_db_exec(r, db, use_label, 1, args) < 0)
        return NULL;
    return row;
}
