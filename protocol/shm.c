#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

int shm_layout_compute(struct shm_layout *l, uint32_t rate, uint32_t period_frames,
                       uint32_t capacity, uint32_t input_channels, uint32_t output_channels)
{
    if (!ring_capacity_valid(capacity) || capacity > SHM_MAX_CAPACITY)
        return -EINVAL;
    if (input_channels > SHM_MAX_CHANNELS || output_channels > SHM_MAX_CHANNELS)
        return -EINVAL;
    if (input_channels == 0 && output_channels == 0)
        return -EINVAL;
    l->rate = rate;
    l->period_frames = period_frames;
    l->capacity = capacity;
    l->input_channels = input_channels;
    l->output_channels = output_channels;
    uint64_t offset = SHM_HEADER_SIZE;
    l->play_offset = 0;
    l->capture_offset = 0;
    if (output_channels) {
        l->play_offset = offset;
        offset = align_up(offset + (uint64_t)capacity * output_channels * sizeof(float), 4096);
    }
    if (input_channels) {
        l->capture_offset = offset;
        offset = align_up(offset + (uint64_t)capacity * input_channels * sizeof(float), 4096);
    }
    l->total_size = offset;
    return 0;
}

int shm_create(const struct shm_layout *l, const char *name, int *fd_out, struct shm_header **map_out)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    int err = 0;
    if (ftruncate(fd, (off_t)l->total_size) < 0) {
        err = -errno;
        goto fail;
    }
    struct shm_header *h = mmap(NULL, l->total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) {
        err = -errno;
        goto fail;
    }
    /* ftruncate left it zeroed: only the non-zero fields need writing. */
    h->magic = SHM_MAGIC;
    h->version = SHM_LAYOUT_VERSION;
    h->header_size = SHM_HEADER_SIZE;
    h->rate = l->rate;
    h->period_frames = l->period_frames;
    h->capacity = l->capacity;
    h->input_channels = l->input_channels;
    h->output_channels = l->output_channels;
    h->play_offset = l->play_offset;
    h->capture_offset = l->capture_offset;
    h->total_size = l->total_size;
    if (fcntl(fd, F_ADD_SEALS, SHM_SEALS) < 0) {
        err = -errno;
        munmap(h, l->total_size);
        goto fail;
    }
    *fd_out = fd;
    *map_out = h;
    return 0;
fail:
    close(fd);
    return err;
}

int shm_map(int fd, const struct shm_layout *l, struct shm_header **map_out)
{
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0)
        return -errno;
    if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
        return -EPROTO;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size != l->total_size)
        return -EPROTO;
    struct shm_header *h = mmap(NULL, l->total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED)
        return -errno;
    if (h->magic != SHM_MAGIC || h->version != SHM_LAYOUT_VERSION ||
        h->header_size != SHM_HEADER_SIZE || h->capacity != l->capacity ||
        h->input_channels != l->input_channels || h->output_channels != l->output_channels ||
        h->play_offset != l->play_offset || h->capture_offset != l->capture_offset) {
        munmap(h, l->total_size);
        return -EPROTO;
    }
    *map_out = h;
    return 0;
}

void shm_unmap(struct shm_header *h, const struct shm_layout *l)
{
    if (h)
        munmap(h, l->total_size);
}

void shm_timing_write(struct shm_timing *t, const struct shm_timing_snapshot *s)
{
    uint32_t seq = atomic_load_explicit(&t->seq, memory_order_relaxed);
    atomic_store_explicit(&t->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&t->play_index, s->play_index, memory_order_relaxed);
    atomic_store_explicit(&t->capture_index, s->capture_index, memory_order_relaxed);
    atomic_store_explicit(&t->card_frame, s->card_frame, memory_order_relaxed);
    atomic_store_explicit(&t->period_time_ns, s->period_time_ns, memory_order_relaxed);
    atomic_store_explicit(&t->dac_time_ns, s->dac_time_ns, memory_order_relaxed);
    atomic_store_explicit(&t->adc_time_ns, s->adc_time_ns, memory_order_relaxed);
    atomic_store_explicit(&t->seq, seq + 2, memory_order_release);
}

int shm_timing_read(struct shm_timing *t, struct shm_timing_snapshot *s)
{
    for (int tries = 0; tries < 64; tries++) {
        uint32_t before = atomic_load_explicit(&t->seq, memory_order_acquire);
        if (before & 1)
            continue;
        s->play_index = atomic_load_explicit(&t->play_index, memory_order_relaxed);
        s->capture_index = atomic_load_explicit(&t->capture_index, memory_order_relaxed);
        s->card_frame = atomic_load_explicit(&t->card_frame, memory_order_relaxed);
        s->period_time_ns = atomic_load_explicit(&t->period_time_ns, memory_order_relaxed);
        s->dac_time_ns = atomic_load_explicit(&t->dac_time_ns, memory_order_relaxed);
        s->adc_time_ns = atomic_load_explicit(&t->adc_time_ns, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&t->seq, memory_order_relaxed) == before)
            return 0;
    }
    return -EAGAIN;
}
