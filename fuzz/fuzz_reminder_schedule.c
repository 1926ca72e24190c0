/* Fuzz target: a reminder schedule as a client sends it — an RRULE and a
 * time zone (input: "RULE\nZONE"; no newline: America/New_York) — parsed
 * and, when accepted, expanded as the scheduler and the feed would. */
#include <string.h>
#include <apr_strings.h>

#include "fuzz.h"
#include "schedule.h"

#define STARTS 1796000000   /* 2026-11-30 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = bl_fuzz_input_pool();
    char *text = apr_pstrmemdup(p, (const char *)data, size);
    char *nl = memchr(text, '\n', size);
    const char *tz = "America/New_York", *field = NULL, *err = NULL;
    bl_schedule *sc;
    time_t t = STARTS;
    int i;

    if (nl) {
        *nl = '\0';
        tz = nl + 1;
    }
    sc = bl_schedule_parse(p, text, tz, STARTS, 0, &field, &err);
    for (i = 0; sc && i < 5 && (t = bl_schedule_next(sc, t)) != 0; i++) {
        bl_schedule_local_text(p, sc, t);
        bl_schedule_ical_local(p, sc, t);
    }
    if (sc)
        bl_schedule_vtimezone(p, sc);
    apr_pool_destroy(p);
    return 0;
}
