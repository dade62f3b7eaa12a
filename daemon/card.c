#include "card.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "fault.h"
#include "log.h"
#include "message.h"
#include "realtime.h"
#include "server.h"

#define CARD_CHECK_MS 500   /* how soon a lost or stalled card is noticed */
#define CARD_RETRY_MS 1000  /* how often a lost card is looked for */

/* Test-only (--dummy-fault): one daemon, one card, so one per process. */
static struct backend_fault card_fault;
/* The card's xruns already logged and told to subscribers. */
static uint64_t xruns_reported;

/* The backend calls this from its RT context. */
static void process_trampoline(void *ctx, const float *in, float *out, uint32_t frames,
                               const struct backend_time *time)
{
    struct server *s = ctx;
    if (!atomic_load_explicit(&s->rt_thread_setup, memory_order_acquire)) {
        atomic_store(&s->rt_priority_got, realtime_setup_engine_thread((int)s->opts.rt_priority));
        atomic_store_explicit(&s->rt_thread_setup, true, memory_order_release);
    }
    engine_process(s->engine, in, out, frames, time);
}

static int open_backend(struct server *s, char *err, size_t err_len)
{
    const struct options *o = &s->opts;
    struct backend_config bc = {
        .device = o->device[0] ? o->device : NULL,
        .rate = o->rate,
        .period = o->period,
        .channels = o->channels,
        .capture = o->capture,
        .rt_priority = (int)o->rt_priority,
        .no_connect = o->no_connect,
        .fault = card_fault.kind != FAULT_NONE ? &card_fault : NULL,
    };
    err[0] = '\0';
    if (s->backend_ops->open(&s->backend, &bc, process_trampoline, s, err, err_len) < 0) {
        s->backend = NULL;
        return -1;
    }
    return 0;
}

static int start_backend(struct server *s, char *err, size_t err_len)
{
    engine_set_offline(s->engine, false);  /* before the RT cycle can run */
    atomic_store(&s->rt_thread_setup, false);
    if (s->backend_ops->start(s->backend) < 0) {
        engine_set_offline(s->engine, true);
        snprintf(err, err_len, "cannot start the %s backend", s->backend_ops->name);
        s->backend_ops->close(s->backend);
        s->backend = NULL;
        return -1;
    }
    s->backend_ops->info(s->backend, &s->card);
    return 0;
}

int card_open(struct server *s, char *err, size_t err_len)
{
    s->backend_ops = backend_find(s->opts.backend);
    if (!s->backend_ops) {
        snprintf(err, err_len, "backend '%s' is not available in this build (available: %s)",
                 s->opts.backend, backend_names());
        return -1;
    }
    if (fault_parse(&card_fault, s->opts.dummy_fault, err, err_len) < 0)  /* checked by options */
        return -1;
    if (open_backend(s, err, err_len) < 0)
        return -1;
    s->backend_ops->info(s->backend, &s->card);
    return 0;
}

/* The engine is created once the card's format is known: start it then. */
int card_start(struct server *s, char *err, size_t err_len)
{
    return start_backend(s, err, err_len);
}

static void tell_clients(struct server *s, const char *state, const char *message)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "state", state);
    cJSON_AddStringToObject(ev, "message", message);
    server_broadcast(s, MSG_EVENT_SERVER, "server.state", ev);
}

/* A card that stopped cycling may not stop when told: a driver stuck in a
 * call, a thread held by a debugger or tracer (its join would wait as long).
 * So a lost card is stopped and closed on a thread of its own, and the loop
 * thread goes on serving clients.  Until that thread is done the old RT
 * thread may still run a cycle: the engine stays its own (commands wait in
 * the queue) and no card is opened again. */
static void *stop_lost_card(void *arg)
{
    struct server *s = arg;
    pthread_setname_np(pthread_self(), "sc-card-stop");
    s->backend_ops->stop(s->card_going);
    s->backend_ops->close(s->card_going);
    atomic_store(&s->card_gone, true);
    uv_async_send(&s->card_stopped);
    return NULL;
}

