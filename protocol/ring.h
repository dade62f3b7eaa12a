/* Single-producer single-consumer ring buffer over shared memory.
 *
 * The shape follows spa_ringbuffer: the ring state is two monotonically
 * growing uint32_t indices, the data area and its size live elsewhere, the
 * offset of an index is the index masked by the capacity (a power of two),
 * and the fill level is the difference of the indices.  Each side keeps its
 * own index privately as the truth and only publishes it; the other side's
 * index is read with an acquire load and, because that side may be a hostile
 * process, the distance is clamped to [0, capacity].
 *
 * Transfers are three steps: read the other index (ring_fill), copy (at most
 * two memcpy, split at the wrap: ring_copy_in / ring_copy_out), publish the
 * new own index (ring_publish). */
#ifndef SC_PROTOCOL_RING_H
#define SC_PROTOCOL_RING_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

struct ring_indices {
    _Atomic uint32_t read_index;   /* written by the consumer only */
    _Atomic uint32_t write_index;  /* written by the producer only */
};

/* Frames readable given the producer's write index and the consumer's read
 * index, clamped to [0, capacity]: a negative distance (indices scribbled
 * backwards) reads as empty, one beyond the capacity as full. */
static inline uint32_t ring_fill(uint32_t write_index, uint32_t read_index, uint32_t capacity)
{
    int32_t fill = (int32_t)(write_index - read_index);
    if (fill < 0)
        return 0;
    if ((uint32_t)fill > capacity)
        return capacity;
    return (uint32_t)fill;
}

/* Frames writable: capacity minus the clamped fill. */
static inline uint32_t ring_space(uint32_t write_index, uint32_t read_index, uint32_t capacity)
{
    return capacity - ring_fill(write_index, read_index, capacity);
}

/* The producer's view: the consumer's published read index. */
static inline uint32_t ring_load_read(struct ring_indices *r)
{
    return atomic_load_explicit(&r->read_index, memory_order_acquire);
}

/* The consumer's view: the producer's published write index. */
static inline uint32_t ring_load_write(struct ring_indices *r)
{
    return atomic_load_explicit(&r->write_index, memory_order_acquire);
}

/* Publish a new own index after the data copy (release: the data is visible
 * before the index that covers it). */
static inline void ring_publish(_Atomic uint32_t *own_index, uint32_t value)
{
    atomic_store_explicit(own_index, value, memory_order_release);
}

/* Copy `frames` frames of `frame_bytes` each from `src` into the ring data at
 * `index` (capacity frames, power of two), wrapping at the end. */
static inline void ring_copy_in(void *data, uint32_t capacity, uint32_t frame_bytes,
                                uint32_t index, const void *src, uint32_t frames)
{
    uint32_t offset = index & (capacity - 1);
    uint32_t first = capacity - offset;
    if (first > frames)
        first = frames;
    memcpy((char *)data + (size_t)offset * frame_bytes, src, (size_t)first * frame_bytes);
    memcpy(data, (const char *)src + (size_t)first * frame_bytes,
           (size_t)(frames - first) * frame_bytes);
}

/* Copy `frames` frames out of the ring data at `index` into `dst`. */
static inline void ring_copy_out(const void *data, uint32_t capacity, uint32_t frame_bytes,
                                 uint32_t index, void *dst, uint32_t frames)
{
    uint32_t offset = index & (capacity - 1);
    uint32_t first = capacity - offset;
    if (first > frames)
        first = frames;
    memcpy(dst, (const char *)data + (size_t)offset * frame_bytes, (size_t)first * frame_bytes);
    memcpy((char *)dst + (size_t)first * frame_bytes, data,
           (size_t)(frames - first) * frame_bytes);
}

/* The contiguous run of at most `frames` frames starting at `index`: returns
 * its length and sets *offset to its first frame.  Lets a caller process data
 * in place (mix, convert) instead of copying it: call twice across a wrap. */
static inline uint32_t ring_segment(uint32_t capacity, uint32_t index, uint32_t frames,
                                    uint32_t *offset)
{
    *offset = index & (capacity - 1);
    uint32_t run = capacity - *offset;
    return run < frames ? run : frames;
}

static inline int ring_capacity_valid(uint32_t capacity)
{
    return capacity != 0 && (capacity & (capacity - 1)) == 0 && capacity <= (1u << 30);
}

#endif
