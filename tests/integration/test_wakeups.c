/* A relaxed stream is woken less often than a tight one.
 *
 * On the default card (48000 Hz, period 256) two callback output streams
 * run side by side for a 2 s window: one with latency 0.2 s and blocksize
 * 4096, one at the lowest latency (latency 0, blocksize 0).  The daemon's
 * per-stream `wakeups` counter (stats) must show the first woken about once
 * per block (2 * 48000 / 4096 = 23.4 times) and the second once per period
 * (2 * 48000 / 256 = 375 times); the callbacks run as often, and the
 * callback threads' voluntary context switches follow. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <soundcard/soundcard.h>

#include "attempt.h"
#include "audio_check.h"
#include "harness.h"

#define WINDOW 2.0
#define CARD_RATE 48000.0
#define PERIOD 256.0

struct waker {
    const char *name;
    double latency;
    unsigned long blocksize;
    _Atomic long calls, frames;
    _Atomic long csw;        /* the callback thread's voluntary context switches so far */
    sc_stream *s;
};

static int callback(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                    unsigned status, void *userdata)
{
    (void)input, (void)output, (void)time, (void)status;
    struct waker *w = userdata;
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0)
        atomic_store(&w->csw, ru.ru_nvcsw);
    atomic_fetch_add(&w->frames, (long)frames);
    atomic_fetch_add(&w->calls, 1);
    wakeup_notify();
    return SC_CONTINUE;
}

static bool both_running(void *ctx)
{
    struct waker *w = ctx;
    return atomic_load(&w[0].calls) >= 2 && atomic_load(&w[1].calls) >= 20;
}

struct snap {
    double wakeups, frames;
    long calls, csw;
};

static void snapshot(struct daemon *d, struct waker *w, struct snap *out)
{
    cJSON *stats = stats_snapshot(d->socket_path);
    for (int i = 0; i < 2; i++) {
        cJSON *st = stats_find_stream(stats, w[i].name);
        out[i].wakeups = json_number(st, "wakeups");
        out[i].frames = json_number(st, "frames");
        out[i].calls = atomic_load(&w[i].calls);
        out[i].csw = atomic_load(&w[i].csw);
    }
    cJSON_Delete(stats);
}

static void wakeups_once(void)
{
    struct daemon d;
    daemon_start(&d, (const char *const[]){ NULL }, 10);
    sc_client *client;
    if (sc_client_open(&client, d.socket_path, "wakeups") < 0) {
        CHECK(0, "connect: %s", sc_last_error());
        daemon_stop(&d, 10);
        return;
    }
    static struct waker w[2];
    w[0] = (struct waker){ .name = "relaxed-4096", .latency = 0.2, .blocksize = 4096 };
    w[1] = (struct waker){ .name = "lowest-latency" };
    for (int i = 0; i < 2; i++) {
        sc_stream_params p;
        sc_stream_params_init(&p);
        p.name = w[i].name;
        p.output_channels = 2;
        p.latency = w[i].latency;
        p.blocksize = w[i].blocksize;
        p.callback = callback;
        p.userdata = &w[i];
        int err = sc_stream_open(client, &p, &w[i].s);
        VERIFY(err == 0, "%s: open (latency %g, blocksize %lu): %s", w[i].name, w[i].latency, w[i].blocksize,
               err ? sc_last_error() : "ok");
        if (err) {
            sc_client_close(client);
            daemon_stop(&d, 10);
            return;
        }
    }
    for (int i = 0; i < 2; i++)
        CHECK(sc_stream_start(w[i].s) == 0, "start %s: %s", w[i].name, sc_last_error());
    /* Past the start (the ring's priming), into the steady state. */
    VERIFY(wakeup_wait_until(both_running, w, 10), "both streams' callbacks run");

    struct snap a[2], b[2];
    snapshot(&d, w, a);
    double t0 = now_seconds();
    struct timespec ts = { (time_t)WINDOW, 0 };
    while (nanosleep(&ts, &ts) < 0)
        ;
    snapshot(&d, w, b);
    double elapsed = now_seconds() - t0;

    double expect[2] = { elapsed * CARD_RATE / 4096, elapsed * CARD_RATE / PERIOD };
    double wakeups[2];
    for (int i = 0; i < 2; i++) {
        wakeups[i] = b[i].wakeups - a[i].wakeups;
        double frames = b[i].frames - a[i].frames;
        long calls = b[i].calls - a[i].calls, csw = b[i].csw - a[i].csw;
        printf("info %s: in %.3f s the daemon played %.0f of its frames and woke it %.0f times (one per "
               "%.0f frames; expected %.1f); %ld callbacks; its callback thread switched out voluntarily %ld "
               "times\n", w[i].name, elapsed, frames, wakeups[i], wakeups[i] > 0 ? frames / wakeups[i] : 0,
               expect[i], calls, csw);
    }
    /* One wakeup either way for the window's edges, and 5 %. */
    VERIFY(fabs(wakeups[0] - expect[0]) <= 1 + 0.05 * expect[0],
           "%s: %.0f wakeups in %.2f s, about every 4096-frame block (%.1f)", w[0].name, wakeups[0], elapsed,
           expect[0]);
    VERIFY(fabs(wakeups[1] - expect[1]) <= 1 + 0.05 * expect[1],
           "%s: %.0f wakeups in %.2f s, about every 256-frame period (%.1f)", w[1].name, wakeups[1], elapsed,
           expect[1]);
    double ratio = wakeups[0] > 0 ? wakeups[1] / wakeups[0] : INFINITY;
    VERIFY(fabs(ratio - 16) <= 16 * 0.1, "the lowest-latency stream was woken %.1fx as often (4096 / 256 = 16, ±10%%)",
           ratio);
    long calls0 = b[0].calls - a[0].calls, calls1 = b[1].calls - a[1].calls;
    VERIFY(labs(calls0 - lround(expect[0])) <= 2 && fabs(calls1 - expect[1]) <= 2 + 0.05 * expect[1],
           "the callbacks ran as often: %ld (expected %.1f) and %ld (expected %.1f)", calls0, expect[0], calls1,
           expect[1]);
    /* Each wakeup costs the callback thread a sleep; it sleeps no more
     * often than it is woken (plus a few for the library's own requests). */
    long csw0 = b[0].csw - a[0].csw;
    VERIFY(csw0 <= wakeups[0] + 3, "%s: its callback thread slept %ld times for %.0f wakeups", w[0].name, csw0,
           wakeups[0]);
    for (int i = 0; i < 2; i++) {
        sc_stream_stats st;
        sc_stream_get_stats(w[i].s, &st);
        VERIFY(st.underruns == 0, "%s: no underrun (%llu)", w[i].name, (unsigned long long)st.underruns);
        CHECK(sc_stream_close(w[i].s) == 0, "close: %s", sc_last_error());
    }
    sc_client_close(client);
    attempt_note_card_xruns(card_xruns(&d));
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");
}

int main(void)
{
    wakeup_init();
    /* The lowest-latency stream's budget is two periods (10.7 ms), below
     * this machine's stalls: a case that underran in one runs again
     * (attempt.h). */
    struct attempt a;
    attempt_begin(&a, "wakeups", 2 * PERIOD / CARD_RATE, NULL);
    do
        wakeups_once();
    while (attempt_again(&a));
    return harness_finish("wakeups");
}
