/* db.c — prepared statements on mod_dbd's pooled connection.
 *
 * mod_dbd is reached through its optional functions, so this module loads
 * whatever the LoadModule order (Debian includes mods-enabled/NAME.load
 * alphabetically: beautiful_core before dbd).
 *
 * Statements: ap_dbd_prepare() stores a query in the server's mod_dbd
 * config; mod_dbd's post_config copies those into its connection groups and
 * every pooled connection prepares its group's statements when it is made
 * (httpd 2.4 modules/database/mod_dbd.c: dbd_post_config, dbd_construct).
 * So registering in a post_config hook that runs before mod_dbd's gets a
 * statement prepared on each connection; core also keeps the list, to
 * prepare it again on a connection whose session libpq had to reset.
 *
 * Errors: apr_dbd does not expose SQLSTATE. With the pgsql driver the
 * connection's error verbosity is set to PQERRORS_SQLSTATE, so the error
 * text is only "ERROR:  23505" — the code to map, and nothing of the data
 * (a duplicate key's DETAIL would quote the email), so it is safe to log. */
#include "core_hooks.h"
#include "escape.h"

#include <http_protocol.h>
#include <http_log.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <dlfcn.h>
#include <poll.h>

APLOG_USE_MODULE(beautiful_core);

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire_fn;
static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare_fn;
static APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open_fn;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close_fn;

/* libpq functions, found in the libpq the pgsql driver already loaded. */
typedef int (*pq_set_verbosity_fn)(void *conn, int verbosity);
typedef int (*pq_backend_pid_fn)(const void *conn);
typedef int (*pq_socket_fn)(const void *conn);
typedef int (*pq_consume_input_fn)(void *conn);
typedef int (*pq_status_fn)(const void *conn);
typedef void (*pq_reset_fn)(void *conn);
#define BL_PQERRORS_SQLSTATE 3
#define BL_PQ_CONNECTION_OK 0
static pq_set_verbosity_fn pq_set_verbosity;
static pq_backend_pid_fn pq_backend_pid;
static pq_socket_fn pq_socket;
static pq_consume_input_fn pq_consume_input;
static pq_status_fn pq_status;
static pq_reset_fn pq_reset;
static int pq_looked_up;

/* Every statement registered, to prepare again on a session libpq reset. */
static apr_array_header_t *registered;

#define BL_BACKEND_PID_KEY "bl-backend-pid"

void bl_db_retrieve_fns(void)
{
    dbd_acquire_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    dbd_prepare_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    dbd_open_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
}

static apr_status_t forget_registered(void *unused)
{
    registered = NULL;
    return APR_SUCCESS;
}

static void remember(server_rec *s, const bl_statement *st)
{
    if (!registered) {
        /* pconf is cleared between the configuration passes */
        registered = apr_array_make(s->process->pconf, 64, sizeof(bl_statement));
        apr_pool_cleanup_register(s->process->pconf, NULL, forget_registered,
                                  apr_pool_cleanup_null);
    }
    *(bl_statement *)apr_array_push(registered) = *st;
}

void bl_db_prepare_all(server_rec *s, const bl_statement *statements)
{
    const bl_statement *st;

    if (!dbd_prepare_fn)
        dbd_prepare_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    if (!dbd_prepare_fn) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "mod_dbd is not loaded: statements cannot be prepared");
        return;
    }
    /* The main server only: mod_dbd pools the connections of every virtual
     * host with the same DBDParams in one group, whose connections prepare
     * the union of the group's statements. Registering in each virtual host
     * as well only earns one "conflicting SQL statements" warning per
     * statement and host. */
    for (st = statements; st->label; st++) {
        dbd_prepare_fn(s, st->sql, st->label);
        remember(s, st);
    }
}

/* Child-wide lookup, done once; without libpq, codes come from the text. */
static void libpq_lookup(void)
{
    void *lib;

    if (pq_looked_up)
        return;
    lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_NOLOAD);
    if (lib) {
        pq_set_verbosity = (pq_set_verbosity_fn)dlsym(lib, "PQsetErrorVerbosity");
        pq_backend_pid = (pq_backend_pid_fn)dlsym(lib, "PQbackendPID");
        pq_socket = (pq_socket_fn)dlsym(lib, "PQsocket");
        pq_consume_input = (pq_consume_input_fn)dlsym(lib, "PQconsumeInput");
        pq_status = (pq_status_fn)dlsym(lib, "PQstatus");
        pq_reset = (pq_reset_fn)dlsym(lib, "PQreset");
    }
    pq_looked_up = 1;
}

/* The prepared statements of the connection's session, counted by the
 * server (-1: the query failed). */