static void lose_card(struct server *s, const char *how)
{
    snprintf(s->card_message, sizeof(s->card_message),
             "the %s card '%s' %s; streams are kept, retrying every %d ms",
             s->backend_ops->name, s->card.device, how, CARD_RETRY_MS);
    log_error("%s", s->card_message);
    tell_clients(s, "lost", s->card_message);
    s->card_going = s->backend;
    s->backend = NULL;
    s->card_slow_logged = false;
    atomic_store(&s->card_gone, false);
    s->card_stopper_runs = pthread_create(&s->card_stopper, NULL, stop_lost_card, s) == 0;
    if (!s->card_stopper_runs)
        stop_lost_card(s);  /* no thread to spare: here, then */
    uv_timer_set_repeat(&s->card_timer, CARD_RETRY_MS);
}

/* Whether no thread of a lost card runs any more: then the engine is the
 * loop thread's, which applies commands itself while the card is away, and
 * a stop has nothing to drain into. */
static bool lost_card_stopped(struct server *s)
{
    if (!s->card_going)
        return true;
    if (!atomic_load(&s->card_gone)) {
        if (!s->card_slow_logged)
            log_warn("the %s card's thread has not stopped yet (stuck in its driver, or held by a debugger): "
                     "stream commands wait for it; clients are served meanwhile",
                     s->backend_ops->name);
        s->card_slow_logged = true;
        return false;
    }
    if (s->card_stopper_runs)
        pthread_join(s->card_stopper, NULL);
    s->card_stopper_runs = false;
    if (s->card_slow_logged)
        log_info("the lost %s card's thread has stopped", s->backend_ops->name);
    s->card_going = NULL;
    engine_set_offline(s->engine, true);
    engine_run_commands_offline(s->engine);  /* its notes reach the loop by uv_async */
    engine_count_card_fault(s->engine);      /* the streams hear of it as an xrun */
    return true;
}

static void find_card_again(struct server *s)
{
    char err[256];
    uint32_t rate = s->card.rate, channels = s->card.channels;
    if (open_backend(s, err, sizeof(err)) < 0) {
        log_debug("card still away: %s", err);
        return;
    }
    struct backend_info info;
    s->backend_ops->info(s->backend, &info);
    if (info.rate != rate || info.channels != channels) {
        /* The streams' rings run at the old rate and layout. */
        log_warn("card came back at %u Hz, %u channels (was %u Hz, %u): waiting for the old format",
                 info.rate, info.channels, rate, channels);
        s->backend_ops->close(s->backend);
        s->backend = NULL;
        return;
    }
    if (start_backend(s, err, sizeof(err)) < 0) {
        log_debug("card back but not startable: %s", err);
        return;
    }
    snprintf(s->card_message, sizeof(s->card_message), "the %s card '%s' is back",
             s->backend_ops->name, s->card.device);
    s->card_progress_ns = server_now_ns();
    log_info("%s", s->card_message);
    tell_clients(s, "running", s->card_message);
    uv_timer_set_repeat(&s->card_timer, CARD_CHECK_MS);
}

/* A backend may not notice its card is gone (PortAudio over an ALSA device
 * whose other end stopped just waits): a card whose cycles stopped for a
 * whole check interval counts as lost too. */
static bool stalled(struct server *s)
{
    struct engine_stats es;
    engine_get_stats(s->engine, &es);
    int64_t now = server_now_ns();
    if (es.cycles != s->card_cycles_seen) {
        s->card_cycles_seen = es.cycles;
        s->card_progress_ns = now;
        return false;
    }
    /* A second, or four periods when they are longer (4096 frames at 8 kHz). */
    int64_t period_ns = (int64_t)s->card.period * 1000000000 / (s->card.rate ? s->card.rate : 1);
    int64_t limit = 4 * period_ns > 1000000000 ? 4 * period_ns : 1000000000;
    return now - s->card_progress_ns > limit;
}

