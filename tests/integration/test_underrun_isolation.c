/* A client that stops writing underruns alone: its counter grows, a
 * well-behaved client playing at the same time stays at 0. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <soundcard/soundcard.h>

#include "harness.h"

struct observed {
    double staller_underruns, steady_underruns, steady_frames;
};

static bool staller_underran(cJSON *stats, void *ctx)
{
    struct observed *o = ctx;
    cJSON *st = stats_find_stream(stats, "staller"), *good = stats_find_stream(stats, "steady");
    o->staller_underruns = json_number(st, "underruns");
    o->steady_underruns = json_number(good, "underruns");
    o->steady_frames = json_number(good, "frames");
    return o->staller_underruns >= 10 && o->steady_frames > 48000;
}

int main(void)
{
    struct daemon d;
    daemon_start(&d, (const char *const[]){ NULL }, 10);
    char out[256];
    snprintf(out, sizeof(out), "%s", daemon_path(&d, "steady.out"));
    const char *steady[] = { harness_bin("soundcard"), "tone", "--freq", "1000", "--seconds", "4",
                             "--latency", "0.1", "--name", "steady", NULL };
    pid_t p = spawn_client(&d, steady, out);

    sc_client *c;
    CHECK(sc_client_open(&c, d.socket_path, "staller") == 0, "connect: %s", sc_last_error());
    sc_stream_params params;
    sc_stream_params_init(&params);
    params.name = "staller";
    params.output_channels = 2;
    params.latency = 0.05;
    sc_stream *s;
    CHECK(sc_stream_open(c, &params, &s) == 0, "open: %s", sc_last_error());
    CHECK(sc_stream_start(s) == 0, "start: %s", sc_last_error());
    static float block[2 * 480];
    for (int i = 0; i < 480; i++)
        block[2 * i] = block[2 * i + 1] = 0.1f * sinf(2 * (float)M_PI * 300 * i / 48000);
    for (int i = 0; i < 20; i++)  /* 0.2 s, then silence from us */
        CHECK(sc_stream_write(s, block, 480) == 480, "write: %s", sc_last_error());

    /* Wait (deadline 5 s) until the daemon has counted the staller's
     * underruns while the steady tone still plays. */
    struct observed o = { 0 };
    wait_for_stats(d.socket_path, staller_underran, &o, 5);
    CHECK(o.staller_underruns >= 10, "the staller's underruns: %.0f", o.staller_underruns);
    CHECK(o.steady_frames > 48000, "the steady stream played %.0f frames", o.steady_frames);
    CHECK(o.steady_underruns == 0, "the steady stream underran %.0f times", o.steady_underruns);

    sc_stream_stats mine;
    CHECK(sc_stream_get_stats(s, &mine) == 0 && mine.underruns > 0,
          "the staller's own stats show %llu underruns", (unsigned long long)mine.underruns);
    CHECK(sc_stream_close(s) == 0, "close: %s", sc_last_error());
    sc_client_close(c);

    CHECK(wait_child(p, 30) == 0, "the steady tone failed: %s", slurp(out));
    CHECK(strstr(slurp(out), "underruns=0 "), "the steady tone underran: %s", slurp(out));
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");
    return harness_finish("underrun_isolation");
}