static int prepared_count(ap_dbd_t *db)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *value;
    int n = -1;

    if (apr_dbd_select(db->driver, db->pool, db->handle, &res,
                       "SELECT count(*) FROM pg_prepared_statements", 0) != 0)
        return -1;
    while (apr_dbd_get_row(db->driver, db->pool, res, &row, -1) == 0) {
        if (n < 0 && (value = apr_dbd_get_entry(db->driver, row, 0)))
            n = atoi(value);
    }
    return n;
}

/* mod_dbd checks a pooled connection with apr_dbd_check_conn, which for
 * pgsql quietly PQreset()s a broken one (after a PostgreSQL restart, say).
 * The new session has none of the prepared statements, so each would fail
 * (SQLSTATE 26000) for the connection's whole life. A backend PID other
 * than the one last seen on this connection means such a new session:
 * prepare the registered statements again. Costs no round trip otherwise.
 * The first time a connection is seen its session may already not be the
 * one mod_dbd prepared (reset by mod_dbd's check or by reset_if_closed
 * before any use of ours): the server's own count says, once per pooled
 * connection. */
static void reprepare_if_reset(server_rec *s, ap_dbd_t *db, void *conn, int was_reset)
{
    int pid = pq_backend_pid(conn);
    int *seen = NULL, i, failed = 0;

    apr_pool_userdata_get((void **)&seen, BL_BACKEND_PID_KEY, db->pool);
    if (!seen) {
        seen = apr_palloc(db->pool, sizeof *seen);
        *seen = pid;
        apr_pool_userdata_setn(seen, BL_BACKEND_PID_KEY, NULL, db->pool);
        if (!registered || pid == 0
            || (!was_reset && prepared_count(db) >= registered->nelts))
            return;
    }
    else if (*seen == pid && !was_reset)
        return;
    *seen = pid;
    /* PID 0: no session yet (the server is still down); prepare on the next */
    if (!registered || pid == 0)
        return;
    for (i = 0; i < registered->nelts; i++) {
        const bl_statement *st = &APR_ARRAY_IDX(registered, i, bl_statement);
        apr_dbd_prepared_t *stmt = NULL;

        if (apr_dbd_prepare(db->driver, db->pool, db->handle, st->sql, st->label, &stmt) == 0)
            apr_hash_set(db->prepared, st->label, APR_HASH_KEY_STRING, stmt);
        else
            failed++;
    }
    ap_log_error(APLOG_MARK, failed ? APLOG_ERR : APLOG_NOTICE, 0, s,
                 "database session was re-established: %d statements prepared again, "
                 "%d failed", registered->nelts - failed, failed);
}

/* A pooled connection idle through a PostgreSQL restart still says
 * CONNECTION_OK: libpq learns the server went away only when a query
 * fails, so each such connection would fail one request, whenever it is
 * next used (minutes later at a low load). The server's side closed shows
 * as a hang-up on the socket: reconnect now, before the request's first
 * statement. One poll(2), no round trip otherwise. */
#ifndef POLLRDHUP
#define POLLRDHUP 0
#endif
static int reset_if_closed(server_rec *s, void *conn)
{
    struct pollfd pfd;
    int ok;

    if (!pq_socket || !pq_status || !pq_reset)
        return 0;
    pfd.fd = pq_socket(conn);
    pfd.events = POLLIN | POLLRDHUP;
    pfd.revents = 0;
    if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
        return 0;
    if (!(pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
        /* readable only: a notice for an idle session; keep the buffer clear */
        if (pq_consume_input)
            pq_consume_input(conn);
        return 0;
    }
    pq_reset(conn);
    ok = pq_status(conn) == BL_PQ_CONNECTION_OK;
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                 "pooled database connection closed by the server: %s",
                 ok ? "reconnected" : "reconnect failed");
    return ok;
}

/* What every connection we hand out gets first. */
void bl_db_ready_session(server_rec *s, ap_dbd_t *db)
{
    void *conn;
    int was_reset;

    libpq_lookup();
    if (strcmp(apr_dbd_name(db->driver), "pgsql")
        || !(conn = apr_dbd_native_handle(db->driver, db->handle)))
        return;
    was_reset = reset_if_closed(s, conn);
    if (pq_set_verbosity)
        pq_set_verbosity(conn, BL_PQERRORS_SQLSTATE);
    if (pq_backend_pid)
        reprepare_if_reset(s, db, conn, was_reset);
}

ap_dbd_t *bl_db_quiet(request_rec *r)
{
    ap_dbd_t *db = dbd_acquire_fn ? dbd_acquire_fn(r) : NULL;

    if (!db) {
        bl_metrics_count_db_error();
        return NULL;
    }
    bl_db_ready_session(r->server, db);
    return db;
}

ap_dbd_t *bl_db_open(apr_pool_t *p, server_rec *s)
{
    ap_dbd_t *db = dbd_open_fn ? dbd_open_fn(p, s) : NULL;

    if (!db) {
        bl_metrics_count_db_error();
        return NULL;
    }
    bl_db_ready_session(s, db);
    return db;
}

