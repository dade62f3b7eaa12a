#include "capture_source.h"

#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memlock.h"

/* The dummy card hears its output one period after the engine writes it and
 * hands over input one period after capturing it: a frame played at DAC time
 * t is captured at ADC time t when it comes back two periods later. */
#define LOOPBACK_DELAY 2

enum source_kind { SOURCE_SILENCE, SOURCE_SINE, SOURCE_LOOPBACK, SOURCE_FILE };

struct capture_source {
    enum source_kind kind;
    uint32_t rate, channels, period;
    double phase, phase_step;   /* sine */
    float *samples;             /* file (card layout) or loopback's delay line */
    uint64_t frames, position;  /* file length and read position */
};

static int parse_sine(const char *spec, double *hz)
{
    char *end;
    *hz = strtod(spec + 5, &end);
    return *end == '\0' && *hz > 0 && isfinite(*hz) ? 0 : -1;
}

/* The whole file in the card's layout: channel i from file channel i, a mono
 * file on every channel, at the card's rate. */
static int load_file(struct capture_source *src, const char *path, char *err, size_t err_len)
{
    SF_INFO info = { 0 };
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f) {
        snprintf(err, err_len, "--capture %s: %s", path, sf_strerror(NULL));
        return -1;
    }
    if (info.frames <= 0 || info.frames > (sf_count_t)1 << 28) {
        snprintf(err, err_len, "--capture %s: empty or too long", path);
        sf_close(f);
        return -1;
    }
    size_t in_frames = (size_t)info.frames, fch = (size_t)info.channels;
    float *raw = malloc(in_frames * fch * sizeof(float));
    float *mapped = malloc(in_frames * src->channels * sizeof(float));
    if (!raw || !mapped || sf_readf_float(f, raw, info.frames) != info.frames) {
        snprintf(err, err_len, "--capture %s: cannot read", path);
        sf_close(f);
        free(raw);
        free(mapped);
        return -1;
    }
    sf_close(f);
    for (size_t i = 0; i < in_frames; i++)
        for (size_t c = 0; c < src->channels; c++)
            mapped[i * src->channels + c] = fch == 1 ? raw[i] : c < fch ? raw[i * fch + c] : 0.0f;
    free(raw);
    if ((uint32_t)info.samplerate == src->rate) {
        src->samples = mapped;
        src->frames = in_frames;
        return 0;
    }
    size_t out_frames = (size_t)((double)in_frames * src->rate / info.samplerate) + 1;
    float *resampled = malloc(out_frames * src->channels * sizeof(float));
    size_t done = 0;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_error_t e = resampled ? soxr_oneshot(info.samplerate, src->rate, src->channels, mapped,
                                              in_frames, NULL, resampled, out_frames, &done, &io,
                                              NULL, NULL)
                               : "out of memory";
    free(mapped);
    if (e || done == 0) {
        snprintf(err, err_len, "--capture %s: resampling failed: %s", path, e ? e : "no output");
        free(resampled);
        return -1;
    }
    src->samples = resampled;
    src->frames = done;
    return 0;
}

struct capture_source *capture_source_open(const char *spec, uint32_t rate, uint32_t channels,
                                           uint32_t period, char *err, size_t err_len)
{
    struct capture_source *src = calloc(1, sizeof(*src));
    if (!src) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    src->rate = rate;
    src->channels = channels;
    src->period = period;
    double hz;
    if (!spec || strcmp(spec, "silence") == 0) {
        src->kind = SOURCE_SILENCE;
    } else if (strncmp(spec, "sine:", 5) == 0) {
        if (parse_sine(spec, &hz) < 0 || hz >= rate / 2.0) {
            snprintf(err, err_len, "--capture %s: the frequency must be a number in (0, %u)", spec, rate / 2);
            free(src);
            return NULL;
        }
        src->kind = SOURCE_SINE;
        src->phase_step = 2.0 * M_PI * hz / rate;
    } else if (strcmp(spec, "loopback") == 0) {
        src->kind = SOURCE_LOOPBACK;
        src->samples = calloc((size_t)LOOPBACK_DELAY * period * channels, sizeof(float));
        if (!src->samples) {
            snprintf(err, err_len, "out of memory");
            free(src);
            return NULL;
        }
    } else {
        src->kind = SOURCE_FILE;
        if (load_file(src, spec, err, err_len) < 0) {
            free(src);
            return NULL;
        }
    }
    /* The card thread reads these: locked (which brings every page in)
     * before it starts, so it takes no page fault on them. */
    if (src->samples) {
        size_t frames = src->kind == SOURCE_LOOPBACK ? (size_t)LOOPBACK_DELAY * period : src->frames;
        memlock_region(src->samples, frames * channels * sizeof(float));
    }
    return src;
}

void capture_source_close(struct capture_source *src)
{
    if (!src)
        return;
    free(src->samples);
    free(src);
}

void capture_source_fill(struct capture_source *src, float *in, uint32_t frames)
{
    size_t ch = src->channels;
    switch (src->kind) {
    case SOURCE_SILENCE:
        memset(in, 0, frames * ch * sizeof(float));
        break;
    case SOURCE_SINE:
        for (uint32_t f = 0; f < frames; f++) {
            float v = (float)(CAPTURE_SINE_AMPLITUDE * sin(src->phase));
            src->phase += src->phase_step;
            for (size_t c = 0; c < ch; c++)
                in[f * ch + c] = v;
        }
        src->phase = fmod(src->phase, 2.0 * M_PI);
        break;
    case SOURCE_LOOPBACK:
        /* The oldest period of the delay line. */
        memcpy(in, src->samples + src->position * src->period * ch, frames * ch * sizeof(float));
        break;
    case SOURCE_FILE:
        for (uint32_t f = 0; f < frames; f++) {
            memcpy(in + f * ch, src->samples + src->position * ch, ch * sizeof(float));
            if (++src->position == src->frames)
                src->position = 0;
        }
        break;
    }
}

void capture_source_played(struct capture_source *src, const float *out, uint32_t frames)
{
    if (src->kind != SOURCE_LOOPBACK)
        return;
    /* Replace the period just delivered with the one just played: it comes
     * back LOOPBACK_DELAY periods later. */
    memcpy(src->samples + src->position * src->period * src->channels, out,
           frames * src->channels * sizeof(float));
    src->position = (src->position + 1) % LOOPBACK_DELAY;
}
