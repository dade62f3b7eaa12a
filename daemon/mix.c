#include "mix.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* What a client's ring holds is hostile: NaN and Inf become silence, and
 * finite samples are bounded so that gain (up to 16) times a sample, a peak
 * and a sum of many streams stay finite.  2^20 is far beyond any real
 * signal (the mix is clipped to [-1, 1] anyway). */
#define SAMPLE_BOUND 1048576.0f

/* Written without branches (a comparison and a select each), so the
 * compiler can vectorise the loops that use it. */
static inline float finite_or_zero(float x)
{
    x = fabsf(x) <= FLT_MAX ? x : 0.0f;  /* NaN compares false */
    x = x > SAMPLE_BOUND ? SAMPLE_BOUND : x;
    return x < -SAMPLE_BOUND ? -SAMPLE_BOUND : x;
}

/* The common case, as many channels in the ring as on the card: one run of
 * samples.  Eight lanes each keep their own peak and count, because the
 * compiler does not vectorise a single float maximum over the loop without
 * -ffast-math (it would change which NaN wins; there is none here). */
static float add_samples(float *restrict dst, const float *restrict src, size_t n, float gain,
                         uint64_t *clipped)
{
    enum { LANES = 8 };
    float lane_peak[LANES] = { 0 };
    uint32_t lane_over[LANES] = { 0 };
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int k = 0; k < LANES; k++) {
            float v = gain * finite_or_zero(src[i + k]);
            float a = fabsf(v);
            lane_peak[k] = a > lane_peak[k] ? a : lane_peak[k];
            lane_over[k] += a > 1.0f;
            dst[i + k] += v;
        }
    }
    float peak = 0.0f;
    uint64_t over = 0;
    for (; i < n; i++) {
        float v = gain * finite_or_zero(src[i]);
        float a = fabsf(v);
        peak = a > peak ? a : peak;
        over += a > 1.0f;
        dst[i] += v;
    }
    for (int k = 0; k < LANES; k++) {
        peak = lane_peak[k] > peak ? lane_peak[k] : peak;
        over += lane_over[k];
    }
    *clipped += over;
    return peak;
}

float mix_add(float *dst, uint32_t dst_channels, const float *src, uint32_t src_channels,
              uint32_t frames, float gain, uint64_t *clipped)
{
    float peak = 0.0f;
    uint64_t over = 0;
    if (src_channels == dst_channels) {
        return add_samples(dst, src, (size_t)frames * dst_channels, gain, clipped);
    } else if (src_channels == 1) {
        for (uint32_t f = 0; f < frames; f++) {
            float v = gain * finite_or_zero(src[f]);
            float a = fabsf(v);
            peak = a > peak ? a : peak;
            over += a > 1.0f;
            for (uint32_t c = 0; c < dst_channels; c++)
                dst[(size_t)f * dst_channels + c] += v;
        }
    } else {
        uint32_t n = src_channels < dst_channels ? src_channels : dst_channels;
        for (uint32_t f = 0; f < frames; f++) {
            for (uint32_t c = 0; c < n; c++) {
                float v = gain * finite_or_zero(src[(size_t)f * src_channels + c]);
                float a = fabsf(v);
                peak = a > peak ? a : peak;
                over += a > 1.0f;
                dst[(size_t)f * dst_channels + c] += v;
            }
        }
    }
    *clipped += over;
    return peak;
}

void mix_copy_channels(float *dst, uint32_t dst_channels, const float *src, uint32_t src_channels,
                       uint32_t frames)
{
    if (dst_channels == src_channels) {
        memcpy(dst, src, (size_t)frames * dst_channels * sizeof(float));
        return;
    }
    for (uint32_t f = 0; f < frames; f++) {
        for (uint32_t c = 0; c < dst_channels; c++)
            dst[(size_t)f * dst_channels + c] =
                c < src_channels ? src[(size_t)f * src_channels + c] : 0.0f;
    }
}

uint64_t mix_clip(float *buf, size_t samples)
{
    uint64_t over = 0;
    for (size_t i = 0; i < samples; i++) {
        float x = buf[i];
        if (x > 1.0f) {
            buf[i] = 1.0f;
            over++;
        } else if (x < -1.0f) {
            buf[i] = -1.0f;
            over++;
        } else if (x != x) {
            /* +inf and -inf from two loud streams add up to NaN. */
            buf[i] = 0.0f;
            over++;
        }
    }
    return over;
}
