/* Shared memory: the layout's arithmetic, the seals that keep a client from
 * shrinking or growing the memfd under the daemon, the client-side checks of
 * what it maps, and the timing seqlock. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "shm.h"

static void test_layout(void)
{
    struct shm_layout l;
    CHECK(shm_layout_compute(&l, 48000, 256, 1024, 1, 2) == 0);
    CHECK(l.play_offset == SHM_HEADER_SIZE);
    CHECK(l.capture_offset == SHM_HEADER_SIZE + 1024 * 2 * sizeof(float));
    CHECK(l.total_size == l.capture_offset + 1024 * sizeof(float));
    CHECK(l.total_size % 4096 == 0);
    CHECK(shm_layout_compute(&l, 48000, 256, 1000, 0, 2) == -EINVAL);   /* not a power of two */
    CHECK(shm_layout_compute(&l, 48000, 256, 1024, 0, 0) == -EINVAL);   /* no ring */
    CHECK(shm_layout_compute(&l, 48000, 256, 1024, 65, 0) == -EINVAL);  /* too many channels */
    CHECK(shm_layout_compute(&l, 48000, 256, SHM_MAX_CAPACITY * 2, 0, 1) == -EINVAL);
}

static void test_seals(void)
{
    struct shm_layout l;
    shm_layout_compute(&l, 48000, 256, 4096, 2, 2);
    int fd;
    struct shm_header *daemon_map;
    CHECK(shm_create(&l, "test", &fd, &daemon_map) == 0);
    CHECK(daemon_map->magic == SHM_MAGIC && daemon_map->capacity == 4096);
    CHECK(fcntl(fd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
    /* What a hostile client would try on its copy of the fd. */
    CHECK(ftruncate(fd, 0) < 0 && errno == EPERM);
    CHECK(ftruncate(fd, (off_t)l.total_size * 2) < 0 && errno == EPERM);
    CHECK(fallocate(fd, 0, 0, (off_t)l.total_size * 2) < 0);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM);
    /* The client maps it and sees the same memory. */
    struct shm_header *client_map;
    CHECK(shm_map(fd, &l, &client_map) == 0);
    shm_play_ring(client_map, &l)[5] = 0.5f;
    CHECK(shm_play_ring(daemon_map, &l)[5] == 0.5f);
    shm_unmap(client_map, &l);
    /* A layout that does not match the memfd is refused. */
    struct shm_layout wrong = l;
    wrong.capacity = 2048;
    CHECK(shm_map(fd, &wrong, &client_map) == -EPROTO);
    shm_unmap(daemon_map, &l);
    close(fd);

    /* An unsealed memfd is refused: the daemon must have sealed it. */
    int loose = memfd_create("loose", MFD_CLOEXEC);
    CHECK(ftruncate(loose, (off_t)l.total_size) == 0);
    CHECK(shm_map(loose, &l, &client_map) == -EPROTO);
    close(loose);
}

static void test_timing_seqlock(void)
{
    struct shm_timing t = { 0 };
    struct shm_timing_snapshot w = { .play_index = 7, .capture_index = 9, .card_frame = 1u << 20,
                                     .period_time_ns = 123456789, .dac_time_ns = 5, .adc_time_ns = 3 };
    shm_timing_write(&t, &w);
    struct shm_timing_snapshot r;
    CHECK(shm_timing_read(&t, &r) == 0);
    CHECK(r.play_index == 7 && r.capture_index == 9 && r.card_frame == 1u << 20 &&
          r.period_time_ns == 123456789 && r.dac_time_ns == 5 && r.adc_time_ns == 3);
    CHECK(atomic_load(&t.seq) == 2);
    /* A writer caught mid-update (odd sequence) is never read. */
    atomic_store(&t.seq, 3);
    CHECK(shm_timing_read(&t, &r) == -EAGAIN);
}

int main(void)
{
    test_layout();
    test_seals();
    test_timing_seqlock();
    return check_summary();
}
