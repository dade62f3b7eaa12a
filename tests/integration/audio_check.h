/* What the callback-mode integration tests share: a lock-free way for a
 * callback thread to wake the test (an eventfd the test waits on with a
 * deadline), a seeded noise generator, the amplitude of one frequency
 * (Goertzel), the delay between two signals by cross-correlation, and the
 * sound segments of a tap file. */
#ifndef SC_TEST_AUDIO_CHECK_H
#define SC_TEST_AUDIO_CHECK_H

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sndfile.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"

/* CHECK that also prints the check when it passes, with what was measured. */
#define VERIFY(cond, ...)                                                                    \
    do {                                                                                     \
        bool verify_ok_ = (cond);                                                            \
        printf("%s ", verify_ok_ ? "ok  " : "FAIL");                                          \
        printf(__VA_ARGS__);                                                                 \
        printf("\n");                                                                        \
        fflush(stdout);                                                                      \
        if (!verify_ok_) {                                                                   \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            harness_failures++;                                                              \
        }                                                                                    \
    } while (0)

/* ---- waking the test from a callback ----
 * The callback updates its atomics, then calls wakeup_notify() (one
 * non-blocking write: fine on an audio thread).  The test calls
 * wakeup_wait_until(), which re-checks its condition after every wakeup
 * and gives up at the deadline. */
static int wakeup_fd = -1;

static inline void wakeup_init(void)
{
    if (wakeup_fd < 0)
        wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static inline void wakeup_notify(void)
{
    uint64_t one = 1;
    (void)!write(wakeup_fd, &one, sizeof(one));
}

static inline bool wakeup_wait_until(bool (*cond)(void *ctx), void *ctx, double timeout)
{
    double deadline = now_seconds() + timeout;
    for (;;) {
        if (cond(ctx))
            return true;
        double left = deadline - now_seconds();
        if (left <= 0)
            return cond(ctx);
        struct pollfd p = { .fd = wakeup_fd, .events = POLLIN };
        /* Wake at least every 50 ms: a condition may also change without a
         * callback (the daemon's stats, a stream ending). */
        int ms = (int)(left * 1000) + 1;
        if (poll(&p, 1, ms < 50 ? ms : 50) > 0) {
            uint64_t n;
            (void)!read(wakeup_fd, &n, sizeof(n));
        }
    }
}

/* ---- signals ---- */

/* xorshift32: the same noise on every run. */
static inline float noise_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return (float)((double)x / 4294967296.0 * 2.0 - 1.0);
}

/* Amplitude of the hz component of x[0..n) (stride `stride`), Hann
 * windowed: a sine of amplitude A reads A. */
static inline double tone_amplitude(const float *x, size_t n, size_t stride, double hz, double rate)
{
    double c = 2.0 * cos(2.0 * M_PI * hz / rate), s1 = 0, s2 = 0, wsum = 0;
    for (size_t i = 0; i < n; i++) {
        double w = 0.5 - 0.5 * cos(2.0 * M_PI * (double)i / (double)(n - 1));
        wsum += w;
        double s0 = w * x[i * stride] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    double p = s1 * s1 + s2 * s2 - c * s1 * s2;
    return 2.0 * sqrt(p > 0 ? p : 0) / wsum;
}

/* Where ref[0..n) occurs in sig[0..m): the lag in [0, m-n] with the largest
 * cross-correlation, refined to a fraction of a frame by a parabola through
 * the peak and its neighbours.  *peak_ratio: the peak over the largest
 * correlation at least 8 frames away from it (how clearly it stands out). */
static inline double xcorr_delay(const float *ref, size_t n, const float *sig, size_t m,
                                 long *best_lag, double *peak_ratio)
{
    if (m < n + 2) {
        *best_lag = -1;
        *peak_ratio = 0;
        return -1;
    }
    size_t lags = m - n + 1;
    double *c = malloc(lags * sizeof(*c));
    size_t best = 0;
    for (size_t l = 0; l < lags; l++) {
        double acc = 0;
        for (size_t i = 0; i < n; i++)
            acc += (double)ref[i] * sig[l + i];
        c[l] = acc;
        if (acc > c[best])
            best = l;
    }
    double second = 0;
    for (size_t l = 0; l < lags; l++)
        if ((l + 8 <= best || l >= best + 8) && fabs(c[l]) > second)
            second = fabs(c[l]);
    double frac = 0;
    if (best > 0 && best + 1 < lags) {
        double a = c[best - 1], b = c[best], d = c[best + 1], den = a - 2 * b + d;
        if (den != 0)
            frac = 0.5 * (a - d) / den;
    }
    *best_lag = (long)best;
    *peak_ratio = second > 0 ? c[best] / second : INFINITY;
    free(c);
    return (double)best + frac;
}

/* ---- the tap ---- */

struct segment {
    long start, end;  /* frames: first and one past the last sample above the threshold */
};

/* The stretches of sound in a WAV file: samples of any channel above
 * `threshold`, split where at least `gap` frames stay below it.  Returns how
 * many (at most max), or -1 when the file cannot be read. */
static inline int wav_segments(const char *path, double threshold, long gap, struct segment *seg,
                               int max, int *rate)
{
    SF_INFO info = { 0 };
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f)
        return -1;
    *rate = info.samplerate;
    int ch = info.channels, n = 0;
    float buf[4096];
    long pos = 0, last_loud = -1;
    sf_count_t got;
    while ((got = sf_readf_float(f, buf, 4096 / ch)) > 0) {
        for (sf_count_t i = 0; i < got; i++) {
            bool loud = false;
            for (int c = 0; c < ch; c++)
                loud |= fabsf(buf[i * ch + c]) > threshold;
            if (!loud)
                continue;
            long at = pos + (long)i;
            if (last_loud < 0 || at - last_loud > gap) {
                if (n == max)
                    break;
                seg[n++] = (struct segment){ at, at + 1 };
            }
            seg[n - 1].end = at + 1;
            last_loud = at;
        }
        pos += (long)got;
    }
    sf_close(f);
    return n;
}

/* Whether SC_SANITIZED (set by CMake in sanitizer builds) names `which`. */
static inline bool sanitized(const char *which)
{
    const char *s = getenv("SC_SANITIZED");
    return s && strstr(s, which);
}

/* A number from the environment, or `fallback`. */
static inline double env_number(const char *name, double fallback)
{
    const char *v = getenv(name);
    char *end;
    double x = v ? strtod(v, &end) : 0;
    return v && *v && end != v && *end == '\0' ? x : fallback;
}

#endif
