/* Internal interfaces between the files of mod_beautiful_reminder.
 * Only the module record is exported from the .so (Makefile.inc). */
#ifndef BL_REMINDER_PRIVATE_H
#define BL_REMINDER_PRIVATE_H

#include "beautiful.h"
#include "schedule.h"

#include <apr_tables.h>

extern module AP_MODULE_DECLARE_DATA beautiful_reminder_module;

/* ---------------------------------------------------------------- config */

typedef struct {
    int enabled;                       /* BeautifulReminderScheduler */
    apr_interval_time_t interval;      /* BeautifulReminderInterval (15 s) */
    apr_interval_time_t catch_up;      /* BeautifulReminderCatchUp (1 h) */
    int batch_size;                    /* BeautifulReminderBatchSize (500) */
    int workers;                       /* BeautifulReminderWorkers (2) */
    int missed_after_min;              /* BeautifulReminderMissedAfter (60 min) */
    int on_time_min;                   /* BeautifulReminderOnTime (60 min) */
} reminder_conf;

const reminder_conf *reminder_config(const server_rec *s);

/* ---------------------------------------------------------------- routes */

typedef int reminder_route_fn(request_rec *r, apr_table_t *params);

reminder_route_fn reminders_list, reminders_create, reminders_get, reminders_update,
    reminders_delete, reminders_complete, reminders_snooze, reminders_skip,
    reminders_logs, reminders_adherence, reminders_upcoming, reminders_calendar_token,
    reminders_calendar_feed, care_circle_list, care_circle_invite, care_circle_accept,
    care_circle_delete;

/* ---------------------------------------------------------------- SQL */

extern const bl_statement reminder_statements[];

/* The first row of a random-access result, or NULL. */
apr_dbd_row_t *reminder_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res);

/* The reminder :id as the caller may act on it: answers 400 for a
 * malformed id, 404 when it is not visible, 403 when need_owner and the
 * caller only sees it through the care circle; returns 0 when allowed. */
int reminder_check_access(request_rec *r, ap_dbd_t *db, const char *id, int need_owner);

/* The schedule of a stored reminder (rrule, timezone, starts, ends as
 * epoch text), or NULL after logging (a stored schedule is valid). */
bl_schedule *reminder_stored_schedule(request_rec *r, const char *rules, const char *tz,
                                      const char *starts, const char *ends);

/* The query string as a table (values unescaped). */
apr_table_t *reminder_query_args(request_rec *r);

/* apr_time_t to seconds and back. */
#define BL_SEC(t) ((time_t)apr_time_sec(t))
const char *reminder_epoch_text(apr_pool_t *p, time_t t);

/* ---------------------------------------------------------------- scheduler */

extern const bl_statement reminder_scheduler_statements[];

/* One pass: fire due occurrences, then nag / mark missed. */
void reminder_scheduler_task(server_rec *s, void *data, apr_pool_t *pool);
/* Shows the scheduler's series on /metrics (at 0) from the child's start. */
void reminder_metrics_init(void);

#endif
