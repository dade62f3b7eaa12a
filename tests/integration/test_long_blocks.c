/* Callback streams whose blocks are long against the card's period, at
 * rates the library converts: each must keep being called back (a budget
 * under two wake intervals once left the client waiting for progress that
 * never came, at 8000 Hz with 100-frame blocks) and must not underrun.
 * A case that underran while the machine stalled runs again (attempt.h).
 * Each case says how late its callback thread came at worst against how
 * much was queued then, and the thread's page faults: whether an underrun
 * was the client held up or the daemon not playing what it had. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

#include "attempt.h"
#include "harness.h"
#include "proc_tasks.h"

static atomic_long frames_done;

static atomic_int callback_tid;  /* read while it runs, for its page faults */
/* Written by the callback thread, read once it has stopped. */
static struct callback_record {
    long calls;
    double last_call, worst_gap;  /* between the starts of two calls, seconds */
    double least_queued;          /* output_dac_time - current_time, seconds */
} cb;

static void note_call(const sc_time_info *t)
{
    if (cb.calls++ == 0)
        atomic_store(&callback_tid, gettid());
    else if (t->current_time - cb.last_call > cb.worst_gap)
        cb.worst_gap = t->current_time - cb.last_call;
    cb.last_call = t->current_time;
    double queued = t->output_dac_time - t->current_time;
    if (cb.calls > 1 && queued < cb.least_queued)  /* the first comes on the primed ring */
        cb.least_queued = queued;
}

static int tone(const void *in, void *out, unsigned long frames, const sc_time_info *t, unsigned status,
                void *userdata)
{
    (void)in, (void)status, (void)userdata;
    note_call(t);
    float *o = out;
    long base = atomic_load(&frames_done);
    for (unsigned long i = 0; i < frames; i++)
        o[i] = 0.25f * sinf((float)(2 * M_PI * 440.0 * (double)(base + (long)i) / 8000.0));
    atomic_fetch_add(&frames_done, (long)frames);
    return SC_CONTINUE;
}

static void run_once(struct attempt *a, const char *socket_path, double rate, unsigned long blocksize)
{
    sc_client *c;
    sc_stream *s;
    CHECK(sc_client_open(&c, socket_path, "long-blocks") == 0, "connect: %s", sc_last_error());
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.output_channels = 1;
    p.samplerate = rate;
    p.blocksize = blocksize;
    p.callback = tone;
    atomic_store(&frames_done, 0);
    cb = (struct callback_record){ .least_queued = INFINITY };
    atomic_store(&callback_tid, 0);
    CHECK(sc_stream_open(c, &p, &s) == 0, "open at %.0f Hz, block %lu: %s", rate, blocksize, sc_last_error());
    CHECK(sc_stream_start(s) == 0, "start: %s", sc_last_error());
    /* Two seconds of the stream's frames, within five seconds. */
    double deadline = now_seconds() + 5;
    while (atomic_load(&frames_done) < 2 * rate && now_seconds() < deadline) {
        struct timespec pause = { 0, 10 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
    double in_latency, out_latency;
    if (sc_stream_latency(s, &in_latency, &out_latency) == 0)
        a->budget = out_latency;
    sc_stream_stats st;
    sc_stream_get_stats(s, &st);
    struct task thread = { 0 };
    int tid = atomic_load(&callback_tid);
    bool seen = tid && proc_task(getpid(), tid, &thread);
    sc_stream_abort(s);  /* joins the callback thread: cb may be read */
    printf("%.0f Hz, block %lu: %ld frames called back, %llu underruns (output latency %.1f ms)\n", rate,
           blocksize, atomic_load(&frames_done), (unsigned long long)st.underruns, 1000 * a->budget);
    printf("  callback: %ld calls %.1f ms apart at worst (a block is %.1f ms), %.1f ms queued at the "
           "least; its thread's page faults: %ld (%ld major)\n",
           cb.calls, 1000 * cb.worst_gap, 1000 * (double)blocksize / rate, 1000 * cb.least_queued,
           seen ? thread.faults : -1, seen ? thread.major_faults : -1);
    CHECK(atomic_load(&frames_done) >= 2 * rate, "the callback stopped being called (%ld of %.0f frames)",
          atomic_load(&frames_done), 2 * rate);
    /* Sanitized builds run too slowly to promise timing: there the stall is
     * what is checked, and underruns are reported. */
    if (getenv("SC_SANITIZED"))
        printf("note: %s build, underruns not checked\n", getenv("SC_SANITIZED"));
    else
        CHECK(st.underruns == 0, "%llu underruns", (unsigned long long)st.underruns);
    sc_stream_close(s);
    sc_client_close(c);
}

static void run(struct daemon *d, double rate, unsigned long blocksize)
{
    char what[64];
    snprintf(what, sizeof(what), "%.0f Hz, block %lu", rate, blocksize);
    struct attempt a;
    attempt_begin(&a, what, 0, d);  /* the budget: the stream's output latency, once open */
    do
        run_once(&a, d->socket_path, rate, blocksize);
    while (attempt_again(&a));
}

int main(void)
{
    struct daemon d;
    daemon_start(&d, NULL, 10);
    static const struct { double rate; unsigned long block; } cases[] = {
        { 8000, 100 }, { 8000, 1000 }, { 16000, 300 }, { 44100, 441 }, { 44100, 1024 }, { 96000, 512 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run(&d, cases[i].rate, cases[i].block);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd failed");
    return harness_finish("integration.long_blocks");
}
