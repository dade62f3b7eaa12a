/* One soundcard client for bench/compare: a callback stream at
 * blocksize = the card's period doing the work a JACK client does in the
 * same run.
 *
 *   sc_bench_client passthrough [LATENCY]   full duplex, 2 in 2 out: input copied to output
 *   sc_bench_client play [LATENCY]          output only, 2 channels: a quiet sine
 *
 * LATENCY (seconds) is the stream's latency parameter; without it, the
 * library's lowest (two periods at blocksize = period).
 *
 * It prints "ready" once its stream runs and then runs until SIGTERM. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

static volatile sig_atomic_t stop;
static double phase, step;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int passthrough(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                       unsigned status, void *userdata)
{
    (void)time, (void)status, (void)userdata;
    memcpy(output, input, frames * 2 * sizeof(float));
    return SC_CONTINUE;
}

static int play(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                unsigned status, void *userdata)
{
    (void)input, (void)time, (void)status, (void)userdata;
    float *out = output;
    for (unsigned long i = 0; i < frames; i++) {
        out[2 * i] = out[2 * i + 1] = (float)(0.01 * sin(phase));
        phase += step;
    }
    phase = fmod(phase, 2 * M_PI);
    return SC_CONTINUE;
}

int main(int argc, char **argv)
{
    int duplex = argc > 1 && strcmp(argv[1], "passthrough") == 0;
    if (argc < 2 || argc > 3 || (!duplex && strcmp(argv[1], "play") != 0)) {
        fprintf(stderr, "usage: sc_bench_client passthrough|play [LATENCY]\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    sc_client *c;
    int err = sc_client_open(&c, NULL, "bench");
    sc_server_info info;
    if (err == 0)
        err = sc_get_server_info(c, &info);
    if (err < 0) {
        fprintf(stderr, "sc_bench_client: %s (%s)\n", sc_strerror(err), sc_last_error());
        return 1;
    }
    step = 2 * M_PI * 440.0 / info.samplerate;
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = "bench";
    p.input_channels = duplex ? 2 : 0;
    p.output_channels = 2;
    p.blocksize = info.period;
    if (argc == 3)
        p.latency = atof(argv[2]);
    p.callback = duplex ? passthrough : play;
    sc_stream *s;
    if ((err = sc_stream_open(c, &p, &s)) < 0 || (err = sc_stream_start(s)) < 0) {
        fprintf(stderr, "sc_bench_client: %s (%s)\n", sc_strerror(err), sc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (!stop)
        pause();
    sc_stream_close(s);
    sc_client_close(c);
    return 0;
}
