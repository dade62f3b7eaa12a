/* The dummy card: no hardware, paced by clock_nanosleep(TIMER_ABSTIME) on
 * CLOCK_MONOTONIC.  Its input comes from a capture_source; its output goes
 * nowhere (the engine's tap can record it).  It behaves like a card with one
 * period of buffering each way: input reaches the engine one period after
 * it was captured, output is heard one period after the engine wrote it. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "memlock.h"
#include "capture_source.h"
#include "fault.h"
#include "realtime.h"

struct backend {
    struct backend_config config;
    backend_process_fn process;
    void *ctx;
    struct capture_source *capture;
    float *in, *out;
    pthread_t thread;
    bool thread_started;
    _Atomic bool running;
    _Atomic bool failed;        /* an injected failure ended the thread */
    uint32_t faults_seen;       /* fault->triggered already acted on */
    uint64_t xruns;
    int64_t xrun_late_ns;       /* at the last xrun */
};

static int64_t timespec_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static struct timespec ns_timespec(int64_t ns)
{
    return (struct timespec){ .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
}

/* A stall sleeps in short steps so that stopping the card (the watchdog
 * closing a card that stalled too long) does not wait for it to end; a
 * hang (`heed_stop` false) is a driver that does not notice. */
static void stall(struct backend *b, uint32_t ms, bool heed_stop)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t until = timespec_ns(&ts) + (int64_t)ms * 1000000;
    while ((!heed_stop || atomic_load_explicit(&b->running, memory_order_relaxed)) && timespec_ns(&ts) < until) {
        struct timespec step = { .tv_nsec = 10 * 1000000 };
        nanosleep(&step, NULL);
        clock_gettime(CLOCK_MONOTONIC, &ts);
    }
}

/* Act on a newly triggered fault; false when the card must die now. */
static bool survive_fault(struct backend *b)
{
    struct backend_fault *f = b->config.fault;
    uint32_t triggered = f ? atomic_load_explicit(&f->triggered, memory_order_relaxed) : 0;
    if (triggered == b->faults_seen)
        return true;
    b->faults_seen = triggered;
    if (f->kind == FAULT_STALL || f->kind == FAULT_HANG) {
        stall(b, f->ms, f->kind == FAULT_STALL);
        return true;
    }
    atomic_store(&b->failed, true);
    return false;
}

static void *card_thread(void *arg)
{
    struct backend *b = arg;
    pthread_setname_np(pthread_self(), "sc-card");   /* for top -H, perf and the tests */
    int64_t period_ns = (int64_t)b->config.period * 1000000000 / b->config.rate;
    /* As late as a card with four periods of buffering could wake (at least
     * 10 ms, at most 100 ms) before periods are lost. */
    int64_t slack_ns = 4 * period_ns;
    slack_ns = slack_ns < 10000000 ? 10000000 : slack_ns > 100000000 ? 100000000 : slack_ns;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t next = timespec_ns(&ts);
    /* Frames are counted, not times accumulated, so the clock never drifts. */
    int64_t origin = next;
    uint64_t period_count = 0;
    while (atomic_load_explicit(&b->running, memory_order_relaxed)) {
        ts = ns_timespec(next);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        if (!survive_fault(b))
            break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (timespec_ns(&ts) - next > slack_ns) {
            /* Woke later than a card's buffer would have lasted: an xrun.
             * Skip the lost time instead of racing to catch up.  Later by
             * less, the missed periods are made up (below): a thread woken
             * a little late by a busy machine (or a virtual CPU's stolen
             * time) loses nothing. */
            b->xruns++;
            b->xrun_late_ns = timespec_ns(&ts) - next;
            origin = timespec_ns(&ts);
            period_count = 0;
            next = origin;
        }
        capture_source_fill(b->capture, b->in, b->config.period);
        struct backend_time t = {
            .period_time_ns = next,
            .adc_time_ns = next - period_ns,
            .dac_time_ns = next + period_ns,
            .xruns = b->xruns,
            .xrun_late_ns = b->xrun_late_ns,
        };
        b->process(b->ctx, b->in, b->out, b->config.period, &t);
        capture_source_played(b->capture, b->out, b->config.period);
        period_count++;
        next = origin + (int64_t)(period_count * b->config.period * 1000000000ull / b->config.rate);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (timespec_ns(&ts) > next) {
            /* Behind: make the missed periods up at four times the card's
             * pace, not back to back.  Back to back they took as many
             * periods from every stream's ring at once, before any client
             * could refill it: a 70 ms stall at 1024-frame periods underran
             * a stream with a budget of two periods (reliability.faults). */
            struct timespec gap = ns_timespec(period_ns / 4);
            clock_nanosleep(CLOCK_MONOTONIC, 0, &gap, NULL);
        }
    }
    return NULL;
}

