/* Making untrusted text safe to write into log lines. */
#ifndef BL_ESCAPE_H
#define BL_ESCAPE_H

#include <stddef.h>
#include <apr_pools.h>

/* Copies s with control characters, DEL, backslash and quote written as
 * \xHH (so "\r\n" in an email cannot forge a log line), cut at max bytes
 * of input with "..." appended when longer. */
const char *bl_escape_log(apr_pool_t *p, const char *s, size_t max);

#endif
