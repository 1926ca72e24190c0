/* Internal interfaces between the files of mod_beautiful_notify. */
#ifndef BL_NOTIFY_PRIVATE_H
#define BL_NOTIFY_PRIVATE_H

#include <httpd.h>
#include <http_config.h>
#include <apr_dbd.h>
#include <mod_dbd.h>

#include "beautiful.h"

extern module AP_MODULE_DECLARE_DATA beautiful_notify_module;

/* ---------------------------------------------------------------- config */

typedef enum { BL_MAIL_FILE = 0, BL_MAIL_SMTP } bl_mail_transport;
typedef enum { BL_TLS_OFF = 0, BL_TLS_TRY, BL_TLS_REQUIRED } bl_smtp_tls;

/* Email settings (BeautifulMail*, BeautifulSMTP*). */
typedef struct {
    bl_mail_transport transport;
    const char *from;                 /* From header value, checked at config time */
    const char *from_addr;            /* its addr-spec: envelope sender */
    const char *from_domain;          /* right of '@': Message-ID domain */
    const char *dir;                  /* file transport: the sink directory */
    const char *smtp_url;             /* smtp://host:port or smtps://host:port */
    bl_smtp_tls smtp_tls;
    const char *smtp_user;            /* from BeautifulSMTPCredentialsFile */
    const char *smtp_password;
    apr_interval_time_t smtp_connect_timeout;
    apr_interval_time_t smtp_timeout; /* whole transaction of one message */
} bl_mail_conf;

/* SMS: Twilio's Messages API when url is set, else the file sink. */
typedef struct {
    const char *dir;                  /* BeautifulSMSDir */
    const char *url;                  /* BeautifulTwilioURL (base) */
    const char *account_sid;          /* BeautifulTwilioAccountSID */
    const char *auth_token;           /* BeautifulTwilioAuthToken */
    const char *from;                 /* BeautifulTwilioFrom */
} bl_sms_conf;

/* Push: FCM HTTP v1 when url is set, else the file sink. */
typedef struct {
    const char *dir;                  /* BeautifulPushDir */
    const char *url;                  /* BeautifulFCMURL (base) */
    bl_google_credentials *credentials; /* BeautifulFCMCredentials */
} bl_push_conf;

/* Server-wide delivery settings (main server only; GLOBAL_ONLY directives). */
typedef struct {
    int enabled;                      /* BeautifulNotifyDelivery */
    apr_interval_time_t interval;     /* BeautifulNotifyInterval */
    int batch_size;                   /* BeautifulNotifyBatchSize */
    int max_attempts;                 /* BeautifulNotifyMaxAttempts */
    apr_interval_time_t backoff_base; /* BeautifulNotifyBackoff base max */
    apr_interval_time_t backoff_max;
    apr_interval_time_t lease;        /* BeautifulNotifyLease */
    bl_mail_conf mail;
    bl_sms_conf sms;
    bl_push_conf push;
} bl_notify_conf;

bl_notify_conf *bl_notify_server_conf(const server_rec *s);

/* ---------------------------------------------------------------- delivery */

/* A claimed notification, as the claim statement returns it. */
typedef struct {
    const char *id;
    const char *channel;   /* email | sms | push */
    const char *user_id;
    const char *email;     /* NULL: no address, or the user is gone */
    const char *phone;     /* from the preferences; NULL: none */
    const char *type;
    const char *title;
    const char *body;
    int attempts;          /* including the current one */
} bl_notification;

/* What a channel made of one delivery attempt. */
typedef enum {
    BL_SEND_OK = 0,
    BL_SEND_RETRY,         /* transient: try again after a backoff */
    BL_SEND_PERMANENT,     /* will never work: mark failed now */
    BL_SEND_SKIPPED        /* nowhere to send it (no phone, no device) */
} bl_send_status;

/* The statements the worker uses, registered with mod_dbd at start-up. */
extern const bl_statement bl_notify_statements[];

/* One pass of the worker: reclaim expired leases (now and then), claim a
 * apply the preferences (skip, defer), deliver in-app rows and publish them,
 * claim due email, sms and push batches, deliver each and record the outcome.
 * Never fails: errors are logged and the rows stay retryable. */
typedef struct bl_notify_worker bl_notify_worker;
bl_notify_worker *bl_notify_worker_create(apr_pool_t *p, server_rec *s);
void bl_notify_worker_run(bl_notify_worker *w, apr_pool_t *ptemp);

/* ---------------------------------------------------------------- email */

/* Delivers n by email with the configured transport. On failure *error is
 * a short reason without personal data (it is stored in last_error). */
bl_send_status bl_email_deliver(apr_pool_t *p, const bl_mail_conf *conf,
                                const bl_notification *n, const char **error);

