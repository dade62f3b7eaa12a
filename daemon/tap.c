#include "tap.h"

#include <pthread.h>
#include <sndfile.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "memlock.h"
#include "ring.h"

#define TAP_CAPACITY (1u << 18)  /* frames: over 5 s at 48 kHz of slack for the disk */
#define TAP_CHUNK 4096u

struct tap {
    SNDFILE *file;
    uint32_t channels;
    struct ring_indices idx;
    float *ring;
    uint32_t write_index;  /* RT-private */
    _Atomic uint64_t dropped;
    _Atomic bool stopping;
    pthread_t thread;
    float chunk[];
};

static uint32_t drain(struct tap *t)
{
    uint32_t r = atomic_load_explicit(&t->idx.read_index, memory_order_relaxed);
    uint32_t fill = ring_fill(ring_load_write(&t->idx), r, TAP_CAPACITY);
    uint32_t total = fill;
    while (fill > 0) {
        uint32_t n = fill < TAP_CHUNK ? fill : TAP_CHUNK;
        ring_copy_out(t->ring, TAP_CAPACITY, t->channels * sizeof(float), r, t->chunk, n);
        sf_writef_float(t->file, t->chunk, n);
        r += n;
        fill -= n;
        ring_publish(&t->idx.read_index, r);
    }
    return total;
}

static void *writer_thread(void *arg)
{
    struct tap *t = arg;
    pthread_setname_np(pthread_self(), "sc-tap");
    /* Polling every 20 ms keeps the RT side to a plain ring write; the ring
     * holds seconds, so the writer never needs waking sooner. */
    const struct timespec interval = { 0, 20 * 1000 * 1000 };
    while (!atomic_load(&t->stopping)) {
        drain(t);
        nanosleep(&interval, NULL);
    }
    drain(t);
    return NULL;
}

struct tap *tap_open(const char *path, uint32_t rate, uint32_t channels, char *err, size_t err_len)
{
    struct tap *t = calloc(1, sizeof(*t) + sizeof(float) * TAP_CHUNK * channels);
    if (!t) {
        snprintf(err, err_len, "tap: out of memory");
        return NULL;
    }
    SF_INFO info = { .samplerate = (int)rate, .channels = (int)channels,
                     .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT };
    t->file = sf_open(path, SFM_WRITE, &info);
    if (!t->file) {
        snprintf(err, err_len, "cannot create tap file %s: %s", path, sf_strerror(NULL));
        free(t);
        return NULL;
    }
    /* Keep the header valid while running, so the file can be read live. */
    sf_command(t->file, SFC_SET_UPDATE_HEADER_AUTO, NULL, SF_TRUE);
    t->channels = channels;
    const size_t ring_bytes = (size_t)TAP_CAPACITY * channels * sizeof(float);
    t->ring = malloc(ring_bytes);
    if (t->ring) {
        /* Touched and locked here: calloc'd pages come in at their first
         * write, which was the RT thread's, a page fault every 512 frames
         * for the ring's first 5 s (a fault can wait on the mmap lock the
         * loop thread holds while it maps a stream). */
        memset(t->ring, 0, ring_bytes);
        memlock_region(t->ring, ring_bytes);
    }
    if (!t->ring || pthread_create(&t->thread, NULL, writer_thread, t) != 0) {
        snprintf(err, err_len, "tap: cannot start writer");
        sf_close(t->file);
        free(t->ring);
        free(t);
        return NULL;
    }
    return t;
}

void tap_push(struct tap *t, const float *frames, uint32_t count)
{
    uint32_t space = ring_space(t->write_index, ring_load_read(&t->idx), TAP_CAPACITY);
    if (space < count) {
        atomic_fetch_add_explicit(&t->dropped, count, memory_order_relaxed);
        return;
    }
    ring_copy_in(t->ring, TAP_CAPACITY, t->channels * sizeof(float), t->write_index, frames, count);
    t->write_index += count;
    ring_publish(&t->idx.write_index, t->write_index);
}

uint64_t tap_dropped(struct tap *t)
{
    return atomic_load_explicit(&t->dropped, memory_order_relaxed);
}

void tap_close(struct tap *t)
{
    if (!t)
        return;
    atomic_store(&t->stopping, true);
    pthread_join(t->thread, NULL);
    if (tap_dropped(t))
        log_warn("tap: %llu frames dropped (disk too slow)", (unsigned long long)tap_dropped(t));
    sf_close(t->file);
    free(t->ring);
    free(t);
}
