/* The SPSC ring: fill arithmetic across the uint32 wrap, clamping of hostile
 * indices, copies split at the end of the buffer, and a two-thread stress
 * run in which every frame arrives once, in order. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "ring.h"

static void test_fill_and_clamp(void)
{
    CHECK(ring_fill(10, 10, 16) == 0);
    CHECK(ring_fill(26, 10, 16) == 16);
    CHECK(ring_space(20, 10, 16) == 6);
    /* Indices wrap around 2^32 and the difference stays right. */
    CHECK(ring_fill(5, UINT32_MAX - 2, 16) == 8);
    CHECK(ring_space(5, UINT32_MAX - 2, 16) == 8);
    /* A hostile peer: write index behind read, or far ahead. */
    CHECK(ring_fill(3, 10, 16) == 0);
    CHECK(ring_fill(10 + 1000000, 10, 16) == 16);
    CHECK(ring_fill(0x80000000u, 0, 16) == 0);
    CHECK(ring_space(0x7fffffffu, 0, 16) == 0);
    CHECK(ring_capacity_valid(16) && !ring_capacity_valid(0) && !ring_capacity_valid(24));
}

static void test_wrapping_copies(void)
{
    enum { CAP = 8, CH = 2 };
    float data[CAP * CH] = { 0 };
    float in[5 * CH], out[5 * CH];
    for (int i = 0; i < 5 * CH; i++)
        in[i] = (float)(i + 1);
    /* Start 2 frames before the end: 2 frames at the end, 3 at the start. */
    uint32_t index = 6 + 8 * 1000;
    ring_copy_in(data, CAP, CH * sizeof(float), index, in, 5);
    CHECK(data[6 * CH] == 1 && data[7 * CH + 1] == 4 && data[0] == 5 && data[2 * CH + 1] == 10);
    ring_copy_out(data, CAP, CH * sizeof(float), index, out, 5);
    int same = 1;
    for (int i = 0; i < 5 * CH; i++)
        same &= out[i] == in[i];
    CHECK(same);
    uint32_t offset;
    CHECK(ring_segment(CAP, index, 5, &offset) == 2 && offset == 6);
    CHECK(ring_segment(CAP, index + 2, 3, &offset) == 3 && offset == 0);
}

/* Two threads, a small ring, odd chunk sizes on each side so the wrap falls
 * everywhere: every value must arrive exactly once and in order. */
enum { STRESS_CAP = 64, STRESS_TOTAL = 2000000 };
/* Start near 2^32 so the indices wrap during the run. */
#define STRESS_START (UINT32_MAX - 100u)
static struct ring_indices stress_idx;
static uint32_t stress_data[STRESS_CAP];

static void *producer(void *arg)
{
    (void)arg;
    uint32_t w = STRESS_START, next = 0, chunk = 1;
    while (next < STRESS_TOTAL) {
        uint32_t space = ring_space(w, ring_load_read(&stress_idx), STRESS_CAP);
        uint32_t n = chunk < space ? chunk : space;
        if (n > STRESS_TOTAL - next)
            n = STRESS_TOTAL - next;
        uint32_t vals[STRESS_CAP];
        for (uint32_t i = 0; i < n; i++)
            vals[i] = next + i;
        ring_copy_in(stress_data, STRESS_CAP, sizeof(uint32_t), w, vals, n);
        w += n;
        next += n;
        ring_publish(&stress_idx.write_index, w);
        chunk = chunk % 37 + 1;
    }
    return NULL;
}

static void test_two_thread_stress(void)
{
    atomic_init(&stress_idx.read_index, STRESS_START);
    atomic_init(&stress_idx.write_index, STRESS_START);
    pthread_t t;
    uint32_t r = STRESS_START, expect = 0, chunk = 1;
    int in_order = 1;
    pthread_create(&t, NULL, producer, NULL);
    while (expect < STRESS_TOTAL) {
        uint32_t fill = ring_fill(ring_load_write(&stress_idx), r, STRESS_CAP);
        uint32_t n = chunk < fill ? chunk : fill;
        uint32_t vals[STRESS_CAP];
        ring_copy_out(stress_data, STRESS_CAP, sizeof(uint32_t), r, vals, n);
        for (uint32_t i = 0; i < n; i++)
            in_order &= vals[i] == expect + i;
        r += n;
        expect += n;
        ring_publish(&stress_idx.read_index, r);
        chunk = chunk % 29 + 1;
    }
    pthread_join(t, NULL);
    CHECK(in_order);
    CHECK(expect == STRESS_TOTAL);
}

int main(void)
{
    test_fill_and_clamp();
    test_wrapping_copies();
    test_two_thread_stress();
    return check_summary();
}
