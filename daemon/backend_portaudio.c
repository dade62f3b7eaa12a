/* The PortAudio backend: one full-duplex callback stream (half duplex when
 * the device has only one direction) on the chosen device.  The engine cycle
 * runs inside PortAudio's callback, one card period at a time. */
#include <errno.h>
#include <portaudio.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "memlock.h"
#include "mix.h"

struct backend {
    struct backend_config config;
    backend_process_fn process;
    void *ctx;
    PaStream *stream;
    PaDeviceIndex device;
    char device_name[128];
    uint32_t rate, period, channels;   /* what the engine sees */
    int in_channels, out_channels;     /* what the device stream has (0: none) */
    float *in, *out;                   /* one period in the engine's layout */
    double input_latency, output_latency;
    _Atomic uint64_t xruns;
    _Atomic bool failed;               /* PortAudio ended the stream on its own */
    bool started;
};

static bool pa_ready;

static int ensure_initialized(char *err, size_t err_len)
{
    if (pa_ready)
        return 0;
    PaError e = Pa_Initialize();
    if (e != paNoError) {
        snprintf(err, err_len, "PortAudio: %s", Pa_GetErrorText(e));
        return -EIO;
    }
    pa_ready = true;
    return 0;
}

/* --device INDEX, or the first device whose name is NAME, else contains it;
 * NULL: PortAudio's default output device (its default input device if
 * there is no output). */
