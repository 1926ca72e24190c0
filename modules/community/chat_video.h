/* Internal interfaces of the chat and video-session files of
 * mod_beautiful_community (chat_*.c, video_*.c). They plug into the module
 * as community parts (routes + statements, community_private.h); their
 * directives, hooks and background task are added by chat_video_cmds and
 * chat_video_register_hooks from the module record. */
#ifndef BL_CHAT_VIDEO_H
#define BL_CHAT_VIDEO_H

#include "community_private.h"
#include "json.h"
#include <apr_time.h>

/* ---------------------------------------------------------------- config */

/* Server-wide settings (the main server's), fixed at start-up. */
typedef struct {
    apr_interval_time_t notify_coalesce;   /* BeautifulChatNotifyCoalesce */
    int remind_minutes;                    /* BeautifulVideoRemindMinutes */
    apr_interval_time_t task_interval;     /* BeautifulVideoTaskInterval */
    const char *calendar_url;              /* BeautifulGoogleCalendarURL (base) */
    const char *credentials_file;          /* BeautifulGoogleCredentials */
    const char *calendar_id;               /* BeautifulGoogleCalendarID */
    const char *link_template;             /* BeautifulVideoLinkTemplate ("{room}") */
    apr_interval_time_t calendar_timeout;  /* BeautifulGoogleTimeout: per call */
    int test_hooks;                        /* BeautifulVideoTestHooks */
} chat_video_conf;

const chat_video_conf *chat_video_config(void);

/* The directives: one handler, told apart by cmd->info. */
enum {
    CV_DIR_COALESCE = 1, CV_DIR_REMIND, CV_DIR_TASK_INTERVAL, CV_DIR_CAL_URL,
    CV_DIR_CREDENTIALS, CV_DIR_CAL_ID, CV_DIR_TEMPLATE, CV_DIR_CAL_TIMEOUT,
    CV_DIR_TEST_HOOKS
};
const char *chat_video_set(cmd_parms *cmd, void *dconf, const char *arg);
/* Spliced into the module's command table. */
#define CHAT_VIDEO_DIRECTIVES \
    AP_INIT_TAKE1("BeautifulChatNotifyCoalesce", chat_video_set, (void *)CV_DIR_COALESCE, \
                  RSRC_CONF, "At most one chat notification per conversation and " \
                  "participant in this time (default 2min)"), \
    AP_INIT_TAKE1("BeautifulVideoRemindMinutes", chat_video_set, (void *)CV_DIR_REMIND, \
                  RSRC_CONF, "Minutes before a video session its participants are " \
                  "reminded (default 15)"), \
    AP_INIT_TAKE1("BeautifulVideoTaskInterval", chat_video_set, \
                  (void *)CV_DIR_TASK_INTERVAL, RSRC_CONF, \
                  "How often the video reminder and calendar retry task runs (default 30s)"), \
    AP_INIT_TAKE1("BeautifulGoogleCalendarURL", chat_video_set, (void *)CV_DIR_CAL_URL, \
                  RSRC_CONF, "Base URL of the Google Calendar API " \
                  "(https://www.googleapis.com)"), \
    AP_INIT_TAKE1("BeautifulGoogleCredentials", chat_video_set, \
                  (void *)CV_DIR_CREDENTIALS, RSRC_CONF, \
                  "Service-account JSON file for Google Calendar"), \
    AP_INIT_TAKE1("BeautifulGoogleCalendarID", chat_video_set, (void *)CV_DIR_CAL_ID, \
                  RSRC_CONF, "The calendar video sessions are written to"), \
    AP_INIT_TAKE1("BeautifulVideoLinkTemplate", chat_video_set, (void *)CV_DIR_TEMPLATE, \
                  RSRC_CONF, "https URL of a video room, {room} replaced by an " \
                  "unguessable name; used without Google Calendar"), \
    AP_INIT_TAKE1("BeautifulGoogleTimeout", chat_video_set, (void *)CV_DIR_CAL_TIMEOUT, \
                  RSRC_CONF, "Total time for one Calendar call (default 10s)"), \
    AP_INIT_FLAG("BeautifulVideoTestHooks", chat_video_set_flag, NULL, RSRC_CONF, \
                 "Test only: the handler beautiful-video-test runs background passes")
const char *chat_video_set_flag(cmd_parms *cmd, void *dconf, int on);
/* Hooks of their own (start-up checks, the background task, the test-only
 * handler); called from the module's register_hooks. */
void chat_video_register_hooks(apr_pool_t *p);

/* ---------------------------------------------------------------- parts */

extern const community_part chat_conversations_part, chat_messages_part,
    chat_events_part, video_sessions_part, video_tasks_part;

/* ---------------------------------------------------------------- SQL */

/* RFC 3339 UTC text with microseconds (chat ordering needs them). */
#define CV_TS(c) "to_char((" c ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
/* A participant as the others see them: never the email. */
#define CV_PERSON(u) \
    "json_build_object('id', " u ".id, 'name', nullif(btrim(concat_ws(' ', " u ".first_name, " \
    u ".last_name)), ''), 'avatar_url', " u ".avatar_url)"
/* Message cursor "<microseconds since the epoch>_<id>" of a chat_messages row. */
#define CV_CURSOR(m) \
    "((extract(epoch FROM " m ".created_at) * 1000000)::bigint::text || '_' || " m ".id)"

/* A timestamp (CV_TS) as a JSON value, or null. */
#define CV_JSON_TS(c) "coalesce('\"' || " CV_TS(c) " || '\"', 'null')"

