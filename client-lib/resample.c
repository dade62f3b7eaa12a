#include "resample.h"

#include <soxr.h>
#include <string.h>

#include "internal.h"

struct resampler *resampler_create(double in_rate, double out_rate, unsigned channels, int *err)
{
    *err = 0;
    if (in_rate == out_rate)
        return NULL;
    soxr_error_t e;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    /* High quality (20-bit) with a minimum-phase filter: about 2 ms of delay
     * and output in steps the size of the input.  Linear or intermediate
     * phase delay 15-20 ms and release output in bursts of ~900 frames,
     * which would drain a low-latency ring between bursts. */
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, SOXR_MINIMUM_PHASE);
    soxr_t s = soxr_create(in_rate, out_rate, channels, &e, &io, &q, NULL);
    if (!s) {
        *err = sc__fail(SC_EUNSUPPORTED, "libsoxr cannot convert %g Hz to %g Hz: %s", in_rate,
                        out_rate, e ? e : "?");
        return NULL;
    }
    return (struct resampler *)s;
}

void resampler_free(struct resampler *r)
{
    if (r)
        soxr_delete((soxr_t)r);
}

size_t resampler_process(struct resampler *r, unsigned channels, const float *in, size_t in_frames,
                         size_t *used, float *out, size_t out_frames)
{
    if (!r) {
        size_t n = in ? (in_frames < out_frames ? in_frames : out_frames) : 0;
        if (n)
            memcpy(out, in, n * channels * sizeof(float));
        *used = n;
        return n;
    }
    size_t produced = 0;
    *used = 0;
    soxr_process((soxr_t)r, in, in ? in_frames : 0, in ? used : NULL, out, out_frames, &produced);
    return produced;
}

double resampler_delay(struct resampler *r)
{
    return r ? soxr_delay((soxr_t)r) : 0.0;
}
