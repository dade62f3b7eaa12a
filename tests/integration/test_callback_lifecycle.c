/* Callback mode from start to end, on a real soundcardd (--period 64):
 *
 *  - SC_CONTINUE: called again and again with exactly `blocksize` frames,
 *    output only (input NULL) and full duplex (both pointers set);
 *  - SC_COMPLETE: everything the callback produced, the completing block
 *    too, plays out (the tap holds exactly that much tone), then the stream
 *    is inactive and `finished` runs once;
 *  - SC_ABORT: stops at once (what was queued is dropped), `finished` once;
 *  - sc_stream_stop / sc_stream_abort / restart / sc_stream_close on a
 *    running callback stream: `finished` exactly once per end;
 *  - a callback that sleeps too long sees SC_OUTPUT_UNDERFLOW later and
 *    underruns alone (another client process stays at 0); one that blocks
 *    until its capture ring is full sees SC_INPUT_OVERFLOW;
 *  - sc_stream_get_stats().callback_realtime agrees with stats' "callback".
 *
 * The budgets are 10-50 ms, below the stalls of the machines this runs on:
 * each case runs again when it failed while the machine stalled (attempt.h). */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <soundcard/soundcard.h>

#include "attempt.h"
#include "audio_check.h"
#include "harness.h"

#define RATE 48000.0

struct cb {
    const char *name;
    int in_ch, out_ch;
    unsigned long blocksize;
    double latency;
    long run_calls;       /* calls per run in test_controls (0: 200) */
    float amp;            /* of its 1 kHz tone (0: silence) */
    /* What the callback does (set while the stream is stopped). */
    long end_at_call;     /* the call (1-based, counted over the stream's life) that returns `verdict` */
    int verdict;
    long sleep_at_call;   /* the call that sleeps sleep_ms first */
    int sleep_ms;
    bool ended;           /* it returned COMPLETE/ABORT (callback thread; reset while stopped) */
    double phase;         /* callback thread only */
    sc_stream *s;

    /* What was seen. */
    _Atomic long calls, frames, wrong_frames, bad_pointers, calls_after_end, finished;
    _Atomic long first_underflow_call, first_overflow_call, underflow_calls_before_sleep;
    _Atomic unsigned status_seen;
    _Atomic long frames_at_end_call;  /* the stream's frames counter when it returned the verdict */
    _Atomic long frames_at_finished;
    _Atomic long long end_call_ns, finished_ns;
};

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long stream_frames(sc_stream *s)
{
    sc_stream_stats st;
    return sc_stream_get_stats(s, &st) == 0 ? (long)st.frames : -1;
}

static int callback(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                    unsigned status, void *userdata)
{
    (void)time;
    struct cb *c = userdata;
    long n = atomic_load(&c->calls) + 1;
    if (c->ended)
        atomic_fetch_add(&c->calls_after_end, 1);
    if (c->blocksize == 0)
        c->blocksize = frames;  /* the library's choice: every later call must match it */
    if (frames != c->blocksize)
        atomic_fetch_add(&c->wrong_frames, 1);
    if ((input != NULL) != (c->in_ch > 0) || (output != NULL) != (c->out_ch > 0))
        atomic_fetch_add(&c->bad_pointers, 1);
    if (status & SC_OUTPUT_UNDERFLOW) {
        if (c->sleep_at_call && n <= c->sleep_at_call)
            atomic_fetch_add(&c->underflow_calls_before_sleep, 1);
        long none = 0;
        atomic_compare_exchange_strong(&c->first_underflow_call, &none, n);
    }
    if (status & SC_INPUT_OVERFLOW) {
        long none = 0;
        atomic_compare_exchange_strong(&c->first_overflow_call, &none, n);
    }
    atomic_fetch_or(&c->status_seen, status);
    if (output) {
        float *out = output;
        for (unsigned long i = 0; i < frames; i++) {
            float v = c->amp * (float)sin(c->phase + M_PI / 4);
            c->phase = fmod(c->phase + 2 * M_PI * 1000 / RATE, 2 * M_PI);
            for (int ch = 0; ch < c->out_ch; ch++)
                out[i * (unsigned long)c->out_ch + (unsigned long)ch] = v;
        }
    }
    if (n == c->sleep_at_call) {
        struct timespec ts = { 0, c->sleep_ms * 1000000L };
        nanosleep(&ts, NULL);
    }
    int verdict = SC_CONTINUE;
    if (n == c->end_at_call) {
        verdict = c->verdict;
        c->ended = true;
        atomic_store(&c->frames_at_end_call, stream_frames(c->s));
        atomic_store(&c->end_call_ns, mono_ns());
    }
    atomic_fetch_add(&c->frames, (long)frames);
    atomic_store(&c->calls, n);
    wakeup_notify();
    return verdict;
}

