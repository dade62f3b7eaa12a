/* The shared memory of one stream: a header page followed by the playback
 * ring and/or the capture ring, float32 interleaved at the card's rate with
 * the stream's own channel count.
 *
 * The daemon creates it (memfd, sized, mapped, initialised, then sealed
 * against shrinking and growing) and passes the fd to the client.  Everything
 * the daemon reads back from it is treated as hostile: it trusts only its own
 * private copies of sizes and indices, never the header's. */
#ifndef SC_PROTOCOL_SHM_H
#define SC_PROTOCOL_SHM_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#define SHM_MAGIC 0x53434d31u /* "SCM1" */
#define SHM_LAYOUT_VERSION 2u
#define SHM_HEADER_SIZE 4096u
#define SHM_MAX_CHANNELS 64u
#define SHM_MAX_CAPACITY (1u << 20) /* frames per ring */
#define SHM_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

enum shm_state {
    SHM_STATE_STOPPED = 0,  /* opened, or stopped/aborted/drained */
    SHM_STATE_STARTING = 1, /* started; playback waits for its first frames */
    SHM_STATE_RUNNING = 2,
    SHM_STATE_DRAINING = 3, /* stop requested: plays what is left, then stops */
};

/* Where the current period sits in time, written by the RT thread once per
 * period as a seqlock (seq odd while writing).  The client maps its own ring
 * indices to CLOCK_MONOTONIC times with it:
 *   dac time of playback frame i = dac_time_ns + (i - play_index) / rate
 *   adc time of capture frame i  = adc_time_ns + (i - capture_index) / rate */
struct shm_timing {
    _Atomic uint32_t seq;
    _Atomic uint32_t play_index;     /* daemon's playback read index this period */
    _Atomic uint32_t capture_index;  /* daemon's capture write index this period */
    _Atomic uint32_t reserved;
    _Atomic uint64_t card_frame;     /* card frames elapsed at this period's start */
    _Atomic int64_t period_time_ns;  /* CLOCK_MONOTONIC of this period's start */
    _Atomic int64_t dac_time_ns;     /* when frame play_index reaches the DAC */
    _Atomic int64_t adc_time_ns;     /* when frame capture_index was captured */
};

/* A snapshot of shm_timing, read consistently. */
struct shm_timing_snapshot {
    uint32_t play_index, capture_index;
    uint64_t card_frame;
    int64_t period_time_ns, dac_time_ns, adc_time_ns;
};

/* Published by the daemon for the client's information; the daemon keeps the
 * authoritative copies privately.  The first four are read at every block
 * (the status flags) and written only when they change, so their line stays
 * in the client's cache; the last three change every period and are read
 * only for stats, on a line of their own. */
struct shm_counters {
    _Atomic uint64_t underruns;
    _Atomic uint64_t overruns;
    _Atomic uint64_t card_xruns; /* the card's xruns and failures so far (all streams see them) */
    _Atomic uint32_t state;      /* enum shm_state */
    alignas(64) _Atomic uint64_t frames;
    _Atomic uint64_t clipped;
    _Atomic uint32_t peak_bits;  /* float: this stream's peak |sample| last period */
};

/* The futex wake-up (stream.open's "wakeup":"futex", PROTOCOL.md section 9):
 * the daemon adds 1 to `seq` at every wake-up and calls FUTEX_WAKE on it
 * only when `waiting` was set, clearing it.  A client sets `waiting` before
 * it sleeps in FUTEX_WAIT on `seq`, and checks `seq` once more after setting
 * it, so no wake-up is lost.  The daemon never reads `seq` and only
 * exchanges `waiting`: whatever a client writes there costs it its own
 * wake-ups, and the daemon at most one FUTEX_WAKE per wake-up. */
#define SHM_WAKE_MAX_WAITERS 2  /* a reader and a writer thread; bounds the RT thread's work */

struct shm_wake {
    _Atomic uint32_t seq;
    _Atomic uint32_t waiting;
};

struct shm_header {
    uint32_t magic;
    uint32_t version;
    uint32_t header_size;
    uint32_t rate;             /* the card's rate: the rings run at it */
    uint32_t period_frames;    /* the card's period */
    uint32_t capacity;         /* frames per ring, a power of two */
    uint32_t input_channels;   /* capture ring channels, 0: no capture ring */
    uint32_t output_channels;  /* playback ring channels, 0: no playback ring */
    uint64_t play_offset;      /* byte offset of the playback ring, 0: none */
    uint64_t capture_offset;   /* byte offset of the capture ring, 0: none */
    uint64_t total_size;
    /* What both sides touch at every period, on as few cache lines as
     * possible: each line one side wrote is a miss for the other, every
     * period, for every stream.  The indices and the timing record share
     * one line, the wake-up words have the next. */
    alignas(64) struct ring_indices play;     /* client produces, daemon consumes */
    struct ring_indices capture;              /* daemon produces, client consumes */
    struct shm_timing timing;
    alignas(64) struct shm_wake wake;
    alignas(64) struct shm_counters counters;
};

_Static_assert(sizeof(struct shm_header) <= SHM_HEADER_SIZE, "header fits its page");
_Static_assert(offsetof(struct shm_header, timing) + sizeof(struct shm_timing) -
                   offsetof(struct shm_header, play) <= 64,
               "the ring indices and the timing record share one cache line");

/* The geometry of one stream's shm, computed by the daemon and checked by the
 * client against what it maps. */
struct shm_layout {
    uint32_t rate, period_frames, capacity, input_channels, output_channels;
    uint64_t play_offset, capture_offset, total_size;
};

/* Fill in offsets and total size; returns 0 or -EINVAL when the numbers are
 * out of range (capacity not a power of two, too many channels, no ring). */
int shm_layout_compute(struct shm_layout *layout, uint32_t rate, uint32_t period_frames,
                       uint32_t capacity, uint32_t input_channels, uint32_t output_channels);

/* Daemon side: create, size, map, initialise and seal a memfd for `layout`.
 * Returns 0 with *fd and *map set, or a negative errno. */
int shm_create(const struct shm_layout *layout, const char *name, int *fd, struct shm_header **map);

/* Client side: map a received memfd after checking that it is sealed against
 * shrinking, that its size matches and that the header describes `layout`.
 * Returns 0 or a negative errno (-EPROTO for a header that does not match). */
int shm_map(int fd, const struct shm_layout *layout, struct shm_header **map);

void shm_unmap(struct shm_header *map, const struct shm_layout *layout);

static inline float *shm_play_ring(struct shm_header *h, const struct shm_layout *l)
{
    return l->play_offset ? (float *)((char *)h + l->play_offset) : NULL;
}

static inline float *shm_capture_ring(struct shm_header *h, const struct shm_layout *l)
{
    return l->capture_offset ? (float *)((char *)h + l->capture_offset) : NULL;
}

/* Seqlock writer (RT thread) and reader (client). The reader returns 0, or
 * -EAGAIN if it could not get a consistent copy in a few tries. */
void shm_timing_write(struct shm_timing *t, const struct shm_timing_snapshot *s);
int shm_timing_read(struct shm_timing *t, struct shm_timing_snapshot *s);

#endif
