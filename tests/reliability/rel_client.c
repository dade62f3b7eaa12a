/* rel_client: the well-behaved (and doomed) clients the reliability tests
 * start and stop by PID.  The socket is $SOUNDCARD_SOCKET.
 *
 *   rel_client tone     --name N [--freq HZ] [--amp A] [--latency S] [--blocksize F]
 *       one blocking-mode playback stream N: a sine, written block by block
 *   rel_client record   --name N [...]
 *       one blocking-mode capture stream N, read block by block
 *   rel_client callback --name N [...]
 *       the same sine from a callback stream
 *   rel_client multi    --name N [...]
 *       three streams at once: N-play (blocking playback, this thread),
 *       N-rec (callback capture) and N-duplex (callback full duplex)
 *   rel_client churn    --name N [--cycles C]
 *       C times (0: until SIGTERM): connect, hello, stream.open,
 *       stream.close, disconnect, all through libsoundcard
 *
 * The streaming modes run until SIGTERM, then print one line per stream,
 * "NAME: frames=F underruns=U overruns=O", and exit 0.  churn prints
 * "N: cycles=C" and exits 0, or names the first failure and exits 1.
 * Defaults: 1000 Hz, amplitude 0.1, latency 20 ms, blocksize 256. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <soundcard/soundcard.h>

struct options {
    const char *mode, *name;
    double freq, amp, latency;
    unsigned long blocksize;
    long cycles;
};

struct sine {
    double phase, step, amp;
    int channels;
};

static void sine_fill(struct sine *s, float *out, unsigned long frames)
{
    for (unsigned long i = 0; i < frames; i++) {
        float v = (float)(s->amp * sin(2.0 * M_PI * s->phase));
        for (int c = 0; c < s->channels; c++)
            *out++ = v;
        s->phase += s->step;
        s->phase -= floor(s->phase);
    }
}

static int sine_callback(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                         unsigned status, void *userdata)
{
    (void)input, (void)time, (void)status;
    if (output)
        sine_fill(userdata, output, frames);
    return SC_CONTINUE;
}

/* SIGTERM and SIGINT stay blocked in every thread (the callback threads
 * inherit the mask): library calls are never interrupted, and the main
 * thread asks for them when it is ready to stop. */
static sigset_t stop_signals;

static void block_stop_signals(void)
{
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
}

static bool stop_requested(void)
{
    const struct timespec now = { 0, 0 };
    return sigtimedwait(&stop_signals, NULL, &now) > 0;
}

static void wait_for_stop(void)
{
    int sig;
    sigwait(&stop_signals, &sig);
}

static int fail(const char *name, const char *what, int err)
{
    fprintf(stderr, "rel_client %s: %s: %s (%s)\n", name, what, sc_strerror(err), sc_last_error());
    return 1;
}

static void print_stats(sc_stream *s, const char *name)
{
    sc_stream_stats st;
    if (sc_stream_get_stats(s, &st) == 0)
        printf("%s: frames=%llu underruns=%llu overruns=%llu\n", name, (unsigned long long)st.frames,
               (unsigned long long)st.underruns, (unsigned long long)st.overruns);
    fflush(stdout);
}

/* One stream as the streaming modes open it. */
struct stream_spec {
    char name[64];
    int in, out;
    bool callback;
    struct sine sine;
    sc_stream *s;
};

static int open_and_start(sc_client *c, const struct options *o, struct stream_spec *spec)
{
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = spec->name;
    p.input_channels = spec->in;
    p.output_channels = spec->out;
    p.blocksize = o->blocksize;
    p.latency = o->latency;
    if (spec->callback) {
        p.callback = sine_callback;
        p.userdata = &spec->sine;
    }
    int err = sc_stream_open(c, &p, &spec->s);
    if (err < 0)
        return fail(spec->name, "stream.open", err);
    if (!spec->callback && spec->out) {
        /* Prime the ring so the stream starts running at once. */
        float block[256 * 2];
        unsigned long n = o->blocksize < 256 ? o->blocksize : 256;
        sine_fill(&spec->sine, block, n);
        sc_stream_write(spec->s, block, n);
    }
    err = sc_stream_start(spec->s);
    return err < 0 ? fail(spec->name, "stream.start", err) : 0;
}

