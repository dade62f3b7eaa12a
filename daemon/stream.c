#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The ring holds what the client asked for, at least two periods (one being
 * played, one being written), rounded up to a power of two. */
static uint32_t ring_capacity_for(const struct stream_request *req)
{
    uint32_t want = req->buffer_frames ? req->buffer_frames : 4 * req->period;
    if (want < 2 * req->period)
        want = 2 * req->period;
    if (req->wake_frames && want < 2 * req->wake_frames)
        want = 2 * req->wake_frames;
    uint32_t cap = 1;
    while (cap < want && cap < SHM_MAX_CAPACITY)
        cap <<= 1;
    return cap;
}

/* Wake-ups go through a pipe, not an eventfd: an eventfd the client holds is
 * one open file description with the daemon's, so a client could clear its
 * O_NONBLOCK, fill its counter and make the RT thread's write block forever.
 * A pipe's ends are two descriptions: the RT thread writes its own
 * non-blocking end, and a full pipe only means wake-ups are pending. */
static int open_wake_pipe(struct stream *st)
{
    int ends[2];
    if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    st->wake_read_fd = ends[0];
    st->rt.wake_fd = ends[1];
    return 0;
}

struct stream *stream_create(uint32_t id, const struct stream_request *req, int *error)
{
    struct stream *st = calloc(1, sizeof(*st));
    if (!st) {
        *error = -ENOMEM;
        return NULL;
    }
    st->id = id;
    st->memfd = -1;
    st->rt.wake_fd = st->wake_read_fd = -1;
    st->callback_realtime = -1;
    snprintf(st->name, sizeof(st->name), "%s", req->name && req->name[0] ? req->name : "stream");
    struct engine_stream *rt = &st->rt;
    int err = shm_layout_compute(&rt->layout, req->rate, req->period, ring_capacity_for(req),
                                 req->input_channels, req->output_channels);
    char shm_name[48];
    snprintf(shm_name, sizeof(shm_name), "soundcard-stream-%u", id);
    if (err == 0)
        err = shm_create(&rt->layout, shm_name, &st->memfd, &rt->shm);
    if (err == 0)
        err = open_wake_pipe(st);
    if (err) {
        stream_destroy(st);
        *error = err;
        return NULL;
    }
    rt->play_ring = shm_play_ring(rt->shm, &rt->layout);
    rt->capture_ring = shm_capture_ring(rt->shm, &rt->layout);
    rt->wake_frames = req->wake_frames ? req->wake_frames : req->period;
    if (rt->wake_frames > rt->layout.capacity / 2)
        rt->wake_frames = rt->layout.capacity / 2;
    rt->wake_futex = req->wake_futex;
    rt->pending_stop = -1;
    atomic_init(&rt->gain_bits, engine_bits_from_float(1.0f));
    return st;
}

void stream_destroy(struct stream *st)
{
    if (!st)
        return;
    shm_unmap(st->rt.shm, &st->rt.layout);
    if (st->memfd >= 0)
        close(st->memfd);
    if (st->rt.wake_fd >= 0)
        close(st->rt.wake_fd);
    stream_sent(st);
    free(st);
}

void stream_sent(struct stream *st)
{
    if (st->wake_read_fd >= 0)
        close(st->wake_read_fd);
    st->wake_read_fd = -1;
}

const char *stream_state_name(uint32_t state)
{
    switch (state) {
    case SHM_STATE_STARTING:
        return "starting";
    case SHM_STATE_RUNNING:
        return "running";
    case SHM_STATE_DRAINING:
        return "draining";
    default:
        return "stopped";
    }
}
