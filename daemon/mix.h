/* The inner loops of the RT cycle: mixing a stream into the card buffer,
 * copying card input to a stream, clipping.  Pure functions on buffers, so
 * they can be tested and benchmarked alone. */
#ifndef SC_DAEMON_MIX_H
#define SC_DAEMON_MIX_H

#include <stddef.h>
#include <stdint.h>

/* Add `frames` frames of src (src_channels interleaved) times gain into dst
 * (dst_channels interleaved).  Equal channel counts add channel to channel, a
 * mono source goes to every channel, otherwise channel i goes to channel i.
 * Non-finite source samples count as silence: a hostile client's NaN must not
 * reach the card.  Returns the peak |gain*sample|; adds to *clipped the number
 * of scaled samples beyond [-1, 1]. */
float mix_add(float *dst, uint32_t dst_channels, const float *src, uint32_t src_channels,
              uint32_t frames, float gain, uint64_t *clipped);

/* Copy `frames` card frames (src_channels) into a stream's layout
 * (dst_channels): channel i from channel i, missing channels silent. */
void mix_copy_channels(float *dst, uint32_t dst_channels, const float *src, uint32_t src_channels,
                       uint32_t frames);

/* Clip to [-1, 1] in place (NaN becomes silence); returns how many samples
 * were beyond it or NaN. */
uint64_t mix_clip(float *buf, size_t samples);

#endif
