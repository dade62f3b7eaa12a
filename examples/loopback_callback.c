/* loopback_callback.c: PySoundCard's callback-mode loopback in C.  The
 * callback copies each block of input to the output; the main thread just
 * starts the stream, sleeps 5 seconds (or --seconds S) and stops it.  The
 * socket: $SOUNDCARD_SOCKET, else the default path.
 *
 *   cc loopback_callback.c $(pkg-config --cflags --libs soundcard) -lm -o loopback_callback
 *   ./loopback_callback --seconds 2    # loopback-callback: frames=... underruns=0 overruns=0
 */
#define _POSIX_C_SOURCE 200809L          /* nanosleep under a strict -std=c11 too */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <soundcard/soundcard.h>

#define BLOCKSIZE 16                     /* frames per callback, as in the seed */
#define CHANNELS 2

static int fail(const char *what, long err)
{
    fprintf(stderr, "loopback-callback: %s: %s (%s)\n", what, sc_strerror((int)err), sc_last_error());
    return 1;
}

/* [--seconds S]: how long to run (default 5). */
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

/* def callback(in_data, out_data, time_info, status):
 *     out_data[:] = in_data
 *     return continue_flag
 * It runs on the library's own thread, with exactly BLOCKSIZE frames. */
static int callback(const void *input, void *output, unsigned long frames,
                    const sc_time_info *time, unsigned status, void *userdata)
{
    (void)time, (void)status, (void)userdata;
    memcpy(output, input, frames * CHANNELS * sizeof(float));
    return SC_CONTINUE;
}

/* time.sleep(seconds) */
static void sleep_seconds(double seconds)
{
    struct timespec left = {(time_t)seconds, (long)((seconds - floor(seconds)) * 1e9)};
    while (nanosleep(&left, &left) < 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    sc_client *c;
    sc_stream *s;
    sc_stream_params p;
    sc_stream_stats st;
    double seconds = 5;
    long err;

    if (parse_seconds(argc, argv, &seconds) < 0)
        return 2;
    if ((err = sc_client_open(&c, NULL, "loopback-callback")) < 0)  /* NULL: $SOUNDCARD_SOCKET etc. */
        return fail("connect", err);

    /* s = Stream(samplerate=fs, blocksize=blocksize, callback=callback) */
    sc_stream_params_init(&p);
    p.name = "loopback-callback";
    p.input_channels = p.output_channels = CHANNELS;
    p.format = SC_FLOAT32;
    p.samplerate = 0;                    /* the card's rate: nothing to resample */
    p.blocksize = BLOCKSIZE;
    p.callback = callback;
    if ((err = sc_stream_open(c, &p, &s)) < 0)
        return fail("open", err);

    if ((err = sc_stream_start(s)) < 0)  /* s.start(): the callback runs from now on */
        return fail("start", err);
    sleep_seconds(seconds);              /* time.sleep(5): the main thread is free meanwhile */
    if ((err = sc_stream_stop(s)) < 0)   /* s.stop(): the callback stops, the output drains */
        return fail("stop", err);

    if ((err = sc_stream_get_stats(s, &st)) < 0)
        return fail("stats", err);
    printf("loopback-callback: frames=%llu underruns=%llu overruns=%llu\n", (unsigned long long)st.frames,
           (unsigned long long)st.underruns, (unsigned long long)st.overruns);
    sc_stream_close(s);
    sc_client_close(c);
    return 0;
}
