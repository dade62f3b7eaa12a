/* pa_client: the path PortAudio applications take to soundcardd -- the ALSA
 * host API opening the ALSA PCM `soundcard` from the config -- for
 * tests/alsa/test_alsa.c.
 *
 *   pa_client list                        every device PortAudio sees
 *   pa_client play HZ SECONDS RATE        blocking writes, HZ at 0.3, stereo
 *   pa_client rec FILE SECONDS RATE       blocking reads into FILE (WAV)
 *   pa_client duplex HZ SECONDS FILE      one full-duplex callback stream at
 *                                         48000 Hz: plays HZ at 0.3, records
 *                                         its input into FILE
 *
 * The device is the one PortAudio's ALSA host API names "soundcard".
 * Prints "ok ..." / "FAIL ..." lines; exit 0 when all passed.  PortAudio
 * itself prints what it finds while probing (JACK, other ALSA PCMs) on
 * stderr. */
#include <math.h>
#include <poll.h>
#include <portaudio.h>
#include <sndfile.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "verify.h"

#define CHANNELS 2
#define AMP 0.3

static int failures;


static int check(PaError err, const char *what)
{
    if (err < 0) {
        printf("FAIL %s: %s\n", what, Pa_GetErrorText(err));
        failures++;
    }
    return err;
}

/* PortAudio's ALSA device named "soundcard". */
static PaDeviceIndex find_device(bool list)
{
    PaDeviceIndex found = paNoDevice;
    for (PaDeviceIndex i = 0; i < Pa_GetDeviceCount(); i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        const PaHostApiInfo *api = Pa_GetHostApiInfo(d->hostApi);
        if (list)
            printf("device %d: \"%s\" (%s) in %d out %d, %.0f Hz\n", i, d->name, api->name,
                   d->maxInputChannels, d->maxOutputChannels, d->defaultSampleRate);
        if (api->type == paALSA && strcmp(d->name, "soundcard") == 0)
            found = i;
    }
    if (!list) {
        VERIFY(found != paNoDevice, "PortAudio's ALSA host API lists the device \"soundcard\"");
        if (found != paNoDevice) {
            const PaDeviceInfo *d = Pa_GetDeviceInfo(found);
            printf("soundcard: device %d, in %d out %d, default %.0f Hz, latency out %.3f..%.3f s\n", found,
                   d->maxInputChannels, d->maxOutputChannels, d->defaultSampleRate,
                   d->defaultLowOutputLatency, d->defaultHighOutputLatency);
        }
    }
    return found;
}

/* The device's low latency, or its high one (what PortAudio applications
 * ask for when they must not glitch). */
static PaStreamParameters params(PaDeviceIndex dev, bool input, bool high)
{
    const PaDeviceInfo *d = Pa_GetDeviceInfo(dev);
    double low = input ? d->defaultLowInputLatency : d->defaultLowOutputLatency;
    double safe = input ? d->defaultHighInputLatency : d->defaultHighOutputLatency;
    PaStreamParameters p = { .device = dev, .channelCount = CHANNELS, .sampleFormat = paFloat32,
                             .suggestedLatency = high ? safe : low,
                             .hostApiSpecificStreamInfo = NULL };
    return p;
}

static int play(PaDeviceIndex dev, double hz, double seconds, double rate)
{
    PaStreamParameters out = params(dev, false, false);
    PaStream *s;
    if (check(Pa_OpenStream(&s, NULL, &out, rate, 512, paNoFlag, NULL, NULL), "Pa_OpenStream (output)") < 0)
        return 1;
    check(Pa_StartStream(s), "Pa_StartStream");
    /* PortAudio 19.6's ALSA host API drops what is still buffered at
     * Pa_StopStream ("snd_pcm_drain tends to lock up": it never drains), so
     * a quarter second of silence follows the tone to carry it out. */
    long tone = lrint(seconds * rate), total = tone + lrint(0.25 * rate), underflows = 0;
    static float buf[512 * CHANNELS];
    for (long pos = 0; pos < total; pos += 512) {
        for (long i = 0; i < 512; i++)
            buf[i * CHANNELS] = buf[i * CHANNELS + 1] =
                pos + i < tone ? (float)(AMP * sin(2 * M_PI * hz * (double)(pos + i) / rate)) : 0.0f;
        PaError err = Pa_WriteStream(s, buf, 512);
        if (err == paOutputUnderflowed)
            underflows++;
        else if (check(err, "Pa_WriteStream") < 0)
            break;
    }
    check(Pa_StopStream(s), "Pa_StopStream");
    check(Pa_CloseStream(s), "Pa_CloseStream");
    printf("play %.0f Hz %.1f s at %.0f Hz: underflows=%ld\n", hz, seconds, rate, underflows);
    VERIFY_TIMING(underflows == 0, "Pa_WriteStream never reported an underflow (%ld)", underflows);
    return failures != 0;
}

static bool write_wav(const char *path, const float *x, long frames, int rate)
{
    SF_INFO info = { .samplerate = rate, .channels = CHANNELS, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT };
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (!f)
        return false;
    bool ok = sf_writef_float(f, x, frames) == frames;
    sf_close(f);
    return ok;
}

