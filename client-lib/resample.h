/* Sample-rate conversion between the application's rate and the card's,
 * with libsoxr.  A NULL resampler (equal rates) passes frames through. */
#ifndef SC_CLIENT_RESAMPLE_H
#define SC_CLIENT_RESAMPLE_H

#include <stddef.h>

struct resampler;

/* NULL with *err set when soxr refuses; NULL with *err 0 for equal rates. */
struct resampler *resampler_create(double in_rate, double out_rate, unsigned channels, int *err);
void resampler_free(struct resampler *r);

/* Convert up to in_frames (interleaved float) into at most out_frames;
 * *used tells how many input frames were taken.  in == NULL flushes what
 * the filter still holds.  Returns frames produced. */
size_t resampler_process(struct resampler *r, unsigned channels, const float *in, size_t in_frames,
                         size_t *used, float *out, size_t out_frames);

/* Output frames the resampler holds: between an input frame going in and
 * its output coming out; 0 for NULL. */
double resampler_delay(struct resampler *r);

#endif
