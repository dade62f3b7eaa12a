/* Reading the daemon's tap for the ALSA tests: where a tone is, the
 * stretches of sound, and rising edges of clicks. */
#ifndef SC_TEST_ALSA_TAP_H
#define SC_TEST_ALSA_TAP_H

#include <math.h>
#include <sndfile.h>
#include <stdlib.h>

#include "audio_check.h"

/* One channel of a WAV file as float (malloc'ed), or NULL. */
static inline float *tap_channel(const char *path, int channel, long *frames, int *rate)
{
    SF_INFO info = { 0 };
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f || channel >= info.channels) {
        if (f)
            sf_close(f);
        return NULL;
    }
    float *all = malloc((size_t)info.frames * (size_t)info.channels * sizeof(float));
    float *x = malloc((size_t)info.frames * sizeof(float) + 1);
    sf_count_t n = all ? sf_readf_float(f, all, info.frames) : 0;
    sf_close(f);
    for (sf_count_t i = 0; x && i < n; i++)
        x[i] = all[i * info.channels + channel];
    free(all);
    *frames = (long)n;
    *rate = info.samplerate;
    return x;
}

/* Where `hz` is at least `min_amp` in a channel: the start of the first and
 * the end of the last 10 ms block where it is (seconds); false if nowhere. */
static inline bool tone_span(const char *path, int channel, double hz, double min_amp, double *start,
                             double *end)
{
    long n;
    int rate;
    float *x = tap_channel(path, channel, &n, &rate);
    if (!x)
        return false;
    long blk = rate / 100;
    *start = *end = -1;
    for (long b = 0; b + blk <= n; b += blk) {
        if (tone_amplitude(x + b, (size_t)blk, 1, hz, rate) >= min_amp) {
            if (*start < 0)
                *start = (double)b / rate;
            *end = (double)(b + blk) / rate;
        }
    }
    free(x);
    return *start >= 0;
}

/* Frames where a channel first crosses `level` upwards after at least
 * `quiet` frames below it: the clicks' rising edges.  Returns how many (at
 * most max). */
static inline int rising_edges(const float *x, long n, float level, long quiet, long *at, int max)
{
    int count = 0;
    long below = quiet;
    for (long i = 0; i < n && count < max; i++) {
        if (x[i] < level) {
            below++;
            continue;
        }
        if (below >= quiet)
            at[count++] = i;
        below = 0;
    }
    return count;
}

#endif
