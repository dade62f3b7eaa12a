/* soundcard loopback and tone --callback: callback streams.
 *
 * The callback runs on the library's own thread and touches only its own
 * state.  The main thread sleeps in wait_main() until the stream's
 * `finished` wakes it (the callback returned SC_COMPLETE), a signal comes,
 * or the run's time is up; it then stops the stream, which joins the
 * callback thread, and only after that reads what the callback left. */
#include <stdio.h>
#include <string.h>

#include "tool.h"

/* `finished` of every callback stream here: the main thread re-checks the
 * stream when woken. */
static void on_finished(void *userdata)
{
    (void)userdata;
    wake_main();
}

/* Open a float32 callback stream (p->callback and p->userdata set by the
 * caller) and catch signals.  Returns 0 or the exit code. */
static int cb_open(struct tool *t, sc_stream_params *p, sc_stream **s)
{
    p->format = SC_FLOAT32;
    p->finished = on_finished;
    int err = sc_stream_open(t->client, p, s);
    if (err < 0)
        return open_error(err, p);
    catch_signals();
    return 0;
}

/* Start; sleep until the callback completes the stream, `seconds` pass (0:
 * no limit) or SIGINT/SIGTERM comes; then stop, draining (after a
 * completion that only joins the callback thread).  A signal is the normal
 * end when signal_stops; otherwise it returns 128+N for cb_close() to
 * abort.  *ended_itself: the stream ended without stop (SC_COMPLETE, or
 * soundcardd went away). */
static int cb_run(sc_stream *s, double seconds, bool signal_stops, bool *ended_itself)
{
    int err = sc_stream_start(s);
    if (err < 0)
        return runtime_error(err, "start stream");
    const double deadline = seconds > 0 ? monotonic_seconds() + seconds : 0;
    while (!g_signal && sc_stream_is_active(s))
        if (!wait_main(deadline))
            break;                      /* time is up */
    *ended_itself = !sc_stream_is_active(s);
    if (g_signal && !signal_stops)
        return 128 + g_signal;
    if ((err = sc_stream_stop(s)) < 0)
        return runtime_error(err, "stop stream");
    return 0;
}

/* Abort a stream that failed (rc != 0), close it; returns the exit code. */
static int cb_close(sc_stream *s, int rc)
{
    if (rc != 0)
        sc_stream_abort(s);
    int err = sc_stream_close(s);
    if (err < 0 && rc == 0)
        rc = runtime_error(err, "close stream");
    return rc;
}

/* ---- tone --callback ---------------------------------------------------- */

struct tone_cb {
    struct sine sine;
    uint64_t left;          /* frames still to play */
};

/* Every block is `frames` long; the last one gets the frames that are left
 * (the library has zeroed the block, so the rest is silence) and ends the
 * stream: SC_COMPLETE plays out what was written, then stops. */
static int tone_callback(const void *input, void *output, unsigned long frames,
                         const sc_time_info *time, unsigned status, void *userdata)
{
    (void)input, (void)time, (void)status;
    struct tone_cb *tc = userdata;
    unsigned long n = tc->left < frames ? (unsigned long)tc->left : frames;
    sine_fill(&tc->sine, output, n);
    tc->left -= n;
    return tc->left ? SC_CONTINUE : SC_COMPLETE;
}

int run_callback_tone(struct tool *t, const sc_stream_params *params, struct sine *sine,
                      uint64_t frames, const char *label)
{
    struct tone_cb tc = {*sine, frames};
    sc_stream_params p = *params;
    p.output_channels = sine->channels;
    p.input_channels = 0;
    p.callback = tone_callback;
    p.userdata = &tc;
    sc_stream *s;
    bool ended;
    int rc = cb_open(t, &p, &s);
    if (rc)
        return rc;
    rc = cb_run(s, 0, false, &ended);
    if (rc == 0 && tc.left) {           /* read after the stop joined the callback thread */
        fprintf(stderr, "soundcard: the stream ended after %llu of %llu frames (soundcardd went away?)\n",
                (unsigned long long)(frames - tc.left), (unsigned long long)frames);
        rc = EXIT_RUNTIME;
    }
    if (rc == 0)
        rc = print_stats(s, label, NULL);
    return cb_close(s, rc);
}

/* ---- loopback ----------------------------------------------------------- */

struct loop {
    sc_stream *stream;      /* for sc_stream_latency(); set before the start */
    size_t frame_bytes;
    double input_sum, output_sum;   /* sc_stream_latency(), summed over the blocks */
    unsigned long blocks;
};

/* The seed's `out_data[:] = in_data`.  The latency is measured here, on
 * the callback's thread: sc_stream_latency() reads the stream's transfer
 * state, which this thread owns while the stream runs. */
static int loop_callback(const void *input, void *output, unsigned long frames,
                         const sc_time_info *time, unsigned status, void *userdata)
{
    (void)time, (void)status;
    struct loop *lp = userdata;
    memcpy(output, input, frames * lp->frame_bytes);
    double in, out;
    if (sc_stream_latency(lp->stream, &in, &out) == 0) {
        lp->input_sum += in;
        lp->output_sum += out;
        lp->blocks++;
    }
    return SC_CONTINUE;
}

int cmd_loopback(struct tool *t, int argc, char **argv)
{
    double seconds = 5, latency = 0;
    long long blocksize = 16, rate = 0, channels = 0;
    const struct opt opts[] = {
        {"seconds", OPT_NUM, &seconds, 0, MAX_SECONDS}, {"blocksize", OPT_INT, &blocksize, 1, MAX_BLOCKSIZE},
        {"rate", OPT_INT, &rate, 1000, 768000}, {"channels", OPT_INT, &channels, 1, MAX_CHANNELS},
        {"latency", OPT_NUM, &latency, 0, 10}, {0}};
    sc_server_info si;
    int rc = parse_args(t, argc, argv, opts, NULL, 0);
    if (rc != ARGS_OK || (rc = tool_connect(t)) || (rc = card_info(t, &si)))
        return rc;
    const int ch = channels ? (int)channels : si.channels;
    const double app_rate = rate ? (double)rate : si.samplerate;
    struct loop lp = {.frame_bytes = sizeof(float) * (size_t)ch};
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = "loopback";
    p.input_channels = p.output_channels = ch;
    p.samplerate = (double)rate;        /* 0: the card's */
    p.blocksize = (unsigned long)blocksize;
    p.latency = latency;
    p.callback = loop_callback;
    p.userdata = &lp;
    if ((rc = cb_open(t, &p, &lp.stream)))
        return rc;
    bool ended;     /* a loopback never completes: ending by itself is an error */
    rc = cb_run(lp.stream, seconds, true, &ended);
    if (rc == 0 && ended) {
        fprintf(stderr, "soundcard: the loopback stream ended on its own (soundcardd went away?)\n");
        rc = EXIT_RUNTIME;
    }
    if (rc == 0) {
        /* Inside the callback the block in hand has left the input side and
         * not reached the output side yet: input + output + one block is
         * the time from a frame's ADC to its DAC. */
        char extra[128] = "round-trip=? (no block ran)";
        const double n = lp.blocks ? (double)lp.blocks : 1, block = (double)blocksize / app_rate;
        if (lp.blocks)
            snprintf(extra, sizeof extra, "round-trip=%.2fms (input %.2f + block %.2f + output %.2f)",
                     1e3 * (lp.input_sum / n + block + lp.output_sum / n), 1e3 * lp.input_sum / n,
                     1e3 * block, 1e3 * lp.output_sum / n);
        rc = print_stats(lp.stream, "loopback", extra);
    }
    return cb_close(lp.stream, rc);
}