static void finished(void *userdata)
{
    struct cb *c = userdata;
    atomic_store(&c->frames_at_finished, stream_frames(c->s));
    atomic_store(&c->finished_ns, mono_ns());
    atomic_fetch_add(&c->finished, 1);
    wakeup_notify();
}

static sc_stream *open_cb(sc_client *client, struct cb *c)
{
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = c->name;
    p.input_channels = c->in_ch;
    p.output_channels = c->out_ch;
    p.blocksize = c->blocksize;
    p.latency = c->latency;
    p.callback = callback;
    p.userdata = c;
    p.finished = finished;
    sc_stream *s = NULL;
    int err = sc_stream_open(client, &p, &s);
    VERIFY(err == 0, "%s: open (%d in, %d out, blocksize %lu, latency %g): %s", c->name, c->in_ch,
           c->out_ch, c->blocksize, c->latency, err ? sc_last_error() : "ok");
    c->s = s;
    return s;
}

/* Conditions the test waits for. */
struct want {
    struct cb *c;
    long n;
};
static bool calls_reached(void *ctx)
{
    struct want *w = ctx;
    return atomic_load(&w->c->calls) >= w->n;
}
static bool finished_reached(void *ctx)
{
    struct want *w = ctx;
    return atomic_load(&w->c->finished) >= w->n;
}
static bool underflow_seen(void *ctx)
{
    return atomic_load(&((struct cb *)ctx)->first_underflow_call) > 0;
}
static bool overflow_seen(void *ctx)
{
    return atomic_load(&((struct cb *)ctx)->first_overflow_call) > 0;
}
static bool both_flags_seen(void *ctx)
{
    return underflow_seen(ctx) && overflow_seen(ctx);
}

static bool wait_calls(struct cb *c, long n, double timeout)
{
    struct want w = { c, n };
    bool ok = wakeup_wait_until(calls_reached, &w, timeout);
    VERIFY(ok, "%s: the callback ran %ld times (waited for %ld, deadline %.0f s)", c->name,
           atomic_load(&c->calls), n, timeout);
    return ok;
}

/* The stream's entry in the daemon's stats: a string field, or "" */
static const char *stats_string(struct daemon *d, const char *stream, const char *key)
{
    static char value[64];
    value[0] = '\0';
    cJSON *st = stats_snapshot(d->socket_path);
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(stats_find_stream(st, stream), key));
    snprintf(value, sizeof(value), "%s", v ? v : "");
    cJSON_Delete(st);
    return value;
}

static double stats_value(struct daemon *d, const char *stream, const char *key)
{
    cJSON *st = stats_snapshot(d->socket_path);
    double v = json_number(stats_find_stream(st, stream), key);
    cJSON_Delete(st);
    return v;
}

static bool stream_gone(cJSON *stats, void *ctx)
{
    return stats_find_stream(stats, ctx) == NULL;
}

/* ---- SC_COMPLETE and SC_ABORT, checked in the tap ---- */

#define END_CALL 150
#define TAP_BLOCK 64

