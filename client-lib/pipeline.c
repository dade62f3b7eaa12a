#include "pipeline.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "resample.h"

/* FIFO size in application frames: room for two blocks, and at least this
 * much so blocking transfers move audio in reasonable chunks. */
#define FIFO_MIN_FRAMES 1024u
/* Card frames the output resampler writes per step. */
#define SCRATCH_FRAMES 1024u

static int fifo_init(struct fifo *f, uint32_t frames, uint32_t channels)
{
    f->frames = 0;
    f->capacity = frames;
    f->data = channels ? calloc((size_t)frames * channels, sizeof(float)) : NULL;
    return !channels || f->data ? 0 : -ENOMEM;
}

/* Drop `n` frames from the front (a memmove: the FIFO holds a few blocks). */
static void fifo_consume(struct fifo *f, uint32_t n, uint32_t channels)
{
    f->frames -= n;
    memmove(f->data, f->data + (size_t)n * channels, (size_t)f->frames * channels * sizeof(float));
}

int pipeline_init(sc_stream *s)
{
    uint32_t in_ch = s->layout.input_channels, out_ch = s->layout.output_channels;
    uint32_t frames = 2 * (uint32_t)s->blocksize;
    if (frames < FIFO_MIN_FRAMES)
        frames = FIFO_MIN_FRAMES;
    int err = 0;
    if (out_ch)
        s->out_rs = resampler_create(s->app_rate, s->card_rate, out_ch, &err);
    if (!err && in_ch)
        s->in_rs = resampler_create(s->card_rate, s->app_rate, in_ch, &err);
    if (err)
        return err;
    if (fifo_init(&s->out_fifo, frames, out_ch) < 0 || fifo_init(&s->in_fifo, frames, in_ch) < 0)
        return sc__fail(-ENOMEM, "out of memory");
    if (s->out_rs && !(s->out_scratch = calloc((size_t)SCRATCH_FRAMES * out_ch, sizeof(float))))
        return sc__fail(-ENOMEM, "out of memory");
    return 0;
}

void pipeline_free(sc_stream *s)
{
    resampler_free(s->out_rs);
    resampler_free(s->in_rs);
    free(s->out_fifo.data);
    free(s->in_fifo.data);
    free(s->out_scratch);
}

static void resampler_restart(struct resampler **r, double in_rate, double out_rate, unsigned channels)
{
    /* A flushed soxr takes no more input: start afresh. */
    if (!*r)
        return;
    int err;
    resampler_free(*r);
    *r = resampler_create(in_rate, out_rate, channels, &err);
}

void pipeline_reset(sc_stream *s)
{
    s->out_fifo.frames = 0;
    s->in_fifo.frames = 0;
    resampler_restart(&s->out_rs, s->app_rate, s->card_rate, s->layout.output_channels);
    resampler_restart(&s->in_rs, s->card_rate, s->app_rate, s->layout.input_channels);
}

/* ---- playback ---- */

static uint32_t ring_room(sc_stream *s)
{
    uint32_t fill = ring_fill(s->play_write, ring_load_read(&s->shm->play), s->layout.capacity);
    return fill < s->play_target ? s->play_target - fill : 0;
}

uint32_t pipeline_out_ring_room(sc_stream *s)
{
    return ring_room(s);
}

uint32_t pipeline_out_space(sc_stream *s)
{
    return s->out_fifo.capacity - s->out_fifo.frames;
}

void pipeline_out_push(sc_stream *s, const void *app, uint32_t frames)
{
    uint32_t ch = s->layout.output_channels;
    convert_to_float(s->out_fifo.data + (size_t)s->out_fifo.frames * ch, app, s->format,
                     (size_t)frames * ch);
    s->out_fifo.frames += frames;
}

/* Resample `in` (NULL: flush) into the ring as far as the room goes;
 * returns input frames taken and sets *produced.  soxr writes into a scratch
 * buffer, not straight into the ring: it may hold back output that does not
 * fit whole, and the run before the ring's wrap can be a frame long. */
static size_t into_ring(sc_stream *s, const float *in, size_t in_frames, size_t *produced)
{
    uint32_t ch = s->layout.output_channels, cap = s->layout.capacity;
    size_t frame_bytes = ch * sizeof(float), taken = 0;
    *produced = 0;
    for (;;) {
        uint32_t room = ring_room(s);
        if (room == 0 || (in && taken == in_frames && !s->out_rs))
            break;
        size_t want = room < SCRATCH_FRAMES ? room : SCRATCH_FRAMES, used = 0, made;
        if (s->out_rs) {
            made = resampler_process(s->out_rs, ch, in ? in + taken * ch : NULL,
                                     in ? in_frames - taken : 0, &used, s->out_scratch, want);
            ring_copy_in(s->play_ring, cap, frame_bytes, s->play_write, s->out_scratch, (uint32_t)made);
        } else {
            made = used = in ? (in_frames - taken < want ? in_frames - taken : want) : 0;
            ring_copy_in(s->play_ring, cap, frame_bytes, s->play_write, in + taken * ch, (uint32_t)made);
        }
        taken += used;
        *produced += made;
        s->play_write += (uint32_t)made;
        ring_publish(&s->shm->play.write_index, s->play_write);
        if (made < want && (!in || taken == in_frames))
            break;  /* nothing more to give until more input comes */
        if (made == 0 && used == 0)
            break;
    }
    return taken;
}

uint32_t pipeline_out_pump(sc_stream *s)
{
    size_t produced;
    uint32_t taken = (uint32_t)into_ring(s, s->out_fifo.data, s->out_fifo.frames, &produced);
    if (taken)
        fifo_consume(&s->out_fifo, taken, s->layout.output_channels);
    return s->out_fifo.frames;
}