static void dummy_close(struct backend *b)
{
    if (!b)
        return;
    capture_source_close(b->capture);
    free(b->in);
    free(b->out);
    free(b);
}

static int dummy_open(struct backend **out, const struct backend_config *config,
                      backend_process_fn process, void *ctx, char *err, size_t err_len)
{
    struct backend_fault *f = config->fault;
    if (f && f->kind == FAULT_FAIL) {
        int64_t left_ns = atomic_load(&f->unavailable_until_ns) - fault_now_ns();
        if (left_ns > 0) {
            snprintf(err, err_len, "dummy backend: card unavailable for %lld ms more (injected failure)",
                     (long long)(left_ns / 1000000 + 1));
            return -ENODEV;
        }
    }
    if (config->device && strcmp(config->device, "dummy") != 0 && strcmp(config->device, "0") != 0) {
        snprintf(err, err_len, "dummy backend: no device '%s' (it has one: 'dummy', index 0)",
                 config->device);
        return -ENODEV;
    }
    struct backend *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    b->config = *config;
    b->process = process;
    b->ctx = ctx;
    b->faults_seen = f ? atomic_load(&f->triggered) : 0;  /* a fault acts on the card it hits */
    b->in = calloc((size_t)config->period * config->channels, sizeof(float));
    b->out = calloc((size_t)config->period * config->channels, sizeof(float));
    memlock_region(b->in, (size_t)config->period * config->channels * sizeof(float));
    memlock_region(b->out, (size_t)config->period * config->channels * sizeof(float));
    b->capture = capture_source_open(config->capture, config->rate, config->channels,
                                     config->period, err, err_len);
    if (!b->in || !b->out || !b->capture) {
        if (!b->capture && !err[0])
            snprintf(err, err_len, "out of memory");
        dummy_close(b);
        return -EINVAL;
    }
    *out = b;
    return 0;
}

static int dummy_start(struct backend *b)
{
    atomic_store(&b->running, true);
    /* SCHED_FIFO from the thread's first instruction; where the system
     * refuses, a normal thread (card.c reports what it got). */
    bool rt = realtime_create_thread(&b->thread, b->config.rt_priority, card_thread, b);
    if (!rt && pthread_create(&b->thread, NULL, card_thread, b) != 0) {
        atomic_store(&b->running, false);
        return -EAGAIN;
    }
    b->thread_started = true;
    return 0;
}

static void dummy_stop(struct backend *b)
{
    if (!b->thread_started)
        return;
    atomic_store(&b->running, false);
    pthread_join(b->thread, NULL);
    b->thread_started = false;
}

static void dummy_info(struct backend *b, struct backend_info *info)
{
    snprintf(info->device, sizeof(info->device), "dummy");
    info->rate = b->config.rate;
    info->period = b->config.period;
    info->channels = b->config.channels;
    info->input_latency = (double)b->config.period / b->config.rate;
    info->output_latency = info->input_latency;
}

static bool dummy_alive(struct backend *b)
{
    return !atomic_load(&b->failed);  /* a clock does not go away, unless told to */
}

static int dummy_list_devices(struct backend *b, struct backend_device *out, int max)
{
    if (!b)  /* closed by the card watchdog (a clock that stalled): none until it is back */
        return 0;
    if (max > 0) {
        double latency = (double)b->config.period / b->config.rate;
        out[0] = (struct backend_device){
            .name = "dummy",
            .api = "dummy",
            .max_input_channels = (int)b->config.channels,
            .max_output_channels = (int)b->config.channels,
            .default_samplerate = b->config.rate,
            .low_input_latency = latency,
            .low_output_latency = latency,
            .high_input_latency = 4 * latency,
            .high_output_latency = 4 * latency,
            .is_default_input = true,
            .is_default_output = true,
        };
    }
    return 1;
}

const struct backend_ops backend_dummy = {
    .name = "dummy",
    .open = dummy_open,
    .start = dummy_start,
    .stop = dummy_stop,
    .close = dummy_close,
    .info = dummy_info,
    .alive = dummy_alive,
    .list_devices = dummy_list_devices,
};
