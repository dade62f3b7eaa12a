/* The RT engine: once per period it takes what each playback ring holds,
 * mixes it into the card's output, and copies the card's input into each
 * capture ring.  It never waits for a client.
 *
 * Threads: the loop thread creates streams and talks to the engine only
 * through the command queue (engine_submit); the RT thread answers every
 * command with a note (engine_next_note) and calls `notify` so the loop
 * wakes.  Stream memory is freed by the loop thread only after the RT
 * thread's ENGINE_NOTE_REMOVED for it. */
#ifndef SC_DAEMON_ENGINE_H
#define SC_DAEMON_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "shm.h"

struct tap;

/* One stream as the engine sees it. */
struct engine_stream {
    /* Fixed before ENGINE_CMD_ADD, read-only afterwards. */
    struct shm_header *shm;
    struct shm_layout layout;
    float *play_ring, *capture_ring;
    int wake_fd;             /* the wake-up pipe's write end (non-blocking; the client reads) */
    bool wake_futex;         /* wake through shm->wake (a futex) instead of the pipe */
    uint32_t wake_frames;

    /* RT-private: the daemon's own indices are the truth, never the shm's. */
    uint32_t play_read, capture_write;
    uint32_t state;          /* enum shm_state */
    uint32_t wake_progress;
    bool stop_pending;       /* a STOP waits for the drain: its note is owed */
    int64_t pending_stop;    /* that STOP's request id */

    /* Loop -> RT, read each period. */
    _Atomic uint32_t gain_bits;  /* float */
    _Atomic bool mute;

    /* RT -> loop: the authoritative counters, read for stats. */
    _Atomic uint64_t frames, underruns, overruns, clipped, wakeups;
    _Atomic uint32_t peak_bits;  /* float */
    _Atomic uint32_t public_state;
};

enum engine_cmd_type {
    ENGINE_CMD_ADD,
    ENGINE_CMD_START,
    ENGINE_CMD_STOP,   /* drain, then stop: the note comes after the drain */
    ENGINE_CMD_ABORT,
    ENGINE_CMD_REMOVE,
};

struct engine_cmd {
    enum engine_cmd_type type;
    struct engine_stream *stream;
    int64_t request_id;   /* echoed in the note; -1: nobody waits */
};

enum engine_note_type {
    ENGINE_NOTE_DONE,     /* the command took effect (STOP: drained) */
    ENGINE_NOTE_REMOVED,  /* the RT thread dropped the stream: free it */
};

struct engine_note {
    enum engine_note_type type;
    enum engine_cmd_type cmd;
    struct engine_stream *stream;
    int64_t request_id;
    uint32_t state;       /* the stream's state after the command */
};

struct engine_config {
    uint32_t rate, period, channels;
    uint32_t max_streams;
    struct tap *tap;                 /* NULL: no tap */
    void (*notify)(void *ctx);       /* wake the loop thread; RT-safe */
    void *notify_ctx;
};

struct engine;

struct engine *engine_create(const struct engine_config *config);
void engine_destroy(struct engine *e);
/* Hand every buffer the RT cycle touches to `lock` (mlock, in the daemon). */
void engine_lock_memory(struct engine *e, int (*lock)(const void *addr, size_t len));

/* Loop thread.  Returns 0, or -EAGAIN when too many commands are in flight
 * (`reserved` true: one of the slots kept for stream removal may be used, so
 * removal never fails). */
int engine_submit(struct engine *e, const struct engine_cmd *cmd, bool reserved);
/* Loop thread: 1 and *note filled, or 0 when no note is waiting. */
int engine_next_note(struct engine *e, struct engine_note *note);
/* Loop thread: apply queued commands directly while no backend runs the
 * cycle (before start, after stop, while the card is away), so nothing waits
 * forever.  Offline, a stop does not wait for a drain. */
void engine_run_commands_offline(struct engine *e);
/* Loop thread, only while no backend runs the cycle. */
void engine_set_offline(struct engine *e, bool offline);

/* Loop thread: the card failed or went away (periods were lost): counted as
 * one xrun, which every stream sees in its shm counters. */
void engine_count_card_fault(struct engine *e);

/* RT thread: the backend's process callback (ctx is the engine). */
void engine_process(void *ctx, const float *in, float *out, uint32_t frames,
                    const struct backend_time *time);

/* Statistics, readable from any thread. */
struct engine_stats {
    uint64_t cycles, card_frames, clipped;
    uint64_t xruns;  /* the card's xruns and failures, over every backend instance */
    int64_t xrun_late_ns;  /* how late the card's thread woke at its last xrun; 0: not known */
    double load;  /* engine time / period time, smoothed, 0..1 */
};
void engine_get_stats(struct engine *e, struct engine_stats *out);

static inline float engine_float_from_bits(uint32_t bits)
{
    union { uint32_t u; float f; } v = { .u = bits };
    return v.f;
}

static inline uint32_t engine_bits_from_float(float f)
{
    union { uint32_t u; float f; } v = { .f = f };
    return v.u;
}

#endif
