/* The JACK backend: soundcardd is one JACK client, "soundcard", with
 * capture_N and playback_N ports.  The engine cycle runs in JACK's process
 * callback; rate and period are the JACK server's. */
#include <errno.h>
#include <jack/jack.h>
#include <jack/thread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "memlock.h"
#include "log.h"

/* JACK periods go up to 8192 frames: buffers sized once for the largest,
 * so a buffer-size change never allocates. */
#define BUFFER_FRAMES 8192u
#define MAX_PORTS 64u

struct backend {
    struct backend_config config;
    backend_process_fn process;
    void *ctx;
    jack_client_t *client;
    jack_port_t *capture[MAX_PORTS], *playback[MAX_PORTS];
    uint32_t channels;
    _Atomic uint32_t period;
    float *in, *out;  /* interleaved, BUFFER_FRAMES frames */
    _Atomic uint64_t xruns;
    _Atomic bool dead;
    bool active;
};

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int jack_process(jack_nframes_t frames, void *arg)
{
    struct backend *b = arg;
    if (frames > BUFFER_FRAMES)
        return 0;
    uint32_t ch = b->channels;
    for (uint32_t c = 0; c < ch; c++) {
        const float *src = jack_port_get_buffer(b->capture[c], frames);
        for (jack_nframes_t f = 0; f < frames; f++)
            b->in[(size_t)f * ch + c] = src[f];
    }
    /* JACK time is microseconds on its own clock: place the cycle on
     * CLOCK_MONOTONIC through the offset between the two now. */
    jack_nframes_t cur_frames;
    jack_time_t cur_usecs, next_usecs;
    float period_usecs;
    int64_t now = monotonic_ns(), start = now;
    if (jack_get_cycle_times(b->client, &cur_frames, &cur_usecs, &next_usecs, &period_usecs) == 0)
        start = now - ((int64_t)jack_get_time() - (int64_t)cur_usecs) * 1000;
    int64_t period_ns = (int64_t)frames * 1000000000 / jack_get_sample_rate(b->client);
    jack_latency_range_t in_lat, out_lat;
    jack_port_get_latency_range(b->capture[0], JackCaptureLatency, &in_lat);
    jack_port_get_latency_range(b->playback[0], JackPlaybackLatency, &out_lat);
    struct backend_time t = {
        .period_time_ns = start,
        .adc_time_ns = start - period_ns - (int64_t)in_lat.max * 1000000000 / jack_get_sample_rate(b->client),
        .dac_time_ns = start + period_ns + (int64_t)out_lat.max * 1000000000 / jack_get_sample_rate(b->client),
        .xruns = atomic_load_explicit(&b->xruns, memory_order_relaxed),
    };
    b->process(b->ctx, b->in, b->out, frames, &t);
    for (uint32_t c = 0; c < ch; c++) {
        float *dst = jack_port_get_buffer(b->playback[c], frames);
        for (jack_nframes_t f = 0; f < frames; f++)
            dst[f] = b->out[(size_t)f * ch + c];
    }
    return 0;
}

static int jack_xrun(void *arg)
{
    struct backend *b = arg;
    atomic_fetch_add_explicit(&b->xruns, 1, memory_order_relaxed);
    return 0;
}

static int jack_buffer_size(jack_nframes_t frames, void *arg)
{
    struct backend *b = arg;
    atomic_store(&b->period, frames);
    return frames <= BUFFER_FRAMES ? 0 : 1;
}

static void jack_shutdown(jack_status_t code, const char *reason, void *arg)
{
    struct backend *b = arg;
    (void)code;
    (void)reason;
    atomic_store(&b->dead, true);
}

static void jack_close_backend(struct backend *b)
{
    if (!b)
        return;
    if (b->client)
        jack_client_close(b->client);
    free(b->in);
    free(b->out);
    free(b);
}