void bl_db_close(server_rec *s, ap_dbd_t *db)
{
    if (db && dbd_close_fn)
        dbd_close_fn(s, db);
}

ap_dbd_t *bl_db(request_rec *r)
{
    ap_dbd_t *db = bl_db_quiet(r);

    if (!db) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "no database connection");
        bl_send_unavailable(r, "database");
    }
    return db;
}

static apr_dbd_prepared_t *statement(request_rec *r, ap_dbd_t *db, const char *label)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, label, APR_HASH_KEY_STRING);

    if (!st) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "statement %s is not prepared (registered after mod_dbd's "
                      "post_config, or its SQL failed to prepare)", label);
        bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL, "Internal error", NULL);
    }
    return st;
}

/* The five-character SQLSTATE in the driver's error text, or "". */
static const char *sqlstate(request_rec *r, ap_dbd_t *db, int rv)
{
    const char *msg = apr_dbd_error(db->driver, db->handle, rv);
    const char *p;

    if (!msg)
        return "";
    p = strstr(msg, ":  ");
    if (p && strlen(p + 3) >= 5) {
        const char *code = p + 3;
        int i, ok = 1;
        for (i = 0; i < 5; i++)
            ok = ok && (apr_isdigit(code[i]) || apr_isupper(code[i]));
        if (ok && (code[5] == '\0' || apr_isspace(code[5])))
            return apr_pstrmemdup(r->pool, code, 5);
    }
    /* verbosity not set (no libpq found): recognise the messages we map */
    if (strstr(msg, "duplicate key value"))
        return "23505";
    if (strstr(msg, "foreign key constraint"))
        return "23503";
    if (strstr(msg, "check constraint"))
        return "23514";
    if (strstr(msg, "invalid input syntax") || strstr(msg, "invalid input value"))
        return "22P02";
    return "";
}

/* Constraint and input errors: the client's fault, not the database's. */
static int is_client_error(const char *state)
{
    static const char *const codes[] = {"23505", "23503", "23514", "23502", "22P02",
                                        "22001", "22007", "22008", "22003", NULL};
    int i;

    for (i = 0; codes[i]; i++) {
        if (!strcmp(state, codes[i]))
            return 1;
    }
    return 0;
}

static void mark_tx_failed(request_rec *r, ap_dbd_t *db)
{
    bl_req_state *st = bl_core_req_state(r);
    if (st->tx_open && st->tx_db == db)
        st->tx_failed = 1;
}

/* Logs a failure with the statement's label and SQLSTATE only. */
static void log_failure(request_rec *r, const char *label, const char *state)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "statement %s failed (SQLSTATE %s)",
                  label, *state ? state : "unknown");
}

apr_dbd_results_t *bl_db_select(request_rec *r, ap_dbd_t *db, const char *label,
                                int nargs, const char *const *args)
{
    apr_dbd_prepared_t *st = statement(r, db, label);
    apr_dbd_results_t *res = NULL;
    int rv;

    if (!st)
        return NULL;
    rv = apr_dbd_pselect(db->driver, r->pool, db->handle, &res, st, 1, nargs,
                         (const char **)args);
    if (rv != 0) {
        const char *state = sqlstate(r, db, rv);
        mark_tx_failed(r, db);
        log_failure(r, label, state);
        if (!strcmp(state, "22P02")) {
            /* a value the type refused (e.g. a malformed uuid) */
            bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION, "Invalid value", NULL);
            return NULL;
        }
        bl_metrics_count_db_error();
        bl_send_unavailable(r, "database");
        return NULL;
    }
    return res;
}

/* Runs a prepared statement; on failure logs, marks the transaction and
 * sets *state (SQLSTATE or ""). Answers nothing. Rows, or -1. */
static int exec_statement(request_rec *r, ap_dbd_t *db, apr_dbd_prepared_t *st,
                          const char *label, int nargs, const char *const *args,
                          const char **state)
{
    int rows = 0;
    int rv = apr_dbd_pquery(db->driver, r->pool, db->handle, &rows, st, nargs,
                            (const char **)args);

    if (rv == 0)
        return rows;
    *state = sqlstate(r, db, rv);
    mark_tx_failed(r, db);
    log_failure(r, label, *state);
    return -1;
}

int bl_db_exec_quiet(request_rec *r, ap_dbd_t *db, const char *label,
                     int nargs, const char *const *args)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->prepared, label, APR_HASH_KEY_STRING);
    const char *state = "";
    int rows;

    if (!st) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "statement %s is not prepared", label);
        mark_tx_failed(r, db);
        return -1;
    }
    rows = exec_statement(r, db, st, label, nargs, args, &state);
    if (rows < 0 && !is_client_error(state))
        bl_metrics_count_db_error();
    return rows;
}

