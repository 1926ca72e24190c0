/* storage_map.c — API requests never walk the filesystem.
 *
 * httpd maps every URL to a file before it runs the handler: core's
 * map_to_storage hook stats each segment of DocumentRoot + URI and merges
 * the <Directory> and <Files> sections that match. A request whose
 * <Location> sets a beautiful-* handler is answered from memory and the
 * database, so that walk only costs syscalls and config merges. Like
 * mod_proxy, core answers map_to_storage itself for those requests; the
 * <Location> sections still apply (httpd walks them again after this hook).
 *
 * The handler is known only while the <Location> config is in place, i.e.
 * at translate_name; httpd resets the config to the server's defaults
 * before map_to_storage, so translate_name leaves a note for it. TRACE is
 * left to httpd (its TraceEnable answer is a map_to_storage hook too). */
#include "core_hooks.h"

#include <http_core.h>
#include <ap_expr.h>

#define BL_NOTE_NO_STORAGE "bl-no-storage"

/* The handler SetHandler gives this request, or NULL. */
static const char *configured_handler(request_rec *r)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const char *err = NULL, *handler;

    if (!d || !d->expr_handler)
        return NULL;
    handler = ap_expr_str_exec(r, d->expr_handler, &err);
    return err ? NULL : handler;
}

int bl_storage_translate_name(request_rec *r)
{
    const char *handler;

    if (r->method_number == M_TRACE || r->proxyreq)
        return DECLINED;
    handler = configured_handler(r);
    if (handler && !strncmp(handler, "beautiful-", 10))
        apr_table_setn(r->notes, BL_NOTE_NO_STORAGE, "1");
    return DECLINED;
}

int bl_storage_map_to_storage(request_rec *r)
{
    return apr_table_get(r->notes, BL_NOTE_NO_STORAGE) ? OK : DECLINED;
}