/* One chat_messages row m as the client sees it, as JSON text; a deleted
 * one is a tombstone without its body. Concatenated rather than built by
 * json_build_object, which in PostgreSQL 15 looks up the output function
 * of each of its arguments on every row: half the backend CPU of a page
 * of 50 messages (bench/chat_README.md). json_string_or_null is
 * migration 0013's. */
#define CV_MESSAGE(m) \
    "('{\"id\":\"' || " m ".id || '\",\"conversation_id\":\"' || " m ".conversation_id " \
    "|| '\",\"sender_id\":' || coalesce('\"' || " m ".sender_id || '\"', 'null') " \
    "|| ',\"body\":' || CASE WHEN " m ".deleted_at IS NULL THEN json_string_or_null(" m ".body)" \
    " ELSE 'null' END " \
    "|| ',\"is_deleted\":' || (" m ".deleted_at IS NOT NULL)::text " \
    "|| ',\"edited_at\":' || " CV_JSON_TS(m ".edited_at") \
    " || ',\"deleted_at\":' || " CV_JSON_TS(m ".deleted_at") \
    " || ',\"created_at\":' || " CV_JSON_TS(m ".created_at") \
    " || ',\"cursor\":\"' || " CV_CURSOR(m) " || '\"}')"

/* ---------------------------------------------------------------- helpers */

/* The signed-in caller, or NULL after answering 401. */
const bl_user *cv_user(request_rec *r);
/* The request's database connection, or NULL after answering 503. */
ap_dbd_t *cv_db(request_rec *r);
/* Answers 404 "no such <what>" unless id is a UUID; returns 0 when it is. */
int cv_path_id(request_rec *r, const char *id, const char *what);
/* The JSON body (415/413/400 answered) with unknown fields refused. */
json_object *cv_read_body(request_rec *r, const char *const *allowed);
/* Answers 400 for a query parameter not in allowed or given twice; *q
 * holds the rest (may be empty). Returns 0 or -1. */
int cv_query(request_rec *r, const char *const *allowed, apr_table_t **q);
/* The first row of a random-access result, or NULL. */
apr_dbd_row_t *cv_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res);
/* One row of text columns from a prepared SELECT: returns 1 with cols[]
 * filled (NULL for SQL NULL), 0 when no row, -1 after answering 503. */
int cv_select_row(request_rec *r, ap_dbd_t *db, const char *label, int nargs,
                  const char *const *args, int ncols, const char **cols);
int cv_is_true(const char *v);
int cv_not_found(request_rec *r, const char *what);
/* The time the edit window and schedules are judged by, as a timestamptz
 * parameter. */
const char *cv_now_param(request_rec *r);
/* A text that holds at least one character other than white space. */
int cv_has_text(const char *s);

/* ---------------------------------------------------------------- chat */

/* Publishes a committed conversation event to the live streams (Redis);
 * best effort: a stream that misses it finds it on its next database
 * read. */
void chat_publish(request_rec *r, const char *conversation_id, const char *seq,
                  const char *type, const char *data_json);
/* The participants with an event stream open on the conversation, as a
 * uuid[] literal ("{}" when none, or when Redis cannot tell). */
const char *chat_connected_users(request_rec *r, const char *conversation_id);

/* ---------------------------------------------------------------- video */

/* Google Calendar, when configured (video_calendar.c). */
int video_calendar_configured(void);

typedef enum {
    VIDEO_CAL_OK = 0,        /* done; meet_link / event_id set when inserted */
    VIDEO_CAL_RETRY,         /* failed in a way worth retrying later */
    VIDEO_CAL_FAILED         /* refused for good (4xx other than 409/429) */
} video_cal_result;

typedef struct {
    const char *session_id;
    const char *title;
    const char *description;      /* may be NULL */
    const char *starts_at;        /* RFC 3339 */
    const char *ends_at;
    const char *event_id;         /* the event's id (from the session id) */
} video_cal_event;

/* events.insert with a Meet conference (requestId = session id); an event
 * that exists already (a retry after an answer was lost) is read back.
 * On VIDEO_CAL_OK *meet_link is the Meet URL (NULL when Google gave none). */
video_cal_result video_calendar_insert(apr_pool_t *p, server_rec *s,
                                       const video_cal_event *ev,
                                       const char **meet_link, const char **why);
video_cal_result video_calendar_patch(apr_pool_t *p, server_rec *s,
                                      const video_cal_event *ev, const char **why);
video_cal_result video_calendar_delete(apr_pool_t *p, server_rec *s,
                                       const char *event_id, const char **why);
/* Reads the credentials file at start-up; NULL or an error text. */
const char *video_calendar_init(apr_pool_t *pconf, server_rec *s);

/* A link from BeautifulVideoLinkTemplate with an unguessable room name. */
const char *video_template_link(apr_pool_t *p);
/* The Calendar event id of a session: its UUID without dashes (base32hex
 * as Calendar wants), so a retried insert cannot make a second event. */
const char *video_event_id(apr_pool_t *p, const char *session_id);

/* Runs a prepared statement outside the client's answer (after it, or in
 * a background task): the affected rows, or -1 after logging the failure
 * (never the arguments). Answers nothing. */
int cv_exec_quiet(apr_pool_t *p, server_rec *s, ap_dbd_t *db, const char *label, int nargs,
                  const char *const *args);
/* A random-access SELECT the same way: the results, or NULL after logging. */
apr_dbd_results_t *cv_select_quiet(apr_pool_t *p, server_rec *s, ap_dbd_t *db,
                                   const char *label, int nargs, const char *const *args);

/* Background work (video_tasks.c), one pass each; return what they did. */
int video_remind_pass(apr_pool_t *p, server_rec *s, ap_dbd_t *db);
int video_calendar_pass(apr_pool_t *p, server_rec *s, ap_dbd_t *db);

#endif