static void complete_and_abort_once(void)
{
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--period", "64", "--tap", "@/tap.wav", NULL }, 10);
    sc_client *client;
    if (sc_client_open(&client, d.socket_path, "lifecycle") < 0) {
        CHECK(0, "connect: %s", sc_last_error());
        daemon_stop(&d, 10);
        return;
    }

    /* COMPLETE: 150 blocks of 64 frames of tone, the last one returning
     * SC_COMPLETE. */
    static struct cb comp;
    comp = (struct cb){ .name = "complete", .out_ch = 2, .blocksize = TAP_BLOCK, .latency = 0.05,
                        .amp = 0.5f, .end_at_call = END_CALL, .verdict = SC_COMPLETE };
    sc_stream *s = open_cb(client, &comp);
    long produced = END_CALL * TAP_BLOCK;
    double complete_after_ms = -1;
    if (s) {
        CHECK(sc_stream_start(s) == 0, "start: %s", sc_last_error());
        struct want w = { &comp, 1 };
        bool done = wakeup_wait_until(finished_reached, &w, 10);
        VERIFY(done, "complete: finished ran after SC_COMPLETE (deadline 10 s)");
        VERIFY(!sc_stream_is_active(s), "complete: the stream is inactive after finished");
        VERIFY(atomic_load(&comp.calls) == END_CALL && atomic_load(&comp.calls_after_end) == 0,
               "complete: %ld calls, %ld after SC_COMPLETE (want %d, 0)", atomic_load(&comp.calls),
               atomic_load(&comp.calls_after_end), END_CALL);
        VERIFY(atomic_load(&comp.wrong_frames) == 0 && atomic_load(&comp.bad_pointers) == 0,
               "complete: every call had %d frames and (in NULL, out set): %ld wrong sizes, %ld wrong pointers",
               TAP_BLOCK, atomic_load(&comp.wrong_frames), atomic_load(&comp.bad_pointers));
        long at_end = atomic_load(&comp.frames_at_end_call), at_fin = atomic_load(&comp.frames_at_finished);
        complete_after_ms = (atomic_load(&comp.finished_ns) - atomic_load(&comp.end_call_ns)) / 1e6;
        printf("info complete: stream frames when SC_COMPLETE was returned %ld, at finished %ld "
               "(%ld played after it, %.1f ms)\n", at_end, at_fin, at_fin - at_end, complete_after_ms);
        /* All of the queue (at least the completing block and the latency
         * budget beyond it) must have played before finished. */
        VERIFY(at_fin - at_end >= (long)(0.05 * RATE) - TAP_BLOCK,
               "complete: %ld frames played between SC_COMPLETE and finished (the queue: >= %ld)",
               at_fin - at_end, (long)(0.05 * RATE));
        VERIFY(!strcmp(stats_string(&d, "complete", "state"), "stopped"),
               "complete: the daemon's state is '%s' (want stopped)", stats_string(&d, "complete", "state"));
        VERIFY(stats_value(&d, "complete", "frames") == at_fin,
               "complete: nothing played after finished (daemon frames %.0f, at finished %ld)",
               stats_value(&d, "complete", "frames"), at_fin);
        sc_stream_stats st;
        sc_stream_get_stats(s, &st);
        VERIFY(st.underruns == 0, "complete: %llu underruns (0 keeps the tap's tone contiguous)",
               (unsigned long long)st.underruns);
        VERIFY(sc_stream_stop(s) == 0 && atomic_load(&comp.finished) == 1,
               "complete: sc_stream_stop after SC_COMPLETE returns 0 and finished stays at 1 (%ld)",
               atomic_load(&comp.finished));

        /* It starts again (silently, to keep the tap's segments apart). */
        comp.amp = 0;
        comp.ended = false;
        comp.end_at_call = 0;
        VERIFY(sc_stream_start(s) == 0, "complete: start again after SC_COMPLETE: %s", sc_last_error());
        wait_calls(&comp, END_CALL + 100, 5);
        VERIFY(sc_stream_stop(s) == 0 && atomic_load(&comp.finished) == 2,
               "complete: stopped again, finished %ld times in all (want 2)", atomic_load(&comp.finished));
        CHECK(sc_stream_close(s) == 0, "close: %s", sc_last_error());
        VERIFY(atomic_load(&comp.finished) == 2, "complete: close of a stopped stream calls no finished");
    }

    /* ABORT: the same tone, the 150th call returns SC_ABORT. */
    static struct cb ab;
    ab = (struct cb){ .name = "abort", .out_ch = 2, .blocksize = TAP_BLOCK, .latency = 0.05,
                      .amp = 0.5f, .end_at_call = END_CALL, .verdict = SC_ABORT };
    long abort_played = -1;
    s = open_cb(client, &ab);
    if (s) {
        CHECK(sc_stream_start(s) == 0, "start: %s", sc_last_error());
        struct want w = { &ab, 1 };
        VERIFY(wakeup_wait_until(finished_reached, &w, 10), "abort: finished ran after SC_ABORT");
        VERIFY(!sc_stream_is_active(s), "abort: the stream is inactive after finished");
        VERIFY(atomic_load(&ab.calls) == END_CALL && atomic_load(&ab.calls_after_end) == 0,
               "abort: %ld calls, %ld after SC_ABORT (want %d, 0)", atomic_load(&ab.calls),
               atomic_load(&ab.calls_after_end), END_CALL);
        long at_end = atomic_load(&ab.frames_at_end_call), at_fin = atomic_load(&ab.frames_at_finished);
        abort_played = at_fin - at_end;
        double ms = (atomic_load(&ab.finished_ns) - atomic_load(&ab.end_call_ns)) / 1e6;
        printf("info abort: stream frames when SC_ABORT was returned %ld, at finished %ld "
               "(%ld played after it, %.1f ms)\n", at_end, at_fin, abort_played, ms);
        /* At once: of the ~2400 frames queued, at most a few periods play. */
        VERIFY(abort_played <= 4 * 64, "abort: %ld frames played after SC_ABORT (at most 4 periods)",
               abort_played);
        VERIFY(!strcmp(stats_string(&d, "abort", "state"), "stopped") &&
                   stats_value(&d, "abort", "frames") == at_fin,
               "abort: stopped in the daemon, nothing played after finished");
        VERIFY(sc_stream_abort(s) == 0 && atomic_load(&ab.finished) == 1,
               "abort: sc_stream_abort after SC_ABORT returns 0, finished stays at 1 (%ld)",
               atomic_load(&ab.finished));
        CHECK(sc_stream_close(s) == 0, "close: %s", sc_last_error());
    }
    sc_client_close(client);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");

    /* The tap: two stretches of tone.  The first lasts exactly what the
     * COMPLETE callback produced (to the frame, allowing one period); the
     * second, what the ABORT callback produced less the queue it dropped. */
    struct segment seg[8];
    int rate = 0;
    int n = wav_segments(daemon_path(&d, "tap.wav"), 0.01, 1200, seg, 8, &rate);
    VERIFY(n == 2 && rate == 48000, "tap: %d stretches of tone at %d Hz (want 2 at 48000)", n, rate);
    if (n >= 1) {
        long len = seg[0].end - seg[0].start;
        VERIFY(labs(len - produced) <= 64,
               "tap: the SC_COMPLETE tone lasts %ld frames; the callback produced %ld (150 blocks "
               "including the completing one), difference %ld (at most one period)",
               len, produced, len - produced);
    }
    if (n >= 2) {
        long len = seg[1].end - seg[1].start;
        printf("info tap: the SC_ABORT tone lasts %ld frames of the %ld the callback produced\n", len,
               produced);
        /* Not played: the aborting block, and the queue (the latency
         * budget less up to a block) bar the few periods "at once" allows. */
        long most = produced - (long)(0.05 * RATE) + 4 * 64;
        VERIFY(len <= most, "tap: the SC_ABORT tone (%ld frames) lacks the aborting block and the "
               "dropped queue (at most %ld)", len, most);
    }
}

