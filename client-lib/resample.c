#include "resample.h"

#include <errno.h>
#include <soxr.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* soxr places output frame n at input time n / ratio from the very first
 * frame (it trims its filter's delay), so what it holds back is exactly the
 * input taken, scaled, minus the output given: counted here, because
 * soxr_delay() reports less than that for a minimum-phase filter. */
struct resampler {
    soxr_t soxr;
    double ratio;               /* out_rate / in_rate */
    uint64_t taken, given;      /* frames in and out since creation */
};

static soxr_t make_soxr(double in_rate, double out_rate, unsigned channels, soxr_error_t *e)
{
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    /* High quality (20-bit) with a minimum-phase filter: about 2 ms of delay
     * and output in steps the size of the input.  Linear or intermediate
     * phase delay 15-20 ms and release output in bursts of ~900 frames,
     * which would drain a low-latency ring between bursts. */
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, SOXR_MINIMUM_PHASE);
    return soxr_create(in_rate, out_rate, channels, e, &io, &q, NULL);
}

struct resampler *resampler_create(double in_rate, double out_rate, unsigned channels, int *err)
{
    *err = 0;
    if (in_rate == out_rate)
        return NULL;
    soxr_error_t e;
    struct resampler *r = calloc(1, sizeof(*r));
    if (!r) {
        *err = sc__fail(-ENOMEM, "out of memory");
        return NULL;
    }
    r->soxr = make_soxr(in_rate, out_rate, channels, &e);
    if (!r->soxr) {
        free(r);
        *err = sc__fail(SC_EUNSUPPORTED, "libsoxr cannot convert %g Hz to %g Hz: %s", in_rate,
                        out_rate, e ? e : "?");
        return NULL;
    }
    r->ratio = out_rate / in_rate;
    return r;
}

void resampler_free(struct resampler *r)
{
    if (!r)
        return;
    soxr_delete(r->soxr);
    free(r);
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
    soxr_process(r->soxr, in, in ? in_frames : 0, in ? used : NULL, out, out_frames, &produced);
    r->taken += *used;
    r->given += produced;
    return produced;
}

double resampler_delay(struct resampler *r)
{
    if (!r)
        return 0.0;
    double held = r->taken * r->ratio - r->given;
    return held > 0 ? held : 0.0;
}