/* The RFC 5322 message for n (CRLF line ends): Date, From, To, Subject,
 * Message-ID, MIME headers and the body. CR/LF in the title are folded into
 * spaces; non-ASCII titles become RFC 2047 encoded words. Returns NULL with
 * *error set when n's address is not a plain, valid address. */
const char *bl_mail_format(apr_pool_t *p, const bl_mail_conf *conf,
                           const bl_notification *n, apr_time_t now,
                           const char **error);

/* Splits a From value ("Name <a@b.example>" or "a@b.example") into its
 * address and domain; returns an error text or NULL. */
const char *bl_mail_parse_from(apr_pool_t *p, const char *from,
                               const char **addr, const char **domain);

/* File transport: writes message to "<id>.eml" in dir atomically
 * (temporary file, fsync, rename), mode 0640. */
bl_send_status bl_mail_sink_write(apr_pool_t *p, const char *dir, const char *id,
                                  const char *message, const char **error);

/* SMTP transport (libcurl): one transaction to conf->smtp_url. */
bl_send_status bl_smtp_send(apr_pool_t *p, const bl_mail_conf *conf,
                            const char *rcpt, const char *message,
                            const char **error);

/* ---------------------------------------------------------------- sms, push */

/* Sends n as an SMS to n->phone. On success *provider_id is Twilio's sid
 * (NULL for the file sink). *error never holds the number or the text. */
bl_send_status bl_sms_deliver(apr_pool_t *p, const bl_sms_conf *conf,
                              const bl_notification *n, const char **provider_id,
                              const char **error);

/* A registered device of the recipient. */
typedef struct {
    const char *id;
    const char *token;
    int unregistered;      /* set by bl_push_deliver: FCM no longer knows it */
} bl_push_device;

/* Sends n to each device (one FCM message each). Sent when one device took
 * it (*provider_id: that message's name); devices FCM called UNREGISTERED
 * are flagged for removal. */
bl_send_status bl_push_deliver(apr_pool_t *p, server_rec *s, const bl_push_conf *conf,
                               const bl_notification *n, apr_array_header_t *devices,
                               const char **provider_id, const char **error);

/* Writes content to "<id><suffix>" in dir atomically (the file sinks). */
bl_send_status bl_sink_write(apr_pool_t *p, const char *dir, const char *id,
                             const char *suffix, const char *content, const char **error);

/* ---------------------------------------------------------------- routes */

#define BL_NOTIFY_HANDLER "beautiful-notify"

/* RFC 3339 UTC text of a timestamptz column (NULL stays NULL). */
#define BL_NOTIFY_TS(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* What the owner sees of an in-app notification (row alias n). */
#define BL_NOTIFY_ITEM_JSON \
    "json_build_object('id', n.id, 'type', n.type, 'title', n.title, 'body', n.body, " \
    "'data', n.data, 'read', n.read_at IS NOT NULL, 'read_at', " BL_NOTIFY_TS("n.read_at") ", " \
    "'created_at', " BL_NOTIFY_TS("n.created_at") ")"

/* A route handler: params holds the ":name" segments. Answers and returns OK. */
typedef int notify_route_fn(request_rec *r, apr_table_t *params);

/* notifications.c: the caller's in-app notifications and their stream. */
extern const bl_statement notify_inbox_statements[];
notify_route_fn notify_list, notify_read, notify_read_all, notify_delete, notify_stream;
/* The stream channel of a user's in-app notifications. */
const char *notify_stream_channel(apr_pool_t *p, const char *user_id);

/* preferences.c */
extern const bl_statement notify_preference_statements[];
notify_route_fn notify_get_preferences, notify_put_preferences;
/* True for a type name other modules use (and security.*). */
int notify_known_type(const char *type);

/* devices.c */
extern const bl_statement notify_device_statements[];
notify_route_fn notify_add_device, notify_delete_device;

/* admin_notifications.c */
extern const bl_statement notify_admin_statements[];
notify_route_fn notify_admin_list, notify_admin_retry;

/* notify_routes.c: shared bits of the handlers. */
int notify_handler(request_rec *r);
void notify_routes_init(apr_pool_t *pconf, server_rec *s);
/* The first row of res, or NULL (results drained either way). */
apr_dbd_row_t *notify_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res);
/* 400 naming the unknown field and -1, or 0 when every field is allowed. */
int notify_refuse_unknown(request_rec *r, json_object *obj, const char *const *allowed,
                          const char *prefix);
/* The route's :id as a uuid, or NULL after answering 404 (a malformed id
 * is no one's). */
const char *notify_param_id(request_rec *r, apr_table_t *params);
/* Refuses a repeated or NUL-bearing query parameter and any name not in
 * allowed: 0, or -1 after answering 400. */
int notify_check_query(request_rec *r, const char *const *allowed);

#endif