static void test_complete_and_abort(void)
{
    printf("== SC_COMPLETE / SC_ABORT (period 64, tap) ==\n");
    /* Its daemon is stopped before the tap is read: only the probe counts. */
    struct attempt a;
    attempt_begin(&a, "complete/abort", 0.05, NULL);
    do
        complete_and_abort_once();
    while (attempt_again(&a));
}

/* ---- stop, abort, restart and close of running callback streams ---- */

/* The stream's underruns so far, printed after each of its runs. */
static uint64_t report_underruns(struct cb *c, const char *after)
{
    sc_stream_stats st;
    sc_stream_get_stats(c->s, &st);
    printf("info %s: %llu underruns in all after %s\n", c->name, (unsigned long long)st.underruns, after);
    return st.underruns;
}

static void controls_once(struct daemon *d, sc_client *client, struct cb *c)
{
    sc_stream *s = open_cb(client, c);
    if (!s)
        return;
    long target = c->run_calls ? c->run_calls : 200;
    VERIFY(sc_stream_start(s) == 0, "%s: start", c->name);
    VERIFY(sc_stream_is_active(s) == 1, "%s: active after start", c->name);
    wait_calls(c, target, 5);

    /* Stop (drain). */
    int err = sc_stream_stop(s);
    long calls = atomic_load(&c->calls);
    VERIFY(err == 0 && atomic_load(&c->finished) == 1,
           "%s: sc_stream_stop on a running stream: %d, finished %ld time(s) (want 1)", c->name, err,
           atomic_load(&c->finished));
    VERIFY(!sc_stream_is_active(s) && !strcmp(stats_string(d, c->name, "state"), "stopped"),
           "%s: inactive, and stopped in the daemon (%s)", c->name, stats_string(d, c->name, "state"));
    report_underruns(c, "the first run (ended by stop)");

    /* Start again: the callbacks resume. */
    VERIFY(sc_stream_start(s) == 0, "%s: start after stop: %s", c->name, sc_last_error());
    wait_calls(c, calls + target, 5);
    VERIFY(sc_stream_stop(s) == 0 && atomic_load(&c->finished) == 2,
           "%s: the second stop calls finished once more (%ld in all, want 2)", c->name,
           atomic_load(&c->finished));
    calls = atomic_load(&c->calls);
    report_underruns(c, "the second run (ended by stop)");

    /* Abort. */
    VERIFY(sc_stream_start(s) == 0, "%s: start after the second stop", c->name);
    wait_calls(c, calls + target, 5);
    VERIFY(sc_stream_abort(s) == 0 && atomic_load(&c->finished) == 3,
           "%s: sc_stream_abort on a running stream: finished once more (%ld in all, want 3)",
           c->name, atomic_load(&c->finished));
    VERIFY(!sc_stream_is_active(s) && !strcmp(stats_string(d, c->name, "state"), "stopped"),
           "%s: inactive and stopped after the abort", c->name);
    VERIFY(sc_stream_abort(s) == 0 && sc_stream_stop(s) == 0 && atomic_load(&c->finished) == 3,
           "%s: abort and stop of a stopped stream: no more finished (%ld)", c->name,
           atomic_load(&c->finished));
    calls = atomic_load(&c->calls);
    report_underruns(c, "the third run (ended by abort)");

    /* SC_COMPLETE and SC_ABORT from the callback. */
    c->ended = false;
    c->end_at_call = calls + 50;
    c->verdict = SC_COMPLETE;
    VERIFY(sc_stream_start(s) == 0, "%s: start after the abort", c->name);
    struct want w = { c, 4 };
    VERIFY(wakeup_wait_until(finished_reached, &w, 5) && atomic_load(&c->calls) == calls + 50,
           "%s: SC_COMPLETE at call %ld: finished %ld in all (want 4), last call %ld", c->name,
           calls + 50, atomic_load(&c->finished), atomic_load(&c->calls));
    /* finished runs after the stream went inactive, on the callback's thread */
    VERIFY(!sc_stream_is_active(s), "%s: inactive after SC_COMPLETE", c->name);
    report_underruns(c, "the fourth run (ended by SC_COMPLETE)");
    calls = atomic_load(&c->calls);
    c->ended = false;
    c->end_at_call = calls + 50;
    c->verdict = SC_ABORT;
    VERIFY(sc_stream_start(s) == 0, "%s: start after SC_COMPLETE", c->name);
    w.n = 5;
    VERIFY(wakeup_wait_until(finished_reached, &w, 5) && atomic_load(&c->calls) == calls + 50,
           "%s: SC_ABORT at call %ld: finished %ld in all (want 5), last call %ld", c->name,
           calls + 50, atomic_load(&c->finished), atomic_load(&c->calls));
    VERIFY(!sc_stream_is_active(s), "%s: inactive after SC_ABORT", c->name);
    report_underruns(c, "the fifth run (ended by SC_ABORT)");
    calls = atomic_load(&c->calls);
    c->ended = false;
    c->end_at_call = 0;

    /* Close while running. */
    VERIFY(sc_stream_start(s) == 0, "%s: start after SC_ABORT", c->name);
    wait_calls(c, calls + target, 5);
    sc_stream_stats st;
    sc_stream_get_stats(s, &st);
    uint64_t underruns = st.underruns;
    report_underruns(c, "the sixth run (before close)");
    err = sc_stream_close(s);
    VERIFY(err == 0 && atomic_load(&c->finished) == 6,
           "%s: sc_stream_close on a running stream: %d, finished once more (%ld in all, want 6)",
           c->name, err, atomic_load(&c->finished));
    VERIFY(wait_for_stats(d->socket_path, stream_gone, (void *)c->name, 5),
           "%s: the daemon no longer lists the stream", c->name);

    /* Restarts (after stop, abort, SC_COMPLETE, SC_ABORT) begin afresh:
     * primed with silence, the stream never ran short. */
    VERIFY(underruns == 0, "%s: no underrun in any of its six runs (%llu)", c->name,
           (unsigned long long)underruns);
    VERIFY(atomic_load(&c->wrong_frames) == 0,
           "%s: all %ld calls had exactly %lu frames (%ld did not)", c->name, atomic_load(&c->calls),
           c->blocksize, atomic_load(&c->wrong_frames));
    VERIFY(atomic_load(&c->bad_pointers) == 0, "%s: input %s, output %s on every call (%ld wrong)",
           c->name, c->in_ch ? "set" : "NULL", c->out_ch ? "set" : "NULL", atomic_load(&c->bad_pointers));
    VERIFY(atomic_load(&c->calls_after_end) == 0, "%s: no call after SC_COMPLETE/SC_ABORT (%ld)",
           c->name, atomic_load(&c->calls_after_end));
}

