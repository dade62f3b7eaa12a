/* first_client.c: play one second of a 440 Hz sine through soundcardd. */
#include <math.h>
#include <stdio.h>
#include <soundcard/soundcard.h>

static int fail(const char *what, long err)
{
    fprintf(stderr, "first-client: %s: %s (%s)\n", what, sc_strerror((int)err), sc_last_error());
    return 1;
}

int main(void)
{
    sc_client *c;
    sc_stream *s;
    sc_server_info card;
    sc_stream_params p;
    sc_stream_stats st;
    float block[256][2];                 /* stereo float32, interleaved */
    long err;

    if ((err = sc_client_open(&c, NULL, "first-client")) < 0)   /* NULL: $SOUNDCARD_SOCKET etc. */
        return fail("connect", err);
    if ((err = sc_get_server_info(c, &card)) < 0)               /* the tone is made at the card's rate */
        return fail("server info", err);
    sc_stream_params_init(&p);
    p.output_channels = 2;
    p.format = SC_FLOAT32;
    p.latency = 0.1;                     /* seconds of buffering this stream keeps */
    if ((err = sc_stream_open(c, &p, &s)) < 0 || (err = sc_stream_start(s)) < 0)
        return fail("open/start", err);
    const long total = lround(card.samplerate);                 /* one second */
    const double step = 2 * 3.14159265358979 * 440 / card.samplerate;
    for (long done = 0; done < total; done += err) {
        long n = total - done < 256 ? total - done : 256;
        for (long i = 0; i < n; i++)
            block[i][0] = block[i][1] = 0.2f * (float)sin(step * (double)(done + i));
        if ((err = sc_stream_write(s, block, (unsigned long)n)) < 0)  /* blocks until there is room */
            return fail("write", err);
    }
    if ((err = sc_stream_stop(s)) < 0 || (err = sc_stream_get_stats(s, &st)) < 0)  /* stop drains */
        return fail("stop", err);
    printf("first-client: frames=%llu underruns=%llu\n", (unsigned long long)st.frames,
           (unsigned long long)st.underruns);
    sc_stream_close(s);
    sc_client_close(c);
    return 0;
}
