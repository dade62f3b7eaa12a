/* A small JACK client for the backend tests, so they do not depend on what
 * JACK's example clients happen to play or when they happen to connect.
 *
 *   sc_jack_helper wait SERVER TIMEOUT
 *       exit 0 once SERVER accepts clients and has system:playback_1, 1 if
 *       it does not within TIMEOUT seconds.  jackd has no readiness
 *       notification (no sd_notify, no ready pipe), so this is a bounded
 *       poll: one connection attempt every 50 ms until the deadline.
 *   sc_jack_helper play SERVER HZ AMP PORT...
 *       play a sine of HZ at amplitude AMP into each PORT; print "ready" on
 *       stdout once connected; run until killed or the server goes away.
 *   sc_jack_helper rec SERVER FILE.wav SECONDS PORT...
 *       record PORT... (one channel each, float WAV at the server's rate) for
 *       SECONDS; print "ready" once connected; exit 0 when the file is
 *       complete (SECONDS at most 60: it is kept in memory until then).
 *   sc_jack_helper connected SERVER PORT_A PORT_B
 *       exit 0 if PORT_A is connected to PORT_B.
 *
 * Every client gets a unique name (the pid), so several can run at once. */
#include <errno.h>
#include <jack/jack.h>
#include <math.h>
#include <semaphore.h>
#include <signal.h>
#include <sndfile.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 8

static jack_client_t *client;
static jack_port_t *ports[MAX_PORTS];
static int nports;
static sem_t wake;  /* posted by the process and shutdown callbacks */
static atomic_bool server_gone;

/* play */
static double phase, phase_step;
static float amplitude;

/* rec: the whole recording in memory (the process callback fills it, the
 * main thread writes what was published by frames_taken, release/acquire;
 * no jack_ringbuffer, whose barriers ThreadSanitizer cannot see) */
static float *recording;
static atomic_ulong frames_wanted, frames_taken;