static int register_ports(struct backend *b, char *err, size_t err_len)
{
    for (uint32_t c = 0; c < b->channels; c++) {
        char name[32];
        snprintf(name, sizeof(name), "capture_%u", c + 1);
        b->capture[c] = jack_port_register(b->client, name, JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
        snprintf(name, sizeof(name), "playback_%u", c + 1);
        b->playback[c] = jack_port_register(b->client, name, JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
        if (!b->capture[c] || !b->playback[c]) {
            snprintf(err, err_len, "JACK: cannot register port %s", name);
            return -EIO;
        }
    }
    return 0;
}

/* libjack prints its own diagnostics to stderr ("Cannot connect to server
 * socket...", five lines for a server that is not running): they go to the
 * debug log, so that a daemon that cannot start says why in one line. */
static void jack_message(const char *msg)
{
    log_debug("libjack: %s", msg);
}

static int jack_open_backend(struct backend **out, const struct backend_config *config,
                             backend_process_fn process, void *ctx, char *err, size_t err_len)
{
    if (config->channels > MAX_PORTS) {
        snprintf(err, err_len, "JACK: at most %u channels", MAX_PORTS);
        return -EINVAL;
    }
    struct backend *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    b->config = *config;
    b->process = process;
    b->ctx = ctx;
    b->channels = config->channels;
    jack_set_error_function(jack_message);
    jack_set_info_function(jack_message);
    jack_status_t status;
    const char *server = config->device;  /* --device names the JACK server */
    b->client = jack_client_open("soundcard", JackNoStartServer | JackUseExactName | (server ? JackServerName : 0),
                                 &status, server);
    if (!b->client) {
        /* libjack's default server: $JACK_DEFAULT_SERVER, else "default" */
        const char *env = getenv("JACK_DEFAULT_SERVER");
        snprintf(err, err_len, "JACK: cannot connect to server '%s' (status 0x%x%s)",
                 server ? server : env && *env ? env : "default", (unsigned)status,
                 status & JackNameNotUnique ? ": a client named 'soundcard' exists" : ": is jackd running?");
        jack_close_backend(b);
        return -ECONNREFUSED;
    }
    b->in = calloc((size_t)BUFFER_FRAMES * b->channels, sizeof(float));
    b->out = calloc((size_t)BUFFER_FRAMES * b->channels, sizeof(float));
    memlock_region(b->in, (size_t)BUFFER_FRAMES * b->channels * sizeof(float));
    memlock_region(b->out, (size_t)BUFFER_FRAMES * b->channels * sizeof(float));
    int rc = b->in && b->out ? register_ports(b, err, err_len) : -ENOMEM;
    if (rc == -ENOMEM)
        snprintf(err, err_len, "out of memory");
    if (rc < 0) {
        jack_close_backend(b);
        return rc;
    }
    atomic_store(&b->period, jack_get_buffer_size(b->client));
    jack_set_process_callback(b->client, jack_process, b);
    jack_set_xrun_callback(b->client, jack_xrun, b);
    jack_set_buffer_size_callback(b->client, jack_buffer_size, b);
    jack_on_info_shutdown(b->client, jack_shutdown, b);
    *out = b;
    return 0;
}

/* Our playback_N to the N-th physical playback port, the N-th physical
 * capture port to our capture_N. */
static void connect_physical(struct backend *b)
{
    const char **sinks = jack_get_ports(b->client, NULL, JACK_DEFAULT_AUDIO_TYPE, JackPortIsPhysical | JackPortIsInput);
    const char **sources = jack_get_ports(b->client, NULL, JACK_DEFAULT_AUDIO_TYPE, JackPortIsPhysical | JackPortIsOutput);
    bool more_sinks = sinks != NULL, more_sources = sources != NULL;
    for (uint32_t c = 0; c < b->channels; c++) {
        more_sinks = more_sinks && sinks[c];
        more_sources = more_sources && sources[c];
        if (more_sinks)
            jack_connect(b->client, jack_port_name(b->playback[c]), sinks[c]);
        if (more_sources)
            jack_connect(b->client, sources[c], jack_port_name(b->capture[c]));
    }
    jack_free(sinks);
    jack_free(sources);
}

static int jack_start(struct backend *b)
{
    if (jack_activate(b->client) != 0)
        return -EIO;
    b->active = true;
    if (!b->config.no_connect)
        connect_physical(b);
    return 0;
}

static void jack_stop(struct backend *b)
{
    if (!b->active)
        return;
    if (!atomic_load(&b->dead))
        jack_deactivate(b->client);  /* returns once process will not run again */
    b->active = false;
}

static void jack_info(struct backend *b, struct backend_info *info)
{
    snprintf(info->device, sizeof(info->device), "JACK server '%s'",
             b->config.device ? b->config.device : "default");
    info->rate = jack_get_sample_rate(b->client);
    info->period = atomic_load(&b->period);
    info->channels = b->channels;
    jack_latency_range_t in_lat, out_lat;
    jack_port_get_latency_range(b->capture[0], JackCaptureLatency, &in_lat);
    jack_port_get_latency_range(b->playback[0], JackPlaybackLatency, &out_lat);
    info->input_latency = (double)(info->period + in_lat.max) / info->rate;
    info->output_latency = (double)(info->period + out_lat.max) / info->rate;
}

static bool jack_alive(struct backend *b)
{
    return !atomic_load(&b->dead);
}

static int jack_list_devices(struct backend *b, struct backend_device *out, int max)
{
    if (!b || max < 1)
        return b ? 1 : 0;
    struct backend_info info;
    jack_info(b, &info);
    out[0] = (struct backend_device){
        .api = "JACK",
        .max_input_channels = (int)b->channels,
        .max_output_channels = (int)b->channels,
        .default_samplerate = info.rate,
        .low_input_latency = info.input_latency,
        .low_output_latency = info.output_latency,
        .high_input_latency = info.input_latency,
        .high_output_latency = info.output_latency,
        .is_default_input = true,
        .is_default_output = true,
    };
    snprintf(out[0].name, sizeof(out[0].name), "%s", info.device);
    return 1;
}

const struct backend_ops backend_jack = {
    .name = "jack",
    .open = jack_open_backend,
    .start = jack_start,
    .stop = jack_stop,
    .close = jack_close_backend,
    .info = jack_info,
    .alive = jack_alive,
    .list_devices = jack_list_devices,
};
