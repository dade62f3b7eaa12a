/* The way audio travels between the application's buffers and a stream's
 * rings, without waiting: sample format conversion (convert.c), then a FIFO
 * of float frames at the application's rate, then rate conversion
 * (resample.c) into or out of the ring at the card's rate. */
#ifndef SC_CLIENT_PIPELINE_H
#define SC_CLIENT_PIPELINE_H

#include "internal.h"

int pipeline_init(sc_stream *s);
void pipeline_free(sc_stream *s);
/* Forget queued frames and the resamplers' state (after a stream ended, so
 * a restart begins afresh). */
void pipeline_reset(sc_stream *s);

/* Playback.  Application frames the FIFO can take now. */
uint32_t pipeline_out_space(sc_stream *s);
/* Take `frames` (<= pipeline_out_space) application frames into the FIFO. */
void pipeline_out_push(sc_stream *s, const void *app, uint32_t frames);
/* Move what fits from the FIFO into the ring; returns frames still queued. */
uint32_t pipeline_out_pump(sc_stream *s);
/* Drain the resampler's tail into the ring (at the end of playback, once the
 * FIFO is empty); true once all of it is in the ring. */
bool pipeline_out_flush(sc_stream *s);
/* Application frames that could be written before the ring holds its target. */
long pipeline_out_room(sc_stream *s);
/* Before a callback stream starts: fill the ring up to its target with
 * silence, and fill each resampler's filter, so the first blocks flow at
 * once. */
void pipeline_out_prime(sc_stream *s);
void pipeline_in_prime(sc_stream *s);

/* Capture.  Move what the ring holds into the FIFO (as far as it has
 * space); returns the application frames the FIFO holds. */
uint32_t pipeline_in_pump(sc_stream *s);
/* Hand out up to `frames` application frames from the FIFO; returns how many. */
uint32_t pipeline_in_take(sc_stream *s, void *app, uint32_t frames);
/* Application frames ready now (FIFO and ring, the ring's at the app's rate). */
long pipeline_in_ready(sc_stream *s);

/* Callback blocks in place.  A direction in float32 at the card's rate
 * needs neither conversion nor the FIFO: its callback reads and writes the
 * ring itself, and two copies a block go.  A block that would straddle the
 * ring's wrap goes through the stream's block buffer (cb_in, cb_out). */
bool pipeline_in_in_place(const sc_stream *s);
bool pipeline_out_in_place(const sc_stream *s);
/* Card frames of input in the ring; room for output under the target. */
uint32_t pipeline_in_ring_fill(sc_stream *s);
uint32_t pipeline_out_ring_room(sc_stream *s);
/* The next `frames` (<= pipeline_in_ring_fill) input frames, then give them
 * back to the daemon. */
const float *pipeline_in_block(sc_stream *s, uint32_t frames);
void pipeline_in_release(sc_stream *s, uint32_t frames);
/* Where the next `frames` (<= pipeline_out_ring_room) output frames go, then
 * hand them to the daemon. */
float *pipeline_out_block(sc_stream *s, uint32_t frames);
void pipeline_out_commit(sc_stream *s, const float *block, uint32_t frames);

/* Card frames between the application and the ring: queued in the FIFO and
 * held in the resampler (for the time info). */
double pipeline_out_pending(sc_stream *s);
double pipeline_in_pending(sc_stream *s);

#endif