/* Each attempt on a fresh copy of `stream` (the callback's state and counters). */
static void test_controls(struct daemon *d, sc_client *client, const struct cb *stream)
{
    printf("== %s: %d in, %d out, blocksize %lu ==\n", stream->name, stream->in_ch, stream->out_ch,
           stream->blocksize);
    static struct cb c;
    struct attempt a;
    attempt_begin(&a, stream->name, stream->latency, d);
    do {
        c = *stream;
        controls_once(d, client, &c);
    } while (attempt_again(&a));
}

/* ---- underflow, overflow, realtime ---- */

static bool steady_playing(cJSON *stats, void *ctx)
{
    (void)ctx;
    return json_number(stats_find_stream(stats, "steady"), "frames") > 4800;
}

static void check_realtime_agrees(struct daemon *d, struct cb *c)
{
    sc_stream_stats st;
    sc_stream_get_stats(c->s, &st);
    const char *field = stats_string(d, c->name, "callback");
    const char *want = st.callback_realtime == 1 ? "realtime" : st.callback_realtime == 0 ? "normal" : "none";
    VERIFY(!strcmp(field, want), "%s: callback_realtime %d and stats' callback \"%s\" agree", c->name,
           st.callback_realtime, field);
}

/* One 30 ms sleep in a callback of a 10 ms stream, while another client
 * process plays a tone at 100 ms. */