/* What the RT thread got, once it has run: one warning line per daemon
 * when realtime scheduling was asked for and refused. */
static void check_realtime(struct server *s)
{
    if (s->rt_checked || s->opts.rt_priority == 0 || !atomic_load(&s->rt_thread_setup))
        return;
    s->rt_checked = true;
    if (atomic_load(&s->rt_priority_got) == 0)
        log_warn("realtime priority %u not granted (RLIMIT_RTPRIO or CAP_SYS_NICE needed); "
                 "the card thread runs at normal priority",
                 s->opts.rt_priority);
}

/* Xruns are counted in the RT cycle; here, off it, they are logged and told
 * to subscribers (at most one line per check). */
static void report_xruns(struct server *s)
{
    struct engine_stats es;
    engine_get_stats(s->engine, &es);
    if (es.xruns == xruns_reported)
        return;
    /* How late, where the backend knows: a stall of the machine is tens of
     * milliseconds, one of ours (a lock, a fault) may be anything. */
    char late[64] = "";
    if (es.xrun_late_ns > 0)
        snprintf(late, sizeof(late), " (at the last, its thread woke %.1f ms late)", es.xrun_late_ns / 1e6);
    log_warn("the %s card had %llu xrun%s (%llu in all): periods were lost%s",
             s->backend_ops->name, (unsigned long long)(es.xruns - xruns_reported),
             es.xruns - xruns_reported == 1 ? "" : "s", (unsigned long long)es.xruns, late);
    xruns_reported = es.xruns;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "xruns", (double)es.xruns);
    server_broadcast(s, MSG_EVENT_SERVER, "server.xrun", ev);
}

static void on_card_timer(uv_timer_t *timer)
{
    struct server *s = timer->data;
    if (s->stopping)
        return;
    check_realtime(s);
    report_xruns(s);
    if (!s->backend) {
        if (lost_card_stopped(s))  /* else it is still stopping */
            find_card_again(s);
    } else if (!s->backend_ops->alive(s->backend))
        lose_card(s, "went away");
    else if (stalled(s))
        lose_card(s, "stopped running its cycle");
}

static void on_card_stopped(uv_async_t *async)
{
    lost_card_stopped(async->data);
}

void card_watch(struct server *s)
{
    fault_arm(&card_fault, &s->loop);
    s->card_progress_ns = server_now_ns();
    uv_timer_init(&s->loop, &s->card_timer);
    s->card_timer.data = s;
    uv_timer_start(&s->card_timer, on_card_timer, CARD_CHECK_MS, CARD_CHECK_MS);
    uv_async_init(&s->loop, &s->card_stopped, on_card_stopped);
    s->card_stopped.data = s;
}

void card_unwatch(struct server *s)
{
    uv_close((uv_handle_t *)&s->card_timer, NULL);
    uv_close((uv_handle_t *)&s->card_stopped, NULL);
}

void card_close(struct server *s)
{
    fault_disarm();
    if (s->card_stopper_runs)
        pthread_join(s->card_stopper, NULL);  /* at exit there is nobody else to serve */
    s->card_stopper_runs = false;
    s->card_going = NULL;
    if (!s->backend)
        return;
    s->backend_ops->stop(s->backend);
    s->backend_ops->close(s->backend);
    s->backend = NULL;
}

bool card_stopping(struct server *s)
{
    return s->card_going != NULL;
}

bool card_running(struct server *s)
{
    return s->backend != NULL;
}

const char *card_state(struct server *s)
{
    return s->backend ? "running" : "lost";
}

int card_submit(struct server *s, const struct engine_cmd *cmd, bool reserved)
{
    int rc = engine_submit(s->engine, cmd, reserved);
    if (rc == 0 && !card_running(s) && !card_stopping(s))
        engine_run_commands_offline(s->engine);  /* its notes reach the loop by uv_async */
    return rc;
}