/* Answers a failed write by its SQLSTATE: 409 for a unique violation, 400
 * for other constraint and input errors, 503 (counted) for the rest. */
static void send_write_error(request_rec *r, const char *state)
{
    if (!strcmp(state, "23505"))
        bl_send_error(r, HTTP_CONFLICT, BL_ERR_CONFLICT, "The resource already exists", NULL);
    else if (is_client_error(state))
        bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION, "Invalid value", NULL);
    else {
        bl_metrics_count_db_error();
        bl_send_unavailable(r, "database");
    }
}

int bl_db_exec(request_rec *r, ap_dbd_t *db, const char *label,
               int nargs, const char *const *args)
{
    apr_dbd_prepared_t *st = statement(r, db, label);
    const char *state = "";
    int rows;

    if (!st)
        return -1;
    rows = exec_statement(r, db, st, label, nargs, args, &state);
    if (rows >= 0)
        return rows;
    send_write_error(r, state);
    return -1;
}

const char *bl_db_get(request_rec *r, ap_dbd_t *db, apr_dbd_row_t *row, int col)
{
    char *value = NULL;

    if (apr_dbd_datum_get(db->driver, row, col, APR_DBD_TYPE_STRING, &value) != APR_SUCCESS)
        return NULL;
    return value;
}

apr_status_t bl_db_value(request_rec *r, ap_dbd_t *db, const char *label,
                         int nargs, const char *const *args, const char **value)
{
    apr_dbd_results_t *res = bl_db_select(r, db, label, nargs, args);
    apr_dbd_row_t *row = NULL;

    *value = NULL;
    if (!res)
        return APR_EGENERAL;
    if (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0)
        *value = bl_db_get(r, db, row, 0);
    return APR_SUCCESS;
}

/* ---------------------------------------------------------------- transactions */

/* Constant statements, not built from input; BEGIN cannot be PREPAREd. */
static int run_plain(request_rec *r, ap_dbd_t *db, const char *sql)
{
    int rows = 0;
    return apr_dbd_query(db->driver, db->handle, &rows, sql);
}

static apr_status_t rollback_left_open(void *data)
{
    request_rec *r = data;
    bl_req_state *st = bl_core_req_state(r);

    if (st->tx_open) {
        run_plain(r, st->tx_db, "ROLLBACK");
        st->tx_open = 0;
    }
    return APR_SUCCESS;
}

/* The client has its answer: from a bl_send_* (a failing bl_db_exec's, or
 * the handler's own) or from httpd. A second envelope would only be
 * appended to the first. */
static int already_answered(request_rec *r)
{
    return bl_core_req_state(r)->answered || r->status != HTTP_OK || r->sent_bodyct;
}

int bl_db_begin(request_rec *r, ap_dbd_t *db)
{
    bl_req_state *st = bl_core_req_state(r);

    if (st->tx_open) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "nested bl_db_begin");
        if (!already_answered(r))
            bl_send_error(r, HTTP_INTERNAL_SERVER_ERROR, BL_ERR_INTERNAL, "Internal error",
                          NULL);
        return -1;
    }
    if (run_plain(r, db, "BEGIN") != 0) {
        log_failure(r, "BEGIN", sqlstate(r, db, -1));
        bl_metrics_count_db_error();
        if (!already_answered(r))
            bl_send_unavailable(r, "database");
        return -1;
    }
    st->tx_open = 1;
    st->tx_failed = 0;
    st->tx_db = db;
    /* registered after ap_dbd_acquire's release: runs before it (LIFO) */
    apr_pool_cleanup_register(r->pool, r, rollback_left_open, apr_pool_cleanup_null);
    return 0;
}

int bl_db_commit(request_rec *r, ap_dbd_t *db)
{
    bl_req_state *st = bl_core_req_state(r);

    if (!st->tx_open)
        return 0;
    if (st->tx_failed) {
        /* COMMIT would only roll back. A quiet statement (audit, outbox)
         * failed without answering: the caller still relies on us to. */
        bl_db_rollback(r, db);
        if (!already_answered(r))
            bl_send_unavailable(r, "database");
        return -1;
    }
    st->tx_open = 0;
    if (run_plain(r, db, "COMMIT") != 0) {
        /* deferred constraints are checked here: the client's fault too */
        const char *state = sqlstate(r, db, -1);
        log_failure(r, "COMMIT", state);
        if (!already_answered(r))
            send_write_error(r, state);
        return -1;
    }
    return 0;
}

void bl_db_rollback(request_rec *r, ap_dbd_t *db)
{
    bl_req_state *st = bl_core_req_state(r);

    if (!st->tx_open)
        return;
    st->tx_open = 0;
    st->tx_failed = 0;
    run_plain(r, db, "ROLLBACK");
}
