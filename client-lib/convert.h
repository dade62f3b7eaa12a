/* Sample format conversion between the application's format and the rings'
 * float32.  Integers scale by 2^(bits-1); floats beyond [-1, 1] clip. */
#ifndef SC_CLIENT_CONVERT_H
#define SC_CLIENT_CONVERT_H

#include <stddef.h>

#include "soundcard/soundcard.h"

/* Bytes per sample of `format`, 0 for an unknown format. */
size_t convert_sample_bytes(sc_format format);
void convert_to_float(float *dst, const void *src, sc_format format, size_t samples);
void convert_from_float(void *dst, const float *src, sc_format format, size_t samples);

#endif
