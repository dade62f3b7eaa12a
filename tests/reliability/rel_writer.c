/* rel_writer: a blocking-mode client for reliability.restart, one thread per
 * stream on ONE sc_client, that says on stdout (one line per event, times in
 * CLOCK_MONOTONIC seconds, the clock the test reads) what happened to it
 * while its daemon is killed and restarted.  The socket is $SOUNDCARD_SOCKET.
 *
 *   rel_writer [--play HZ]... [--record] [--listen HZ]... [--seconds S]
 *              [--amp A] [--latency S] [--reconnect T] [--name PREFIX]
 *
 *   --play HZ     a mono playback stream "PREFIX-HZ" writing a sine of
 *                 amplitude A (default 0.2) in 10 ms blocks
 *   --record      a mono capture stream "PREFIX-rec" reading 100 ms blocks
 *                 and measuring each --listen frequency in them
 *   --seconds S   audio each stream moves before it stops (default 4)
 *   --latency S   each stream's latency (default 0.2: room for a loaded
 *                 machine; the tests are about restarts, not latency)
 *   --reconnect T sc_client_set_reconnect(T) after sc_client_open
 *                 (SOUNDCARD_RECONNECT works as for any program)
 *
 * Lines:
 *   open NAME id=ID                   the stream is open and started
 *   played NAME T SECONDS             every half second of audio written
 *   heard NAME T id=ID HZ:AMP ...     every block read
 *   reopened NAME T frames=A->B       its counters restarted: a new stream
 *   error NAME T CODE MESSAGE         a call failed (the thread ends)
 *   done NAME frames=F                all S seconds moved, stopped
 * Exit: 0 when every stream finished, 3 when any ended with an error,
 * 2 on bad usage or when the client cannot open. */
#include <getopt.h>
#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <soundcard/soundcard.h>

#define MAX_STREAMS 8
#define MAX_LISTEN 4
#define PLAY_BLOCK 480    /* 10 ms at 48 kHz */
#define READ_BLOCK 4800   /* 100 ms */

struct worker {
    char name[64];
    double hz;            /* playback frequency; 0: the capture stream */
    sc_stream *stream;
    pthread_t thread;
    bool failed;
};

static double seconds = 4, amp = 0.2, latency = 0.2, rate;
static double listen_hz[MAX_LISTEN];
static int nlisten;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One whole line at a time, flushed: the test reads them as they come. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&out_lock);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    va_end(ap);
}

static void report_error(struct worker *w, const char *call, long err)
{
    say("error %s %.6f %ld %s: %s", w->name, now(), err, call, sc_last_error());
    w->failed = true;
}

/* A restarted frames counter is the sign of a reopen (ids may repeat: every
 * daemon numbers its streams from 1). */
static void watch_reopen(struct worker *w, uint64_t *last_frames)
{
    sc_stream_stats st;
    sc_stream_get_stats(w->stream, &st);
    if (st.frames < *last_frames)
        say("reopened %s %.6f frames=%llu->%llu id=%u", w->name, now(), (unsigned long long)*last_frames,
            (unsigned long long)st.frames, st.id);
    *last_frames = st.frames;
}

/* After each transfer: false (the thread ends) when it failed, else watch
 * for a reopen. */
static bool transferred(struct worker *w, const char *call, long n, long want, uint64_t *frames)
{
    if (n != want) {
        report_error(w, call, n);
        return false;
    }
    watch_reopen(w, frames);
    return true;
}

/* All moved: stop (a writer drains) and say so. */
static void *finish(struct worker *w, long moved)
{
    int err = sc_stream_stop(w->stream);
    if (err < 0)
        report_error(w, "sc_stream_stop", err);
    else
        say("done %s frames=%ld", w->name, moved);
    return NULL;
}

static void *play(void *arg)
{
    struct worker *w = arg;
    float block[PLAY_BLOCK];
    double phase = 0, step = w->hz / rate;
    long total = (long)(seconds * rate), written = 0, next_report = (long)(rate / 2);
    uint64_t frames = 0;
    while (written < total) {
        for (int i = 0; i < PLAY_BLOCK; i++) {
            block[i] = (float)(amp * sin(2 * M_PI * phase));
            phase = fmod(phase + step, 1.0);
        }
        if (!transferred(w, "sc_stream_write", sc_stream_write(w->stream, block, PLAY_BLOCK), PLAY_BLOCK, &frames))
            return NULL;
        written += PLAY_BLOCK;
        if (written >= next_report) {
            say("played %s %.6f %.2f", w->name, now(), written / rate);
            next_report += (long)(rate / 2);
        }
    }
    return finish(w, written);
}

/* Amplitude of hz in x (Goertzel through a Hann window: a sine of
 * amplitude A reads A). */
