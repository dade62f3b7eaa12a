/* A lock-free single-producer single-consumer queue of fixed-size items
 * inside one process: the engine's command queue (loop -> RT) and note queue
 * (RT -> loop).  Built on the same index arithmetic as the shm rings. */
#ifndef SC_DAEMON_SPSC_H
#define SC_DAEMON_SPSC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "ring.h"

struct spsc {
    struct ring_indices idx;
    uint32_t capacity;  /* items, a power of two */
    uint32_t item_size;
    void *items;
};

static inline int spsc_init(struct spsc *q, uint32_t capacity, uint32_t item_size)
{
    q->items = calloc(capacity, item_size);
    if (!q->items)
        return -1;
    atomic_init(&q->idx.read_index, 0);
    atomic_init(&q->idx.write_index, 0);
    q->capacity = capacity;
    q->item_size = item_size;
    return 0;
}

static inline void spsc_free(struct spsc *q)
{
    free(q->items);
    q->items = NULL;
}

/* Producer: false when full. */
static inline bool spsc_push(struct spsc *q, const void *item)
{
    uint32_t w = atomic_load_explicit(&q->idx.write_index, memory_order_relaxed);
    if (ring_space(w, ring_load_read(&q->idx), q->capacity) == 0)
        return false;
    ring_copy_in(q->items, q->capacity, q->item_size, w, item, 1);
    ring_publish(&q->idx.write_index, w + 1);
    return true;
}

/* Consumer: false when empty. */
static inline bool spsc_pop(struct spsc *q, void *item)
{
    uint32_t r = atomic_load_explicit(&q->idx.read_index, memory_order_relaxed);
    if (ring_fill(ring_load_write(&q->idx), r, q->capacity) == 0)
        return false;
    ring_copy_out(q->items, q->capacity, q->item_size, r, item, 1);
    ring_publish(&q->idx.read_index, r + 1);
    return true;
}

#endif
