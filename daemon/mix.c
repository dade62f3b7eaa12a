#include "mix.h"

#include <math.h>

/* What a client's ring holds is hostile: NaN and Inf become silence, and
 * finite samples are bounded so that gain (up to 16) times a sample, a peak
 * and a sum of many streams stay finite.  2^20 is far beyond any real
 * signal (the mix is clipped to [-1, 1] anyway). */
#define SAMPLE_BOUND 1048576.0f

static inline float finite_or_zero(float x)
{
    if (!isfinite(x))
        return 0.0f;
    return x > SAMPLE_BOUND ? SAMPLE_BOUND : x < -SAMPLE_BOUND ? -SAMPLE_BOUND : x;
}

float mix_add(float *dst, uint32_t dst_channels, const float *src, uint32_t src_channels,
              uint32_t frames, float gain, uint64_t *clipped)
{
    float peak = 0.0f;
    uint64_t over = 0;
    if (src_channels == dst_channels) {
        size_t n = (size_t)frames * dst_channels;
        for (size_t i = 0; i < n; i++) {
            float v = gain * finite_or_zero(src[i]);
            float a = fabsf(v);
            peak = a > peak ? a : peak;
            over += a > 1.0f;
            dst[i] += v;
        }
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