bool pipeline_out_flush(sc_stream *s)
{
    if (!s->out_rs)
        return true;
    uint32_t room = ring_room(s);
    size_t produced;
    into_ring(s, NULL, 0, &produced);
    return produced < room;  /* soxr gave less than fitted: its tail is out */
}

long pipeline_out_room(sc_stream *s)
{
    double room = ring_room(s) * s->app_rate / s->card_rate - s->out_fifo.frames;
    return room > 0 ? (long)room : 0;
}

void pipeline_out_prime(sc_stream *s)
{
    /* Silence goes through the resampler, not around it, so its filter is
     * full when the first block comes and the ring holds the whole budget. */
    uint32_t ch = s->layout.output_channels;
    memset(s->out_fifo.data, 0, (size_t)s->out_fifo.capacity * ch * sizeof(float));
    for (int rounds = 0; rounds < 256 && ring_room(s) > 0; rounds++) {
        size_t produced;
        into_ring(s, s->out_fifo.data, s->out_fifo.capacity, &produced);
    }
    s->out_fifo.frames = 0;
}

void pipeline_in_prime(sc_stream *s)
{
    /* Likewise for capture: until its filter is full a resampler gives
     * nothing back, and a callback waiting for its first block would leave
     * the output to run dry. */
    if (!s->in_rs)
        return;
    uint32_t ch = s->layout.input_channels;
    float zeros[256 * 2];
    uint32_t step = (uint32_t)(sizeof(zeros) / sizeof(zeros[0]) / ch);
    memset(zeros, 0, sizeof(zeros));
    for (int rounds = 0; rounds < 256 && s->in_fifo.frames == 0; rounds++) {
        size_t used;
        s->in_fifo.frames += (uint32_t)resampler_process(s->in_rs, ch, zeros, step, &used,
                                                         s->in_fifo.data, s->in_fifo.capacity);
    }
}

double pipeline_out_pending(sc_stream *s)
{
    return s->out_fifo.frames * s->card_rate / s->app_rate + resampler_delay(s->out_rs);
}

/* ---- capture ---- */

uint32_t pipeline_in_pump(sc_stream *s)
{
    uint32_t ch = s->layout.input_channels, cap = s->layout.capacity;
    for (int pass = 0; pass < 2; pass++) {  /* the ring's data may wrap once */
        uint32_t fill = ring_fill(ring_load_write(&s->shm->capture), s->capture_read, cap), offset;
        uint32_t run = ring_segment(cap, s->capture_read, fill, &offset);
        uint32_t space = s->in_fifo.capacity - s->in_fifo.frames;
        if (run == 0 || space == 0)
            break;
        size_t used;
        size_t made = resampler_process(s->in_rs, ch, s->capture_ring + (size_t)offset * ch, run,
                                        &used, s->in_fifo.data + (size_t)s->in_fifo.frames * ch, space);
        s->in_fifo.frames += (uint32_t)made;
        s->capture_read += (uint32_t)used;
        ring_publish(&s->shm->capture.read_index, s->capture_read);
        if (used < run)
            break;
    }
    return s->in_fifo.frames;
}

uint32_t pipeline_in_take(sc_stream *s, void *app, uint32_t frames)
{
    uint32_t ch = s->layout.input_channels;
    uint32_t n = frames < s->in_fifo.frames ? frames : s->in_fifo.frames;
    convert_from_float(app, s->in_fifo.data, s->format, (size_t)n * ch);
    fifo_consume(&s->in_fifo, n, ch);
    return n;
}

long pipeline_in_ready(sc_stream *s)
{
    uint32_t fill = ring_fill(ring_load_write(&s->shm->capture), s->capture_read, s->layout.capacity);
    return s->in_fifo.frames + (long)floor(fill * s->app_rate / s->card_rate);
}

double pipeline_in_pending(sc_stream *s)
{
    return (s->in_fifo.frames + resampler_delay(s->in_rs)) * s->card_rate / s->app_rate;
}

/* ---- callback blocks in place ---- */

bool pipeline_in_in_place(const sc_stream *s)
{
    return s->capture_ring && !s->in_rs && s->format == SC_FLOAT32;
}

bool pipeline_out_in_place(const sc_stream *s)
{
    return s->play_ring && !s->out_rs && s->format == SC_FLOAT32;
}

uint32_t pipeline_in_ring_fill(sc_stream *s)
{
    return ring_fill(ring_load_write(&s->shm->capture), s->capture_read, s->layout.capacity);
}

const float *pipeline_in_block(sc_stream *s, uint32_t frames)
{
    uint32_t ch = s->layout.input_channels, cap = s->layout.capacity, offset;
    if (ring_segment(cap, s->capture_read, frames, &offset) == frames)
        return s->capture_ring + (size_t)offset * ch;
    ring_copy_out(s->capture_ring, cap, ch * sizeof(float), s->capture_read, s->cb_in, frames);
    return s->cb_in;
}

void pipeline_in_release(sc_stream *s, uint32_t frames)
{
    s->capture_read += frames;
    ring_publish(&s->shm->capture.read_index, s->capture_read);
}

float *pipeline_out_block(sc_stream *s, uint32_t frames)
{
    uint32_t offset;
    if (ring_segment(s->layout.capacity, s->play_write, frames, &offset) == frames)
        return s->play_ring + (size_t)offset * s->layout.output_channels;
    return s->cb_out;
}

void pipeline_out_commit(sc_stream *s, const float *block, uint32_t frames)
{
    uint32_t ch = s->layout.output_channels;
    if (block == s->cb_out)
        ring_copy_in(s->play_ring, s->layout.capacity, ch * sizeof(float), s->play_write, block, frames);
    s->play_write += frames;
    ring_publish(&s->shm->play.write_index, s->play_write);
}