static void sleeper_once(struct daemon *d, sc_client *client)
{
    char out[256];
    snprintf(out, sizeof(out), "%s", daemon_path(d, "steady.out"));
    const char *steady[] = { harness_bin("soundcard"), "tone", "--freq", "440", "--seconds", "3",
                             "--gain", "0.1", "--latency", "0.1", "--name", "steady", NULL };
    pid_t tone = spawn_client(d, steady, out);
    VERIFY(wait_for_stats(d->socket_path, steady_playing, NULL, 10), "the other client's tone plays");
    static struct cb sleeper;
    sleeper = (struct cb){ .name = "sleeper", .out_ch = 2, .blocksize = 64, .latency = 0.01, .amp = 0.1f,
                           .sleep_at_call = 100, .sleep_ms = 30 };
    sc_stream *s = open_cb(client, &sleeper);
    if (s) {
        CHECK(sc_stream_start(s) == 0, "start: %s", sc_last_error());
        bool seen = wakeup_wait_until(underflow_seen, &sleeper, 5);
        long first = atomic_load(&sleeper.first_underflow_call);
        VERIFY(seen && first > sleeper.sleep_at_call,
               "sleeper: SC_OUTPUT_UNDERFLOW on call %ld, after the call that slept (%ld)", first,
               sleeper.sleep_at_call);
        printf("info sleeper: %ld calls before the sleep saw an underflow flag\n",
               atomic_load(&sleeper.underflow_calls_before_sleep));
        sc_stream_stats st;
        sc_stream_get_stats(s, &st);
        double steady_under = stats_value(d, "steady", "underruns");
        VERIFY(st.underruns > 0 && stats_value(d, "sleeper", "underruns") > 0,
               "sleeper: its own underruns %llu (stats %.0f) > 0", (unsigned long long)st.underruns,
               stats_value(d, "sleeper", "underruns"));
        VERIFY(steady_under == 0, "steady: the other process's stream has %.0f underruns", steady_under);
        check_realtime_agrees(d, &sleeper);
        printf("info callback thread: %s\n", st.callback_realtime == 1 ? "SCHED_FIFO"
                                                : "normal priority (the system allows no realtime)");
        CHECK(sc_stream_stop(s) == 0, "stop: %s", sc_last_error());
        CHECK(sc_stream_close(s) == 0, "close: %s", sc_last_error());
    }
    VERIFY(wait_child(tone, 30) == 0, "steady: the tone process ended well: %s", slurp(out));
    VERIFY(strstr(slurp(out), "underruns=0 ") != NULL, "steady: the tone process reports no underrun: %s",
           slurp(out));
}

