/* Small WAV helpers for tests: where the sound is, how long the file is. */
#ifndef SC_TEST_WAVFILE_H
#define SC_TEST_WAVFILE_H

#include <math.h>
#include <sndfile.h>

/* Rate and frames of a sound file, and the first and last time (s) at which
 * any channel of it exceeds `threshold`.  Returns 0, or -1 if unreadable. */
static inline int wav_extent(const char *path, double threshold, int *rate, long *frames,
                             double *first, double *last)
{
    SF_INFO info = { 0 };
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f)
        return -1;
    *rate = info.samplerate;
    *frames = (long)info.frames;
    *first = *last = -1;
    float buf[4096];
    long pos = 0;
    sf_count_t n;
    int ch = info.channels;
    while ((n = sf_readf_float(f, buf, 4096 / ch)) > 0) {
        for (sf_count_t i = 0; i < n * ch; i++) {
            if (fabsf(buf[i]) > threshold) {
                double t = (double)(pos + i / ch) / info.samplerate;
                if (*first < 0)
                    *first = t;
                *last = t;
            }
        }
        pos += (long)n;
    }
    sf_close(f);
    return 0;
}

#endif