static int rec(PaDeviceIndex dev, const char *path, double seconds, double rate)
{
    PaStreamParameters in = params(dev, true, false);
    PaStream *s;
    if (check(Pa_OpenStream(&s, &in, NULL, rate, 512, paNoFlag, NULL, NULL), "Pa_OpenStream (input)") < 0)
        return 1;
    long total = lrint(seconds * rate), overflows = 0;
    float *buf = calloc((size_t)total * CHANNELS, sizeof(*buf));
    check(Pa_StartStream(s), "Pa_StartStream");
    for (long pos = 0; pos < total;) {
        long n = total - pos < 512 ? total - pos : 512;
        PaError err = Pa_ReadStream(s, buf + pos * CHANNELS, (unsigned long)n);
        if (err == paInputOverflowed)
            overflows++;
        else if (check(err, "Pa_ReadStream") < 0)
            break;
        pos += n;
    }
    check(Pa_StopStream(s), "Pa_StopStream");
    check(Pa_CloseStream(s), "Pa_CloseStream");
    printf("rec %.1f s at %.0f Hz: overflows=%ld\n", seconds, rate, overflows);
    VERIFY(write_wav(path, buf, total, (int)rate), "recorded into %s", path);
    free(buf);
    return failures != 0;
}

struct duplex {
    double hz, rate;
    long total, pos;
    float *rec;
    unsigned long flags_seen;
    int done_pipe[2];
};

static int duplex_cb(const void *input, void *output, unsigned long frames, const PaStreamCallbackTimeInfo *time,
                     PaStreamCallbackFlags flags, void *userdata)
{
    struct duplex *d = userdata;
    (void)time;
    if (d->pos > 0)   /* the first call may see the priming */
        d->flags_seen |= flags;
    const float *in = input;
    float *out = output;
    for (unsigned long i = 0; i < frames; i++) {
        long p = d->pos + (long)i;
        float v = p < d->total ? (float)(AMP * sin(2 * M_PI * d->hz * (double)p / d->rate)) : 0.0f;
        out[i * CHANNELS] = out[i * CHANNELS + 1] = v;
        if (p < d->total && in)
            memcpy(d->rec + p * CHANNELS, in + i * CHANNELS, CHANNELS * sizeof(float));
    }
    d->pos += (long)frames;
    return d->pos >= d->total ? paComplete : paContinue;
}

static void duplex_finished(void *userdata)
{
    struct duplex *d = userdata;
    (void)!write(d->done_pipe[1], "x", 1);
}

static int duplex(PaDeviceIndex dev, double hz, double seconds, const char *path)
{
    struct duplex d = { .hz = hz, .rate = 48000, .total = lrint(seconds * 48000) };
    d.rec = calloc((size_t)d.total * CHANNELS, sizeof(float));
    if (pipe(d.done_pipe) < 0)
        return 1;
    /* The high latency: PortAudio's ALSA callback thread runs at normal
     * priority, and this machine stalls even SCHED_FIFO threads 9-15 ms a
     * few times a minute (docs/timing.md); at the low latency's 9 ms a CI
     * run saw one underflow and one overflow in 2 s. */
    PaStreamParameters in = params(dev, true, true), out = params(dev, false, true);
    PaStream *s;
    if (check(Pa_OpenStream(&s, &in, &out, 48000, 256, paNoFlag, duplex_cb, &d), "Pa_OpenStream (duplex)") < 0)
        return 1;
    check(Pa_SetStreamFinishedCallback(s, duplex_finished), "Pa_SetStreamFinishedCallback");
    check(Pa_StartStream(s), "Pa_StartStream");
    /* The finished callback says when it is over; a deadline in case not. */
    struct pollfd p = { .fd = d.done_pipe[0], .events = POLLIN };
    double t0 = now();
    int r = poll(&p, 1, (int)(seconds * 1000) + 5000);
    VERIFY(r == 1, "the callback stream finished (paComplete) after %.3f s", now() - t0);
    if (r != 1)
        check(Pa_AbortStream(s), "Pa_AbortStream");
    else
        check(Pa_StopStream(s), "Pa_StopStream");
    check(Pa_CloseStream(s), "Pa_CloseStream");
    printf("duplex %.0f Hz %.1f s: callback flags seen 0x%lx\n", hz, seconds, d.flags_seen);
    VERIFY_TIMING(!(d.flags_seen & (paOutputUnderflow | paInputOverflow)),
           "no output underflow or input overflow reported to the callback (flags 0x%lx)", d.flags_seen);
    VERIFY(write_wav(path, d.rec, d.total, 48000), "recorded into %s", path);
    free(d.rec);
    return failures != 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    keep_plugin_loaded();
    if (argc < 2) {
        fprintf(stderr, "usage: pa_client list | play HZ S RATE | rec FILE S RATE | duplex HZ S FILE\n");
        return 2;
    }
    if (check(Pa_Initialize(), "Pa_Initialize") < 0)
        return 1;
    printf("%s\n", Pa_GetVersionText());
    int rc = 2;
    PaDeviceIndex dev = find_device(!strcmp(argv[1], "list"));
    if (!strcmp(argv[1], "list"))
        rc = 0;
    else if (dev == paNoDevice)
        rc = 1;
    else if (!strcmp(argv[1], "play") && argc == 5)
        rc = play(dev, atof(argv[2]), atof(argv[3]), atof(argv[4]));
    else if (!strcmp(argv[1], "rec") && argc == 5)
        rc = rec(dev, argv[2], atof(argv[3]), atof(argv[4]));
    else if (!strcmp(argv[1], "duplex") && argc == 5)
        rc = duplex(dev, atof(argv[2]), atof(argv[3]), argv[4]);
    else
        fprintf(stderr, "pa_client: bad arguments\n");
    Pa_Terminate();
    return rc;
}
