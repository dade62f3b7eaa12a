/* loopback_rw.c: PySoundCard's read/write-mode loopback in C.  Read a block
 * of the card's input and write it straight back out, for 5 seconds (or
 * --seconds S).  The socket: $SOUNDCARD_SOCKET, else the default path.
 *
 *   cc loopback_rw.c $(pkg-config --cflags --libs soundcard) -lm -o loopback_rw
 *   ./loopback_rw --seconds 2     # loopback-rw: frames=... underruns=0 overruns=0
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <soundcard/soundcard.h>

#define BLOCKSIZE 16                     /* frames per read and write, as in the seed */

static int fail(const char *what, long err)
{
    fprintf(stderr, "loopback-rw: %s: %s (%s)\n", what, sc_strerror((int)err), sc_last_error());
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

int main(int argc, char **argv)
{
    sc_client *c;
    sc_stream *s;
    sc_server_info card;
    sc_stream_params p;
    sc_stream_stats st;
    float block[BLOCKSIZE][2];           /* stereo float32, interleaved */
    double seconds = 5;
    long err;

    if (parse_seconds(argc, argv, &seconds) < 0)
        return 2;
    if ((err = sc_client_open(&c, NULL, "loopback-rw")) < 0)    /* NULL: $SOUNDCARD_SOCKET etc. */
        return fail("connect", err);
    if ((err = sc_get_server_info(c, &card)) < 0)
        return fail("server info", err);

    /* Stream(samplerate=fs, blocksize=blocksize): full duplex, no callback. */
    sc_stream_params_init(&p);
    p.name = "loopback-rw";
    p.input_channels = p.output_channels = 2;
    p.format = SC_FLOAT32;
    p.samplerate = 0;                    /* the card's rate: nothing to resample */
    p.blocksize = BLOCKSIZE;
    if ((err = sc_stream_open(c, &p, &s)) < 0)
        return fail("open", err);

    /* Prime the output with silence before starting: a stopped stream takes
     * what fits without waiting.  The loop below then has the stream's
     * whole buffer as slack, instead of one card period, to bring each
     * block back. */
    memset(block, 0, sizeof block);
    long room = sc_stream_write_available(s);
    if (room < 0)
        return fail("write available", room);
    for (; room >= BLOCKSIZE; room -= BLOCKSIZE)
        if ((err = sc_stream_write(s, block, BLOCKSIZE)) < 0)
            return fail("prime", err);

    if ((err = sc_stream_start(s)) < 0)
        return fail("start", err);
    /* for n in range(int(fs*5/blocksize)): s.write(s.read(blocksize)) */
    const long blocks = lround(seconds * card.samplerate / BLOCKSIZE);
    for (long n = 0; n < blocks; n++) {
        if ((err = sc_stream_read(s, block, BLOCKSIZE)) < 0)     /* waits for a block of input */
            return fail("read", err);
        if ((err = sc_stream_write(s, block, BLOCKSIZE)) < 0)    /* waits for room */
            return fail("write", err);
    }
    if ((err = sc_stream_stop(s)) < 0 || (err = sc_stream_get_stats(s, &st)) < 0)  /* stop drains */
        return fail("stop", err);
    printf("loopback-rw: frames=%llu underruns=%llu overruns=%llu\n", (unsigned long long)st.frames,
           (unsigned long long)st.underruns, (unsigned long long)st.overruns);
    sc_stream_close(s);
    sc_client_close(c);
    return 0;
}