/* tone, record, callback and multi: open the streams, run until SIGTERM. */
static int run_streams(const struct options *o)
{
    struct stream_spec specs[3];
    int n = 0;
    const struct sine sine = { 0, o->freq / 48000.0, o->amp, 2 };
    if (strcmp(o->mode, "multi") == 0) {
        specs[n++] = (struct stream_spec){ .in = 0, .out = 2, .callback = false, .sine = sine };
        specs[n++] = (struct stream_spec){ .in = 2, .out = 0, .callback = true, .sine = sine };
        specs[n++] = (struct stream_spec){ .in = 2, .out = 2, .callback = true, .sine = sine };
        snprintf(specs[0].name, sizeof(specs[0].name), "%s-play", o->name);
        snprintf(specs[1].name, sizeof(specs[1].name), "%s-rec", o->name);
        snprintf(specs[2].name, sizeof(specs[2].name), "%s-duplex", o->name);
    } else if (strcmp(o->mode, "record") == 0) {
        specs[n++] = (struct stream_spec){ .in = 2, .out = 0, .callback = false, .sine = sine };
        snprintf(specs[0].name, sizeof(specs[0].name), "%s", o->name);
    } else {
        specs[n++] = (struct stream_spec){ .out = 2, .callback = strcmp(o->mode, "callback") == 0, .sine = sine };
        snprintf(specs[0].name, sizeof(specs[0].name), "%s", o->name);
    }
    sc_client *c;
    int err = sc_client_open(&c, NULL, o->name);
    if (err < 0)
        return fail(o->name, "connect", err);
    sc_server_info info;
    if (sc_get_server_info(c, &info) == 0)
        for (int i = 0; i < n; i++)
            specs[i].sine.step = o->freq / info.samplerate;
    for (int i = 0; i < n; i++)
        if (open_and_start(c, o, &specs[i]))
            return 1;

    /* The first stream of tone, record and multi is written or read here,
     * block by block. */
    if (!specs[0].callback) {
        float *block = malloc(o->blocksize * 2 * sizeof(float));
        while (!stop_requested()) {
            long got;
            if (specs[0].out) {
                sine_fill(&specs[0].sine, block, o->blocksize);
                got = sc_stream_write(specs[0].s, block, o->blocksize);
            } else {
                got = sc_stream_read(specs[0].s, block, o->blocksize);
            }
            if (got < 0)
                return fail(specs[0].name, specs[0].out ? "write" : "read", (int)got);
        }
        free(block);
    } else {
        wait_for_stop();
    }
    for (int i = 0; i < n; i++) {
        print_stats(specs[i].s, specs[i].name);
        sc_stream_close(specs[i].s);
    }
    sc_client_close(c);
    return 0;
}

/* churn: the life of a short-lived client, over and over. */
static int run_churn(const struct options *o)
{
    long done = 0;
    for (; (o->cycles == 0 || done < o->cycles) && !stop_requested(); done++) {
        sc_client *c;
        int err = sc_client_open(&c, NULL, o->name);
        if (err < 0) {
            fprintf(stderr, "rel_client %s: cycle %ld: ", o->name, done);
            return fail(o->name, "connect", err);
        }
        sc_stream_params p;
        sc_stream_params_init(&p);
        p.name = o->name;
        p.output_channels = 2;
        p.latency = o->latency;
        sc_stream *s;
        err = sc_stream_open(c, &p, &s);
        if (err == 0)
            err = sc_stream_close(s);
        sc_client_close(c);
        if (err < 0) {
            fprintf(stderr, "rel_client %s: cycle %ld: ", o->name, done);
            return fail(o->name, "stream.open/stream.close", err);
        }
    }
    printf("%s: cycles=%ld\n", o->name, done);
    return 0;
}

static int usage(const char *why)
{
    fprintf(stderr,
            "rel_client: %s\n"
            "usage: rel_client tone|record|callback|multi --name N [--freq HZ] [--amp A] [--latency S] [--blocksize F]\n"
            "       rel_client churn --name N [--cycles C]\n",
            why);
    return 2;
}

int main(int argc, char **argv)
{
    struct options o = { .freq = 1000, .amp = 0.1, .latency = 0.02, .blocksize = 256 };
    if (argc < 2)
        return usage("no mode");
    o.mode = argv[1];
    static const struct option opts[] = {
        { "name", required_argument, 0, 'n' }, { "freq", required_argument, 0, 'f' },
        { "amp", required_argument, 0, 'a' },  { "latency", required_argument, 0, 'l' },
        { "blocksize", required_argument, 0, 'b' }, { "cycles", required_argument, 0, 'c' },
        { 0, 0, 0, 0 },
    };
    optind = 2;
    for (int opt; (opt = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (opt) {
        case 'n': o.name = optarg; break;
        case 'f': o.freq = atof(optarg); break;
        case 'a': o.amp = atof(optarg); break;
        case 'l': o.latency = atof(optarg); break;
        case 'b': o.blocksize = strtoul(optarg, NULL, 10); break;
        case 'c': o.cycles = strtol(optarg, NULL, 10); break;
        default: return usage("bad option");
        }
    }
    if (!o.name || optind != argc)
        return usage("--name is required, and nothing else follows the options");
    if (o.blocksize == 0 || o.blocksize > 256 || o.freq <= 0 || o.cycles < 0)
        return usage("--blocksize 1..256, --freq > 0, --cycles >= 0");
    block_stop_signals();
    if (strcmp(o.mode, "churn") == 0)
        return run_churn(&o);
    if (strcmp(o.mode, "tone") == 0 || strcmp(o.mode, "record") == 0 || strcmp(o.mode, "callback") == 0 ||
        strcmp(o.mode, "multi") == 0)
        return run_streams(&o);
    return usage("unknown mode");
}
