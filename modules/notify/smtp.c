/* The SMTP transport: one message per SMTP transaction through libcurl,
 * with connect and total timeouts, optional STARTTLS and AUTH.
 *
 * Errors stored or logged carry curl's error text and the SMTP reply code
 * only: a server's reply text may quote the recipient's address. */
#include "notify_private.h"

#include <apr_strings.h>
#include <curl/curl.h>

typedef struct {
    const char *data;
    size_t len;
    size_t off;
} bl_upload;

static size_t upload_read(char *buf, size_t size, size_t nitems, void *ud)
{
    bl_upload *u = ud;
    size_t room = size * nitems;
    size_t n = u->len - u->off < room ? u->len - u->off : room;

    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

static long curl_tls_mode(bl_smtp_tls tls)
{
    switch (tls) {
    case BL_TLS_REQUIRED: return (long)CURLUSESSL_ALL;
    case BL_TLS_TRY:      return (long)CURLUSESSL_TRY;
    case BL_TLS_OFF:
    default:              return (long)CURLUSESSL_NONE;
    }
}

static void set_options(CURL *c, const bl_mail_conf *conf, struct curl_slist *rcpts,
                        const char *mail_from, bl_upload *u, char *errbuf)
{
    curl_easy_setopt(c, CURLOPT_URL, conf->smtp_url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    /* Signals and threads do not mix: timeouts without SIGALRM. */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)apr_time_as_msec(conf->smtp_connect_timeout));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)apr_time_as_msec(conf->smtp_timeout));
    curl_easy_setopt(c, CURLOPT_USE_SSL, curl_tls_mode(conf->smtp_tls));
    if (conf->smtp_user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, conf->smtp_user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, conf->smtp_password);
    }
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, mail_from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(c, CURLOPT_READDATA, u);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)u->len);
    /* Set so curl never prints to stderr; the text is not used (it may
     * quote the server's reply, and with it the address). */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
}

/* A 5xx reply to the message itself will not change on retry; refused
 * credentials or TLS are configuration problems, worth retrying once fixed. */
static bl_send_status classify(CURLcode rc, long reply)
{
    if (rc == CURLE_OK)
        return BL_SEND_OK;
    if (reply >= 500 && reply < 600 && rc != CURLE_LOGIN_DENIED
        && rc != CURLE_USE_SSL_FAILED)
        return BL_SEND_PERMANENT;
    return BL_SEND_RETRY;
}

bl_send_status bl_smtp_send(apr_pool_t *p, const bl_mail_conf *conf,
                            const char *rcpt, const char *message,
                            const char **error)
{
    bl_upload u = {message, strlen(message), 0};
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *rcpts;
    CURL *c;
    CURLcode rc;
    long reply = 0;

    c = curl_easy_init();
    rcpts = curl_slist_append(NULL, apr_pstrcat(p, "<", rcpt, ">", NULL));
    if (!c || !rcpts) {
        curl_slist_free_all(rcpts);
        curl_easy_cleanup(c);
        *error = "smtp: out of memory";
        return BL_SEND_RETRY;
    }
    set_options(c, conf, rcpts, apr_pstrcat(p, "<", conf->from_addr, ">", NULL), &u, errbuf);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply);
    curl_slist_free_all(rcpts);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        *error = reply ? apr_psprintf(p, "smtp: %s (reply %ld)", curl_easy_strerror(rc), reply)
                       : apr_psprintf(p, "smtp: %s", curl_easy_strerror(rc));
    return classify(rc, reply);
}
