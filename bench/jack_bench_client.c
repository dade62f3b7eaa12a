/* One JACK client for bench/compare, doing what sc_bench_client does:
 *
 *   jack_bench_client NAME passthrough   2 in 2 out: input copied to output
 *   jack_bench_client NAME play          2 out: a quiet sine
 *
 * Its ports are connected to system:capture_1/2 and system:playback_1/2, so
 * JACK mixes every client into the card as soundcardd does.  It prints
 * "ready" once active and connected, then one line "xrun" for every xrun
 * JACK reports (on JACK's notification thread, not the process thread), and
 * runs until SIGTERM. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jack/jack.h>

static volatile sig_atomic_t stop;
static jack_port_t *in[2], *out[2];
static int duplex;
static double phase, step;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int process(jack_nframes_t frames, void *arg)
{
    (void)arg;
    for (int c = 0; c < 2; c++) {
        float *o = jack_port_get_buffer(out[c], frames);
        if (duplex) {
            memcpy(o, jack_port_get_buffer(in[c], frames), frames * sizeof(float));
            continue;
        }
        double ph = phase;
        for (jack_nframes_t i = 0; i < frames; i++, ph += step)
            o[i] = (float)(0.01 * sin(ph));
    }
    if (!duplex)
        phase = fmod(phase + step * frames, 2 * M_PI);
    return 0;
}

static int on_xrun(void *arg)
{
    (void)arg;
    printf("xrun\n");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    duplex = argc > 2 && strcmp(argv[2], "passthrough") == 0;
    if (argc != 3 || (!duplex && strcmp(argv[2], "play") != 0)) {
        fprintf(stderr, "usage: jack_bench_client NAME passthrough|play\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    jack_status_t status;
    jack_client_t *client = jack_client_open(argv[1], JackNoStartServer, &status);
    if (!client) {
        fprintf(stderr, "jack_bench_client: cannot connect to jackd (status 0x%x)\n", (unsigned)status);
        return 1;
    }
    step = 2 * M_PI * 440.0 / jack_get_sample_rate(client);
    char name[32];
    for (int c = 0; c < 2; c++) {
        snprintf(name, sizeof(name), "out_%d", c + 1);
        out[c] = jack_port_register(client, name, JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
        if (duplex) {
            snprintf(name, sizeof(name), "in_%d", c + 1);
            in[c] = jack_port_register(client, name, JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
        }
    }
    jack_set_process_callback(client, process, NULL);
    jack_set_xrun_callback(client, on_xrun, NULL);
    if (jack_activate(client) != 0) {
        fprintf(stderr, "jack_bench_client: cannot activate\n");
        return 1;
    }
    for (int c = 0; c < 2; c++) {
        char sys[32];
        snprintf(sys, sizeof(sys), "system:playback_%d", c + 1);
        jack_connect(client, jack_port_name(out[c]), sys);
        if (duplex) {
            snprintf(sys, sizeof(sys), "system:capture_%d", c + 1);
            jack_connect(client, sys, jack_port_name(in[c]));
        }
    }
    printf("ready\n");
    fflush(stdout);
    while (!stop)
        pause();
    jack_deactivate(client);
    jack_client_close(client);
    return 0;
}