static void quiet(const char *msg)
{
    (void)msg;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static jack_client_t *open_client(const char *server, const char *role)
{
    char name[64];
    snprintf(name, sizeof(name), "sc-%s-%d", role, (int)getpid());
    jack_status_t status;
    return jack_client_open(name, JackNoStartServer | JackServerName, &status, server);
}

static void on_shutdown(void *arg)
{
    (void)arg;
    atomic_store(&server_gone, true);
    sem_post(&wake);
}

static int play_process(jack_nframes_t frames, void *arg)
{
    (void)arg;
    float *bufs[MAX_PORTS];
    for (int p = 0; p < nports; p++)
        bufs[p] = jack_port_get_buffer(ports[p], frames);
    for (jack_nframes_t f = 0; f < frames; f++) {
        float v = amplitude * (float)sin(phase);
        phase += phase_step;
        if (phase > 2 * M_PI)
            phase -= 2 * M_PI;
        for (int p = 0; p < nports; p++)
            bufs[p][f] = v;
    }
    return 0;
}

static int rec_process(jack_nframes_t frames, void *arg)
{
    (void)arg;
    unsigned long wanted = atomic_load(&frames_wanted);
    unsigned long taken = atomic_load_explicit(&frames_taken, memory_order_relaxed);
    if (taken >= wanted)
        return 0;
    jack_nframes_t n = frames;
    if (n > wanted - taken)
        n = (jack_nframes_t)(wanted - taken);
    const float *bufs[MAX_PORTS];
    for (int p = 0; p < nports; p++)
        bufs[p] = jack_port_get_buffer(ports[p], frames);
    float *dst = recording + (size_t)taken * (size_t)nports;
    for (jack_nframes_t f = 0; f < n; f++)
        for (int p = 0; p < nports; p++)
            *dst++ = bufs[p][f];
    atomic_store_explicit(&frames_taken, taken + n, memory_order_release);
    sem_post(&wake);
    return 0;
}

static int connect_ports(char **names, int n, int output)
{
    for (int i = 0; i < n; i++) {
        const char *ours = jack_port_name(ports[i < nports ? i : nports - 1]);
        int rc = output ? jack_connect(client, ours, names[i]) : jack_connect(client, names[i], ours);
        if (rc != 0 && rc != EEXIST) {
            fprintf(stderr, "sc_jack_helper: cannot connect %s and %s\n", ours, names[i]);
            return -1;
        }
    }
    return 0;
}

static int do_wait(const char *server, double timeout)
{
    double deadline = now_seconds() + timeout;
    for (;;) {
        jack_client_t *c = open_client(server, "wait");
        if (c) {
            jack_port_t *p = jack_port_by_name(c, "system:playback_1");
            jack_client_close(c);
            if (p)
                return 0;
        }
        if (now_seconds() > deadline) {
            fprintf(stderr, "sc_jack_helper: JACK server '%s' not up within %.1f s\n", server, timeout);
            return 1;
        }
        struct timespec interval = { 0, 50 * 1000 * 1000 };
        nanosleep(&interval, NULL);
    }
}

static int do_play(const char *server, double hz, double amp, char **names, int n)
{
    client = open_client(server, "sine");
    if (!client) {
        fprintf(stderr, "sc_jack_helper: cannot connect to JACK server '%s'\n", server);
        return 1;
    }
    nports = 1;
    ports[0] = jack_port_register(client, "out", JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
    phase_step = 2 * M_PI * hz / jack_get_sample_rate(client);
    amplitude = (float)amp;
    jack_set_process_callback(client, play_process, NULL);
    jack_on_shutdown(client, on_shutdown, NULL);
    if (!ports[0] || jack_activate(client) != 0 || connect_ports(names, n, 1) < 0)
        return 1;
    printf("ready\n");
    fflush(stdout);
    while (!atomic_load(&server_gone))
        sem_wait(&wake);  /* SIGTERM/SIGKILL end us; so does the server going */
    return 0;
}

static int do_rec(const char *server, const char *path, double seconds, char **names, int n)
{
    if (n > MAX_PORTS)
        return 2;
    client = open_client(server, "rec");
    if (!client) {
        fprintf(stderr, "sc_jack_helper: cannot connect to JACK server '%s'\n", server);
        return 1;
    }
    nports = n;
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "in_%d", i + 1);
        ports[i] = jack_port_register(client, name, JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
        if (!ports[i])
            return 1;
    }
    int rate = (int)jack_get_sample_rate(client);
    SF_INFO info = { .samplerate = rate, .channels = n, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT };
    SNDFILE *file = sf_open(path, SFM_WRITE, &info);
    if (!file) {
        fprintf(stderr, "sc_jack_helper: cannot write %s: %s\n", path, sf_strerror(NULL));
        return 1;
    }
    if (seconds <= 0 || seconds > 60)
        return 2;
    recording = calloc((size_t)(seconds * rate + 1) * (size_t)n, sizeof(float));
    if (!recording)
        return 1;
    jack_set_process_callback(client, rec_process, NULL);
    jack_on_shutdown(client, on_shutdown, NULL);
    if (jack_activate(client) != 0)
        return 1;
    /* Connect first, then start counting: the file starts once connected. */
    if (connect_ports(names, n, 0) < 0)
        return 1;
    atomic_store(&frames_wanted, (unsigned long)(seconds * rate));
    printf("ready\n");
    fflush(stdout);

    unsigned long written = 0, wanted = atomic_load(&frames_wanted);
    while (written < wanted && !atomic_load(&server_gone)) {
        sem_wait(&wake);
        unsigned long taken = atomic_load_explicit(&frames_taken, memory_order_acquire);
        sf_writef_float(file, recording + (size_t)written * (size_t)n, (sf_count_t)(taken - written));
        written = taken;
    }
    jack_deactivate(client);
    jack_client_close(client);
    sf_close(file);
    free(recording);
    if (written < wanted) {
        fprintf(stderr, "sc_jack_helper: recorded %lu of %lu frames (the server went away)\n", written, wanted);
        return 1;
    }
    return 0;
}

static int do_connected(const char *server, const char *a, const char *b)
{
    client = open_client(server, "check");
    if (!client) {
        fprintf(stderr, "sc_jack_helper: cannot connect to JACK server '%s'\n", server);
        return 1;
    }
    jack_port_t *p = jack_port_by_name(client, a);
    int rc = p && jack_port_connected_to(p, b) ? 0 : 1;
    jack_client_close(client);
    return rc;
}

int main(int argc, char **argv)
{
    jack_set_error_function(quiet);
    jack_set_info_function(quiet);
    sem_init(&wake, 0, 0);
    if (argc == 4 && strcmp(argv[1], "wait") == 0)
        return do_wait(argv[2], atof(argv[3]));
    if (argc == 5 && strcmp(argv[1], "connected") == 0)
        return do_connected(argv[2], argv[3], argv[4]);
    if (argc >= 6 && strcmp(argv[1], "play") == 0)
        return do_play(argv[2], atof(argv[3]), atof(argv[4]), argv + 5, argc - 5);
    if (argc >= 6 && strcmp(argv[1], "rec") == 0)
        return do_rec(argv[2], argv[3], atof(argv[4]), argv + 5, argc - 5);
    fprintf(stderr, "usage: sc_jack_helper wait SERVER TIMEOUT | play SERVER HZ AMP PORT... | "
                    "rec SERVER FILE SECONDS PORT... | connected SERVER PORT_A PORT_B\n");
    return 2;
}