/* A callback that blocks 200 ms: the capture ring (about 20 ms) fills and
 * overruns.  In full duplex the same block costs both directions. */
static void blocker_once(sc_client *client, struct daemon *d, bool duplex)
{
    static struct cb c;
    c = (struct cb){ .name = duplex ? "overflow-duplex" : "overflow-in", .in_ch = 2, .out_ch = duplex ? 2 : 0,
                     .blocksize = 64, .latency = 0.01, .sleep_at_call = 50, .sleep_ms = 200 };
    sc_stream *s = open_cb(client, &c);
    if (!s)
        return;
    CHECK(sc_stream_start(s) == 0, "start: %s", sc_last_error());
    bool seen = wakeup_wait_until(duplex ? both_flags_seen : overflow_seen, &c, 5);
    long overflow = atomic_load(&c.first_overflow_call), underflow = atomic_load(&c.first_underflow_call);
    if (duplex) {
        VERIFY(seen && overflow > c.sleep_at_call && underflow > c.sleep_at_call,
               "%s: SC_INPUT_OVERFLOW on call %ld and SC_OUTPUT_UNDERFLOW on call %ld, after the call "
               "that blocked (%ld)", c.name, overflow, underflow, c.sleep_at_call);
    } else {
        VERIFY(seen && overflow > c.sleep_at_call,
               "%s: SC_INPUT_OVERFLOW on call %ld, after the call that blocked (%ld)", c.name, overflow,
               c.sleep_at_call);
        sc_stream_stats st;
        sc_stream_get_stats(s, &st);
        VERIFY(st.overruns > 0 && stats_value(d, c.name, "overruns") > 0, "%s: overruns %llu (stats %.0f) > 0",
               c.name, (unsigned long long)st.overruns, stats_value(d, c.name, "overruns"));
        VERIFY(!(atomic_load(&c.status_seen) & SC_OUTPUT_UNDERFLOW),
               "%s: an input-only stream never sees SC_OUTPUT_UNDERFLOW", c.name);
    }
    check_realtime_agrees(d, &c);
    CHECK(sc_stream_close(s) == 0, "close: %s", sc_last_error());
}