static PaDeviceIndex find_device(const char *spec)
{
    int count = Pa_GetDeviceCount();
    if (!spec) {
        PaDeviceIndex d = Pa_GetDefaultOutputDevice();
        return d != paNoDevice ? d : Pa_GetDefaultInputDevice();
    }
    char *end;
    long index = strtol(spec, &end, 10);
    if (*spec && !*end)
        return index >= 0 && index < count ? (PaDeviceIndex)index : paNoDevice;
    for (int pass = 0; pass < 2; pass++) {
        for (PaDeviceIndex i = 0; i < count; i++) {
            const PaDeviceInfo *info = Pa_GetDeviceInfo(i);
            if (info && (pass == 0 ? strcmp(info->name, spec) == 0 : strstr(info->name, spec) != NULL))
                return i;
        }
    }
    return paNoDevice;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* PaTime has an unspecified origin: place its timestamps on CLOCK_MONOTONIC
 * through the callback's own currentTime. */
static int64_t to_monotonic(PaTime t, PaTime current, int64_t now, double fallback)
{
    return (int64_t)(now + ((t > 0 ? t - current : fallback)) * 1e9);
}

static int pa_callback(const void *input, void *output, unsigned long frames,
                       const PaStreamCallbackTimeInfo *ti, PaStreamCallbackFlags flags, void *user)
{
    struct backend *b = user;
    if (flags & (paInputOverflow | paInputUnderflow | paOutputUnderflow | paOutputOverflow))
        atomic_fetch_add_explicit(&b->xruns, 1, memory_order_relaxed);
    int64_t now = monotonic_ns();
    const float *in = input;
    float *out = output;
    uint32_t ch = b->channels;
    for (unsigned long done = 0; done < frames;) {
        /* PortAudio hands over framesPerBuffer frames; chunking keeps the
         * engine at one period even if a host API does otherwise. */
        uint32_t n = (uint32_t)(frames - done < b->period ? frames - done : b->period);
        if (in)
            mix_copy_channels(b->in, ch, in + done * b->in_channels, (uint32_t)b->in_channels, n);
        else
            memset(b->in, 0, (size_t)n * ch * sizeof(float));
        double offset = (double)done / b->rate;
        struct backend_time t = {
            .period_time_ns = now + (int64_t)(offset * 1e9),
            .adc_time_ns = to_monotonic(ti->inputBufferAdcTime + offset, ti->currentTime, now,
                                        -b->input_latency + offset),
            .dac_time_ns = to_monotonic(ti->outputBufferDacTime + offset, ti->currentTime, now,
                                        b->output_latency + offset),
            .xruns = atomic_load_explicit(&b->xruns, memory_order_relaxed),
        };
        b->process(b->ctx, b->in, b->out, n, &t);
        if (out)
            mix_copy_channels(out + done * b->out_channels, (uint32_t)b->out_channels, b->out, ch, n);
        done += n;
    }
    return paContinue;
}

static void pa_finished(void *user)
{
    struct backend *b = user;
    atomic_store(&b->failed, true);
}

static void pa_close(struct backend *b)
{
    if (!b)
        return;
    if (b->stream)
        Pa_CloseStream(b->stream);
    free(b->in);
    free(b->out);
    free(b);
    /* PortAudio stays initialised: Pa_Terminate() asserts and aborts when
     * its JACK host API has lost its server, which is one of the ways a
     * card goes away.  So its device list is the one from the first open. */
}

static int pa_open(struct backend **out, const struct backend_config *config,
                   backend_process_fn process, void *ctx, char *err, size_t err_len)
{
    int rc = ensure_initialized(err, err_len);
    if (rc < 0)
        return rc;
    PaDeviceIndex dev = find_device(config->device);
    const PaDeviceInfo *info = dev != paNoDevice ? Pa_GetDeviceInfo(dev) : NULL;
    if (!info) {
        /* The daemon is not running, so `soundcard devices` cannot list
         * them: say what there is. */
        int count = Pa_GetDeviceCount();
        size_t len = (size_t)snprintf(err, err_len, "PortAudio: no device '%s' (%s",
                                      config->device ? config->device : "default",
                                      count > 0 ? "it has" : "it has none");
        for (PaDeviceIndex i = 0; i < count && len < err_len; i++) {
            const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
            len += (size_t)snprintf(err + len, err_len - len, "%s %d '%s'", i ? "," : "", i, d ? d->name : "?");
        }
        if (len < err_len)
            snprintf(err + len, err_len - len, ")");
        return -ENODEV;
    }
    struct backend *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    b->config = *config;
    b->process = process;
    b->ctx = ctx;
    b->device = dev;
    snprintf(b->device_name, sizeof(b->device_name), "%s", info->name);
    b->period = config->period;
    b->in_channels = info->maxInputChannels < (int)config->channels ? info->maxInputChannels : (int)config->channels;
    b->out_channels = info->maxOutputChannels < (int)config->channels ? info->maxOutputChannels : (int)config->channels;
    b->channels = (uint32_t)(b->out_channels ? b->out_channels : b->in_channels);

    PaStreamParameters in_p = { .device = dev, .channelCount = b->in_channels, .sampleFormat = paFloat32,
                                .suggestedLatency = info->defaultLowInputLatency };
    PaStreamParameters out_p = { .device = dev, .channelCount = b->out_channels, .sampleFormat = paFloat32,
                                 .suggestedLatency = info->defaultLowOutputLatency };
    const PaStreamParameters *inp = b->in_channels ? &in_p : NULL, *outp = b->out_channels ? &out_p : NULL;
    /* The rate asked for, else the device's own. */
    double rate = config->rate;
    if (Pa_IsFormatSupported(inp, outp, rate) != paFormatIsSupported)
        rate = info->defaultSampleRate;
    b->rate = (uint32_t)rate;
    PaError e = Pa_OpenStream(&b->stream, inp, outp, rate, b->period, paClipOff | paDitherOff,
                              pa_callback, b);
    if (e != paNoError) {
        snprintf(err, err_len, "PortAudio: cannot open '%s' (%d in, %d out, %.0f Hz, %u frames): %s",
                 info->name, b->in_channels, b->out_channels, rate, b->period, Pa_GetErrorText(e));
        b->stream = NULL;
        pa_close(b);
        return -EIO;
    }
    Pa_SetStreamFinishedCallback(b->stream, pa_finished);
    const PaStreamInfo *si = Pa_GetStreamInfo(b->stream);
    b->input_latency = si ? si->inputLatency : 0;
    b->output_latency = si ? si->outputLatency : 0;
    b->in = calloc((size_t)b->period * b->channels, sizeof(float));
    b->out = calloc((size_t)b->period * b->channels, sizeof(float));
    memlock_region(b->in, (size_t)b->period * b->channels * sizeof(float));
    memlock_region(b->out, (size_t)b->period * b->channels * sizeof(float));
    if (!b->in || !b->out) {
        snprintf(err, err_len, "out of memory");
        pa_close(b);
        return -ENOMEM;
    }
    *out = b;
    return 0;
}

static int pa_start(struct backend *b)
{
    atomic_store(&b->failed, false);
    if (Pa_StartStream(b->stream) != paNoError)
        return -EIO;
    b->started = true;
    return 0;
}

static void pa_stop(struct backend *b)
{
    if (!b->started)
        return;
    Pa_AbortStream(b->stream);  /* returns once the callback will not run again */
    b->started = false;
}

static void pa_info(struct backend *b, struct backend_info *info)
{
    snprintf(info->device, sizeof(info->device), "%s", b->device_name);
    info->rate = b->rate;
    info->period = b->period;
    info->channels = b->channels;
    info->input_latency = b->input_latency;
    info->output_latency = b->output_latency;
}

static bool pa_alive(struct backend *b)
{
    return !atomic_load(&b->failed) && (!b->started || Pa_IsStreamActive(b->stream) == 1);
}

static int pa_list_devices(struct backend *b, struct backend_device *out, int max)
{
    (void)b;  /* PortAudio lists devices with or without an open stream */
    int count = Pa_GetDeviceCount();
    PaDeviceIndex def_in = Pa_GetDefaultInputDevice(), def_out = Pa_GetDefaultOutputDevice();
    for (int i = 0; i < count && i < max; i++) {
        const PaDeviceInfo *info = Pa_GetDeviceInfo(i);
        const PaHostApiInfo *api = info ? Pa_GetHostApiInfo(info->hostApi) : NULL;
        if (!info)
            continue;
        struct backend_device *d = &out[i];
        memset(d, 0, sizeof(*d));
        snprintf(d->name, sizeof(d->name), "%s", info->name);
        snprintf(d->api, sizeof(d->api), "%s", api ? api->name : "?");
        d->max_input_channels = info->maxInputChannels;
        d->max_output_channels = info->maxOutputChannels;
        d->default_samplerate = info->defaultSampleRate;
        d->low_input_latency = info->defaultLowInputLatency;
        d->low_output_latency = info->defaultLowOutputLatency;
        d->high_input_latency = info->defaultHighInputLatency;
        d->high_output_latency = info->defaultHighOutputLatency;
        d->is_default_input = i == def_in;
        d->is_default_output = i == def_out;
    }
    return count < 0 ? 0 : count;
}

const struct backend_ops backend_portaudio = {
    .name = "portaudio",
    .open = pa_open,
    .start = pa_start,
    .stop = pa_stop,
    .close = pa_close,
    .info = pa_info,
    .alive = pa_alive,
    .list_devices = pa_list_devices,
};
