/* start_stop.c: PySoundCard's context-manager style in C.
 *
 *     with Stream(samplerate=fs, blocksize=blocksize, callback=callback):
 *         ...                 # the main thread waits while the callback plays
 *
 * stream_enter() is the `with` line (open + start) and stream_exit() the end
 * of the block (stop + close).  The callback plays a 440 Hz tone for exactly
 * 5 seconds (or --seconds S) and then ends the stream itself with
 * SC_COMPLETE; the library calls `finished`, once, which wakes the main
 * thread.  The socket: $SOUNDCARD_SOCKET, else the default path.
 *
 *   cc start_stop.c $(pkg-config --cflags --libs soundcard) -lm -o start_stop
 *   ./start_stop --seconds 1      # start-stop: played=48000 frames (1.000 s) finished=1 ...
 */
#define _POSIX_C_SOURCE 200809L          /* pthreads under a strict -std=c11 too */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <soundcard/soundcard.h>

#define BLOCKSIZE 256                    /* frames per callback */
#define TWO_PI 6.283185307179586

static int fail(const char *what, long err)
{
    fprintf(stderr, "start-stop: %s: %s (%s)\n", what, sc_strerror((int)err), sc_last_error());
    return 1;
}

/* [--seconds S]: how long to play (default 5). */
static int parse_seconds(int argc, char **argv, double *seconds)
{
    char *end = NULL;
    if (argc == 3 && strcmp(argv[1], "--seconds") == 0)
        *seconds = strtod(argv[2], &end);
    if (argc == 1 || (end && *end == '\0' && *seconds >= 0 && *seconds <= 1e6))
        return 0;
    fprintf(stderr, "usage: %s [--seconds S]\n", argv[0]);
    return -1;
}

/* What the callback and the main thread share.  Only the callback touches
 * phase, step and left while the stream runs; `finished` under the lock. */
struct tone {
    double phase, step;                  /* in cycles */
    long left;                           /* frames still to play */
    pthread_mutex_t lock;
    pthread_cond_t done;
    int finished;                        /* times finished() ran */
};

/* Runs on the library's thread, BLOCKSIZE frames at a time.  The last block
 * gets the frames that are left; the rest of it stays silent (the output
 * starts zeroed), and SC_COMPLETE ends the stream once that has played. */
static int callback(const void *input, void *output, unsigned long frames,
                    const sc_time_info *time, unsigned status, void *userdata)
{
    (void)input, (void)time, (void)status;
    struct tone *t = userdata;
    float (*out)[2] = output;            /* stereo float32, interleaved */
    unsigned long n = t->left < (long)frames ? (unsigned long)t->left : frames;
    for (unsigned long i = 0; i < n; i++) {
        out[i][0] = out[i][1] = 0.2f * (float)sin(TWO_PI * t->phase);
        t->phase += t->step;
        t->phase -= floor(t->phase);
    }
    t->left -= (long)n;
    return t->left > 0 ? SC_CONTINUE : SC_COMPLETE;
}

/* The library calls this once when the stream has ended. */
static void finished(void *userdata)
{
    struct tone *t = userdata;
    pthread_mutex_lock(&t->lock);
    t->finished++;
    pthread_cond_signal(&t->done);
    pthread_mutex_unlock(&t->lock);
}

/* with Stream(...):  open and start, or NULL with *err set. */
static sc_stream *stream_enter(sc_client *c, const sc_stream_params *p, long *err)
{
    sc_stream *s;
    if ((*err = sc_stream_open(c, p, &s)) < 0)
        return NULL;
    if ((*err = sc_stream_start(s)) < 0) {
        sc_stream_close(s);
        return NULL;
    }
    return s;
}

/* The end of the with-block: stop (drains; nothing is left after
 * SC_COMPLETE) and close, whatever the block did. */
static long stream_exit(sc_stream *s)
{
    long err = sc_stream_stop(s);
    long close_err = sc_stream_close(s);
    return err < 0 ? err : close_err;
}

int main(int argc, char **argv)
{
    sc_client *c;
    sc_server_info card;
    sc_stream_params p;
    sc_stream_stats st;
    double seconds = 5;
    long err;

    if (parse_seconds(argc, argv, &seconds) < 0)
        return 2;
    if ((err = sc_client_open(&c, NULL, "start-stop")) < 0)    /* NULL: $SOUNDCARD_SOCKET etc. */
        return fail("connect", err);
    if ((err = sc_get_server_info(c, &card)) < 0)              /* the card's rate, for the tone */
        return fail("server info", err);
    const long total = lround(seconds * card.samplerate);
    struct tone t = {.step = 440 / card.samplerate, .left = total,
                     .lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

    sc_stream_params_init(&p);
    p.name = "start-stop";
    p.output_channels = 2;
    p.format = SC_FLOAT32;
    p.samplerate = 0;                    /* the card's rate: the tone's length is exact */
    p.blocksize = BLOCKSIZE;
    p.latency = 0.05;
    p.callback = callback;
    p.userdata = &t;
    p.finished = finished;

    sc_stream *s = stream_enter(c, &p, &err);                  /* with Stream(...): */
    if (!s)
        return fail("open/start", err);
    {
        /* The with-block's body: the main thread waits while the callback plays. */
        pthread_mutex_lock(&t.lock);
        while (!t.finished)
            pthread_cond_wait(&t.done, &t.lock);
        pthread_mutex_unlock(&t.lock);
        if ((err = sc_stream_get_stats(s, &st)) < 0)
            return fail("stats", err);
    }
    if ((err = stream_exit(s)) < 0)                            /* the end of the with-block */
        return fail("stop/close", err);

    if (t.left > 0) {                    /* finished ran early: the daemon went away */
        fprintf(stderr, "start-stop: the stream ended with %ld frames unplayed\n", t.left);
        return 1;
    }
    printf("start-stop: played=%ld frames (%.3f s) finished=%d underruns=%llu\n", total,
           (double)total / card.samplerate, t.finished, (unsigned long long)st.underruns);
    sc_client_close(c);
    return 0;
}