static void test_xruns(void)
{
    printf("== underflow / overflow / realtime (period 64) ==\n");
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--period", "64", NULL }, 10);
    sc_client *client;
    if (sc_client_open(&client, d.socket_path, "xruns") < 0) {
        CHECK(0, "connect: %s", sc_last_error());
        daemon_stop(&d, 10);
        return;
    }
    /* A stall before the call that sleeps is an early flag (10 ms streams). */
    struct attempt a;
    attempt_begin(&a, "sleeper", 0.01, &d);
    do
        sleeper_once(&d, client);
    while (attempt_again(&a));
    attempt_begin(&a, "overflow-in", 0.01, &d);
    do
        blocker_once(client, &d, false);
    while (attempt_again(&a));
    attempt_begin(&a, "overflow-duplex", 0.01, &d);
    do
        blocker_once(client, &d, true);
    while (attempt_again(&a));

    /* A blocking stream has no callback thread. */
    sc_stream *s;
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = "blocking";
    p.output_channels = 2;
    if (sc_stream_open(client, &p, &s) == 0) {
        sc_stream_stats st;
        sc_stream_get_stats(s, &st);
        const char *field = stats_string(&d, "blocking", "callback");
        VERIFY(st.callback_realtime == -1 && !strcmp(field, "none"),
               "blocking: callback_realtime %d, stats' callback \"%s\" (want -1, none)",
               st.callback_realtime, field);
        sc_stream_close(s);
    }
    sc_client_close(client);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");
}

/* The daemon drops the stream under a running callback thread (here: a
 * stream.close sent behind the library's back; also what a daemon going
 * away looks like before its socket closes).  The wake-up pipe then reads as
 * hung up: the thread must end (`finished` once, the stream inactive), not
 * poll that pipe in a busy loop at realtime priority. */
static void test_dropped_by_daemon(struct daemon *d, sc_client *client)
{
    static struct cb dropped = { .name = "dropped", .out_ch = 2, .blocksize = 64, .latency = 0.01 };
    sc_stream *s = open_cb(client, &dropped);
    if (!s || sc_stream_start(s) != 0 || !wait_calls(&dropped, 50, 5))
        return;
    sc_stream_stats st;
    sc_stream_get_stats(s, &st);
    char request[96], *reply = NULL;
    snprintf(request, sizeof(request), "{\"op\":\"stream.close\",\"stream\":%u}", st.id);
    VERIFY(sc_client_request(client, request, &reply) == 0, "dropped: stream.close behind the library's back: %s",
           reply ? reply : sc_last_error());
    free(reply);
    struct want w = { &dropped, 1 };
    VERIFY(wakeup_wait_until(finished_reached, &w, 2), "dropped: the callback thread ended (finished %ld times) "
           "within 2 s of the daemon dropping its stream", atomic_load(&dropped.finished));
    VERIFY(!sc_stream_is_active(s), "dropped: the stream is inactive");
    long calls = atomic_load(&dropped.calls);
    VERIFY(wait_for_stats(d->socket_path, stream_gone, "dropped", 2), "dropped: the daemon no longer lists it");
    VERIFY(atomic_load(&dropped.calls) == calls, "dropped: no callback after the end (%ld, then %ld)", calls,
           atomic_load(&dropped.calls));
    sc_stream_close(s);
}

int main(void)
{
    wakeup_init();
    test_complete_and_abort();

    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--period", "64", NULL }, 10);
    sc_client *client;
    if (sc_client_open(&client, d.socket_path, "controls") == 0) {
        /* Blocksizes that are not the period, so the FIFO between blocks
         * and the ring is exercised. */
        static struct cb out_only = { .name = "output-only", .out_ch = 2, .blocksize = 100,
                                      .latency = 0.02 };
        static struct cb duplex = { .name = "duplex", .in_ch = 2, .out_ch = 2, .blocksize = 48,
                                    .latency = 0.02 };
        test_controls(&d, client, &out_only);
        test_controls(&d, client, &duplex);
        test_dropped_by_daemon(&d, client);
        sc_client_close(client);
    } else {
        CHECK(0, "connect: %s", sc_last_error());
    }
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");

    /* The library's own block (blocksize 0: half the latency, 1200 frames)
     * on the card's default period, 256. */
    printf("== default period (256) ==\n");
    daemon_start(&d, (const char *const[]){ NULL }, 10);
    if (sc_client_open(&client, d.socket_path, "controls") == 0) {
        static struct cb out_default = { .name = "output-default-block", .out_ch = 2,
                                         .blocksize = 0, .latency = 0.05,
                                         .run_calls = 20 };
        test_controls(&d, client, &out_default);
        sc_client_close(client);
    } else {
        CHECK(0, "connect: %s", sc_last_error());
    }
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");

    test_xruns();
    return harness_finish("callback_lifecycle");
}