static double level(const float *x, int n, double hz)
{
    double c = 2 * cos(2 * M_PI * hz / rate), s1 = 0, s2 = 0, wsum = 0;
    for (int i = 0; i < n; i++) {
        double w = 0.5 - 0.5 * cos(2 * M_PI * i / (n - 1));
        double s0 = w * x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
        wsum += w;
    }
    double p = s1 * s1 + s2 * s2 - c * s1 * s2;
    return 2 * sqrt(p > 0 ? p : 0) / wsum;
}

static void *record(void *arg)
{
    struct worker *w = arg;
    static float block[READ_BLOCK];
    long total = (long)(seconds * rate), got = 0;
    uint64_t frames = 0;
    while (got < total) {
        if (!transferred(w, "sc_stream_read", sc_stream_read(w->stream, block, READ_BLOCK), READ_BLOCK, &frames))
            return NULL;
        got += READ_BLOCK;
        char levels[256] = "";
        for (int i = 0; i < nlisten; i++) {
            size_t len = strlen(levels);
            snprintf(levels + len, sizeof(levels) - len, " %g:%.3f", listen_hz[i],
                     level(block, READ_BLOCK, listen_hz[i]));
        }
        sc_stream_stats st;
        sc_stream_get_stats(w->stream, &st);
        say("heard %s %.6f id=%u%s", w->name, now(), st.id, levels);
    }
    return finish(w, got);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "play", required_argument, 0, 'p' },    { "record", no_argument, 0, 'r' },
        { "listen", required_argument, 0, 'l' },  { "seconds", required_argument, 0, 's' },
        { "amp", required_argument, 0, 'a' },     { "reconnect", required_argument, 0, 'R' },
        { "name", required_argument, 0, 'n' },    { "latency", required_argument, 0, 'L' },
        { 0, 0, 0, 0 },
    };
    static struct worker workers[MAX_STREAMS];
    int nworkers = 0;
    double reconnect = -1;
    const char *prefix = "rel-writer";
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if ((o == 'p' || o == 'r') && nworkers == MAX_STREAMS)
            return 2;
        switch (o) {
        case 'p':
            workers[nworkers++].hz = atof(optarg);
            break;
        case 'r':
            workers[nworkers++].hz = 0;
            break;
        case 'l':
            if (nlisten < MAX_LISTEN)
                listen_hz[nlisten++] = atof(optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'a':
            amp = atof(optarg);
            break;
        case 'R':
            reconnect = atof(optarg);
            break;
        case 'n':
            prefix = optarg;
            break;
        case 'L':
            latency = atof(optarg);
            break;
        default:
            fprintf(stderr, "usage: rel_writer [--play HZ]... [--record] [--listen HZ]... [--seconds S] "
                            "[--amp A] [--latency S] [--reconnect T] [--name PREFIX]\n");
            return 2;
        }
    }
    sc_client *c;
    int err = sc_client_open(&c, NULL, prefix);
    if (err < 0) {
        say("error client %.6f %d sc_client_open: %s", now(), err, sc_last_error());
        return 2;
    }
    if (reconnect >= 0 && (err = sc_client_set_reconnect(c, reconnect)) < 0) {
        say("error client %.6f %d sc_client_set_reconnect: %s", now(), err, sc_last_error());
        return 2;
    }
    sc_server_info info;
    if ((err = sc_get_server_info(c, &info)) < 0) {
        say("error client %.6f %d sc_get_server_info: %s", now(), err, sc_last_error());
        return 2;
    }
    rate = info.samplerate;
    for (int i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        if (w->hz > 0)
            snprintf(w->name, sizeof(w->name), "%s-%g", prefix, w->hz);
        else
            snprintf(w->name, sizeof(w->name), "%s-rec", prefix);
        sc_stream_params p;
        sc_stream_params_init(&p);
        p.name = w->name;
        p.output_channels = w->hz > 0;
        p.input_channels = w->hz == 0;
        p.latency = latency;
        if ((err = sc_stream_open(c, &p, &w->stream)) < 0 || (err = sc_stream_start(w->stream)) < 0) {
            say("error %s %.6f %d open/start: %s", w->name, now(), err, sc_last_error());
            return 2;
        }
        sc_stream_stats st;
        sc_stream_get_stats(w->stream, &st);
        say("open %s id=%u", w->name, st.id);
    }
    for (int i = 0; i < nworkers; i++)
        pthread_create(&workers[i].thread, NULL, workers[i].hz > 0 ? play : record, &workers[i]);
    bool failed = false;
    for (int i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
        failed |= workers[i].failed;
        sc_stream_close(workers[i].stream);
    }
    sc_client_close(c);
    return failed ? 3 : 0;
}
