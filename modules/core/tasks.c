/* tasks.c — periodic background tasks (bl_task_register) on mod_watchdog.
 *
 * Each task gets a singleton watchdog instance of its own: one thread in
 * one child per host runs it, and a slow task (an SMTP relay timing out)
 * never delays another. The rules mod_watchdog imposes live here once:
 * register before its post_config, do nothing at STARTING, and never
 * return anything but APR_SUCCESS from the callback. */
#include "core_private.h"

#include <http_core.h>
#include <http_log.h>
#include <apr_strings.h>
#include <apr_atomic.h>
#include <mod_watchdog.h>

APLOG_USE_MODULE(beautiful_core);

typedef struct {
    server_rec *s;
    bl_task_fn *fn;
    void *data;
} bl_task;

/* A child that exits destroys mod_dbd's connection pool before it joins
 * the watchdog threads (mod_watchdog's child_init, and so its cleanup, comes
 * first): a task still holding a connection then aborts the child in
 * apr_reslist's cleanup. A pre-cleanup of the child pool (run before every
 * cleanup) stops new runs and waits for the running ones to give their
 * connections back. */
static volatile apr_uint32_t tasks_running;
static volatile apr_uint32_t tasks_stopping;

static apr_status_t wait_for_tasks(void *unused)
{
    int i;

    apr_atomic_set32(&tasks_stopping, 1);
    for (i = 0; i < 500 && apr_atomic_read32(&tasks_running) > 0; i++)
        apr_sleep(apr_time_from_msec(10));
    return APR_SUCCESS;
}

void bl_tasks_child_init(apr_pool_t *pchild)
{
    apr_atomic_set32(&tasks_stopping, 0);
    apr_pool_pre_cleanup_register(pchild, NULL, wait_for_tasks);
}

static apr_status_t task_callback(int state, void *data, apr_pool_t *pool)
{
    bl_task *t = data;

    /* STARTING comes as the child takes the singleton, when mod_dbd may
     * still be setting the child up (its child_init runs after the
     * watchdog's); STOPPING as it exits. Only RUNNING does work. */
    if (state == AP_WATCHDOG_STATE_RUNNING) {
        apr_atomic_inc32(&tasks_running);
        if (!apr_atomic_read32(&tasks_stopping))
            t->fn(t->s, t->data, pool);
        apr_atomic_dec32(&tasks_running);
    }
    /* Anything but APR_SUCCESS would stop the callback for good. */
    return APR_SUCCESS;
}

int bl_task_register(apr_pool_t *pconf, server_rec *s, const char *name,
                     apr_interval_time_t interval, bl_task_fn *fn, void *data)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback;
    const char *key;
    void *taken = NULL;
    ap_watchdog_t *wd;
    bl_task *t;
    apr_status_t rv;

    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!get_instance || !register_callback) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "background task %s needs mod_watchdog", name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* The first pass only checks the configuration; pconf is cleared
     * after it, and mod_watchdog sets nothing up in it. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    /* get_instance hands a second caller the same instance: the tasks
     * would then share a thread. */
    key = apr_pstrcat(pconf, "bl_task:", name, NULL);
    apr_pool_userdata_get(&taken, key, pconf);
    if (taken) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "background task %s registered twice", name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_userdata_setn(key, key, NULL, pconf);

    t = apr_palloc(pconf, sizeof(*t));
    t->s = s;
    t->fn = fn;
    t->data = data;
    rv = get_instance(&wd, name, 0, 1, pconf);
    if (rv == APR_SUCCESS)
        rv = register_callback(wd, interval, t, task_callback);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "cannot register background task %s with mod_watchdog", name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}
