/* The email channel: a claimed notification becomes a message and goes
 * out through the configured transport. */
#include "notify_private.h"

bl_send_status bl_email_deliver(apr_pool_t *p, const bl_mail_conf *conf,
                                const bl_notification *n, const char **error)
{
    const char *message;

    /* The join yields no address for deleted users: nothing to retry. */
    if (!n->email || !*n->email) {
        *error = "recipient has no email address";
        return BL_SEND_PERMANENT;
    }
    message = bl_mail_format(p, conf, n, apr_time_now(), error);
    if (!message)
        return BL_SEND_PERMANENT;
    switch (conf->transport) {
    case BL_MAIL_SMTP:
        return bl_smtp_send(p, conf, n->email, message, error);
    case BL_MAIL_FILE:
    default:
        return bl_mail_sink_write(p, conf->dir, n->id, message, error);
    }
}
