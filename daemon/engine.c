#include "engine.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mix.h"
#include "spsc.h"
#include "tap.h"

#define ENGINE_QUEUE_SIZE 4096u

struct engine {
    struct engine_config config;
    struct spsc commands;  /* loop -> RT */
    struct spsc notes;     /* RT -> loop */
    uint32_t in_flight;    /* loop-private: commands without their note yet */
    uint32_t reserve;      /* queue slots kept for ENGINE_CMD_REMOVE */
    bool offline;          /* no RT cycle runs: the loop thread applies commands */

    /* RT-private. */
    struct engine_stream **streams;
    uint32_t nstreams;
    uint64_t card_frames;
    uint64_t backend_xruns;  /* the running backend's own count, last seen */
    uint64_t card_xruns;     /* every backend instance's xruns, summed */

    _Atomic uint64_t card_faults;  /* loop: failures and losses */
    _Atomic uint64_t cycles, card_frames_pub, xruns, clipped;
    _Atomic int64_t xrun_late_ns;
    _Atomic uint32_t load_bits;  /* float */
};

struct engine *engine_create(const struct engine_config *config)
{
    struct engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->config = *config;
    e->streams = calloc(config->max_streams ? config->max_streams : 1, sizeof(*e->streams));
    e->reserve = config->max_streams < ENGINE_QUEUE_SIZE / 2 ? config->max_streams : ENGINE_QUEUE_SIZE / 2;
    if (!e->streams || spsc_init(&e->commands, ENGINE_QUEUE_SIZE, sizeof(struct engine_cmd)) < 0 ||
        spsc_init(&e->notes, ENGINE_QUEUE_SIZE, sizeof(struct engine_note)) < 0) {
        engine_destroy(e);
        return NULL;
    }
    return e;
}

void engine_destroy(struct engine *e)
{
    if (!e)
        return;
    spsc_free(&e->commands);
    spsc_free(&e->notes);
    free(e->streams);
    free(e);
}

void engine_lock_memory(struct engine *e, int (*lock)(const void *addr, size_t len))
{
    lock(e, sizeof(*e));
    lock(e->streams, (e->config.max_streams ? e->config.max_streams : 1) * sizeof(*e->streams));
    lock(e->commands.items, (size_t)e->commands.capacity * e->commands.item_size);
    lock(e->notes.items, (size_t)e->notes.capacity * e->notes.item_size);
}

int engine_submit(struct engine *e, const struct engine_cmd *cmd, bool reserved)
{
    /* Every command gets exactly one note, so bounding the commands in
     * flight by the queue size means the RT thread can never find the note
     * queue full. */
    uint32_t limit = ENGINE_QUEUE_SIZE - (reserved ? 0 : e->reserve);
    if (e->in_flight >= limit)
        return -EAGAIN;
    if (!spsc_push(&e->commands, cmd))
        return -EAGAIN;
    e->in_flight++;
    return 0;
}

int engine_next_note(struct engine *e, struct engine_note *note)
{
    if (!spsc_pop(&e->notes, note))
        return 0;
    e->in_flight--;
    return 1;
}

/* RT-safe.  A futex stream: add 1 to its wake-up word and, only if the
 * client said it sleeps, FUTEX_WAKE at most SHM_WAKE_MAX_WAITERS threads: one
 * system call that takes no lock a client can hold (protocol/shm.h).  A pipe
 * stream: one byte into the pipe, whose write end is the daemon's alone and
 * non-blocking.  EAGAIN (the pipe is full) means the client has plenty of
 * wake-ups pending; EPIPE (SIGPIPE is ignored), that it has gone. */
static void wake_client(struct engine_stream *s)
{
    if (s->wake_futex) {
        struct shm_wake *w = &s->shm->wake;
        atomic_fetch_add(&w->seq, 1);
        if (atomic_exchange(&w->waiting, 0))
            syscall(SYS_futex, &w->seq, FUTEX_WAKE, SHM_WAKE_MAX_WAITERS, NULL, NULL, 0);
        return;
    }
    char one = 1;
    ssize_t r = write(s->wake_fd, &one, 1);
    (void)r;
}

static void set_state(struct engine_stream *s, uint32_t state)
{
    s->state = state;
    atomic_store_explicit(&s->public_state, state, memory_order_relaxed);
    atomic_store_explicit(&s->shm->counters.state, state, memory_order_relaxed);
}

static void post_note(struct engine *e, enum engine_note_type type, enum engine_cmd_type cmd,
                      struct engine_stream *s, int64_t request_id)
{
    struct engine_note note = { .type = type, .cmd = cmd, .stream = s,
                                .request_id = request_id, .state = s->state };
    spsc_push(&e->notes, &note);  /* cannot fail: see engine_submit */
    e->config.notify(e->config.notify_ctx);
}

static void remove_stream(struct engine *e, struct engine_stream *s)
{
    for (uint32_t i = 0; i < e->nstreams; i++) {
        if (e->streams[i] == s) {
            e->streams[i] = e->streams[--e->nstreams];
            return;
        }
    }
}

/* A stream with nothing left to drain (or no playback) stops now. */
static bool drained(struct engine_stream *s)
{
    if (!s->play_ring)
        return true;
    uint32_t w = ring_load_write(&s->shm->play);
    return ring_fill(w, s->play_read, s->layout.capacity) == 0;
}

static void apply_command(struct engine *e, const struct engine_cmd *cmd)
{
    struct engine_stream *s = cmd->stream;
    if (s->stop_pending && cmd->type != ENGINE_CMD_ADD) {
        /* A command overtakes a stop still draining: answer that stop now
         * with the state as it is, so no reply is lost. */
        s->stop_pending = false;
        post_note(e, ENGINE_NOTE_DONE, ENGINE_CMD_STOP, s, s->pending_stop);
    }
    switch (cmd->type) {
    case ENGINE_CMD_ADD:
        if (e->nstreams < e->config.max_streams)
            e->streams[e->nstreams++] = s;
        break;
    case ENGINE_CMD_START:
        if (s->state == SHM_STATE_STOPPED) {
            /* Wakeups count from the start: an abort may have left a part
             * of a block counted, which would put them out of step. */
            s->wake_progress = 0;
            set_state(s, s->play_ring ? SHM_STATE_STARTING : SHM_STATE_RUNNING);
        }
        else if (s->state == SHM_STATE_DRAINING)
            set_state(s, SHM_STATE_RUNNING);
        break;
    case ENGINE_CMD_STOP:
        if (s->state == SHM_STATE_STOPPED || e->offline || drained(s)) {
            set_state(s, SHM_STATE_STOPPED);
        } else {
            set_state(s, SHM_STATE_DRAINING);
            s->stop_pending = true;
            s->pending_stop = cmd->request_id;
            return;  /* the note comes when the drain is done */
        }
        break;
    case ENGINE_CMD_ABORT:
        set_state(s, SHM_STATE_STOPPED);
        if (s->play_ring) {
            /* Drop what was queued: the next start begins with fresh data. */
            s->play_read = ring_load_write(&s->shm->play);
            ring_publish(&s->shm->play.read_index, s->play_read);
        }
        break;
    case ENGINE_CMD_REMOVE:
        remove_stream(e, s);
        set_state(s, SHM_STATE_STOPPED);
        wake_client(s);
        post_note(e, ENGINE_NOTE_REMOVED, cmd->type, s, cmd->request_id);
        return;
    }
    wake_client(s);
    post_note(e, ENGINE_NOTE_DONE, cmd->type, s, cmd->request_id);
}

static void run_commands(struct engine *e)
{
    struct engine_cmd cmd;
    while (spsc_pop(&e->commands, &cmd))
        apply_command(e, &cmd);
}

void engine_run_commands_offline(struct engine *e)
{
    run_commands(e);
}

void engine_count_card_fault(struct engine *e)
{
    atomic_fetch_add_explicit(&e->card_faults, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->xruns, 1, memory_order_relaxed);
}

/* The backend's counter starts again at 0 when the card is reopened. */
static uint64_t count_xruns(struct engine *e, uint64_t backend_xruns)
{
    if (backend_xruns < e->backend_xruns)
        e->backend_xruns = 0;
    e->card_xruns += backend_xruns - e->backend_xruns;
    e->backend_xruns = backend_xruns;
    return e->card_xruns + atomic_load_explicit(&e->card_faults, memory_order_relaxed);
}

void engine_set_offline(struct engine *e, bool offline)
{
    e->offline = offline;
}

/* Mix this period's share of the stream's playback ring into `out`. */
static uint32_t play_stream(struct engine *e, struct engine_stream *s, float *out, uint32_t frames)
{
    uint32_t cap = s->layout.capacity;
    uint32_t fill = ring_fill(ring_load_write(&s->shm->play), s->play_read, cap);
    if (s->state == SHM_STATE_STARTING) {
        /* Like ALSA's start threshold: a new stream's clock starts once a
         * whole period is queued, so starting before writing is no underrun. */
        if (fill < frames)
            return 0;
        set_state(s, SHM_STATE_RUNNING);
    }
    uint32_t n = fill < frames ? fill : frames;
    float gain = atomic_load_explicit(&s->mute, memory_order_relaxed)
                     ? 0.0f
                     : engine_float_from_bits(atomic_load_explicit(&s->gain_bits, memory_order_relaxed));
    uint32_t channels = e->config.channels, src_channels = s->layout.output_channels;
    uint64_t clipped = 0;
    float peak = 0.0f;
    uint32_t done = 0;
    while (done < n) {
        uint32_t offset;
        uint32_t run = ring_segment(cap, s->play_read + done, n - done, &offset);
        float p = mix_add(out + (size_t)done * channels, channels,
                          s->play_ring + (size_t)offset * src_channels, src_channels, run, gain,
                          &clipped);
        peak = p > peak ? p : peak;
        done += run;
    }
    s->play_read += n;
    ring_publish(&s->shm->play.read_index, s->play_read);
    if (clipped)
        atomic_fetch_add_explicit(&s->clipped, clipped, memory_order_relaxed);
    atomic_store_explicit(&s->peak_bits, engine_bits_from_float(peak), memory_order_relaxed);

    if (n < frames) {
        if (s->state == SHM_STATE_DRAINING) {
            set_state(s, SHM_STATE_STOPPED);
            s->stop_pending = false;
            post_note(e, ENGINE_NOTE_DONE, ENGINE_CMD_STOP, s, s->pending_stop);
            wake_client(s);
        } else {
            atomic_fetch_add_explicit(&s->underruns, 1, memory_order_relaxed);
        }
    }
    return n;
}

/* Copy this period's card input into the stream's capture ring. */
static uint32_t capture_stream(struct engine *e, struct engine_stream *s, const float *in,
                               uint32_t frames)
{
    uint32_t cap = s->layout.capacity;
    uint32_t space = ring_space(s->capture_write, ring_load_read(&s->shm->capture), cap);
    uint32_t n = space < frames ? space : frames;
    uint32_t channels = s->layout.input_channels;
    uint32_t done = 0;
    while (done < n) {
        uint32_t offset;
        uint32_t run = ring_segment(cap, s->capture_write + done, n - done, &offset);
        mix_copy_channels(s->capture_ring + (size_t)offset * channels, channels,
                          in + (size_t)done * e->config.channels, e->config.channels, run);
        done += run;
    }
    s->capture_write += n;
    ring_publish(&s->shm->capture.write_index, s->capture_write);
    if (n < frames)
        atomic_fetch_add_explicit(&s->overruns, 1, memory_order_relaxed);
    return n;
}

static void publish_timing(struct engine *e, struct engine_stream *s, const struct backend_time *t)
{
    struct shm_timing_snapshot snap = {
        .play_index = s->play_read,
        .capture_index = s->capture_write,
        .card_frame = e->card_frames,
        .period_time_ns = t->period_time_ns,
        .dac_time_ns = t->dac_time_ns,
        .adc_time_ns = t->adc_time_ns,
    };
    shm_timing_write(&s->shm->timing, &snap);
}

/* Store a counter the client reads at every block only when it changed: an
 * unchanged line stays in the client's cache (protocol/shm.h).  What a
 * client scribbled there is put right at the next change. */
static void publish_if_changed(_Atomic uint64_t *word, uint64_t value)
{
    if (atomic_load_explicit(word, memory_order_relaxed) != value)
        atomic_store_explicit(word, value, memory_order_relaxed);
}

static void publish_counters(struct engine_stream *s, uint64_t card_xruns)
{
    struct shm_counters *c = &s->shm->counters;
    publish_if_changed(&c->card_xruns, card_xruns);
    publish_if_changed(&c->underruns, atomic_load_explicit(&s->underruns, memory_order_relaxed));
    publish_if_changed(&c->overruns, atomic_load_explicit(&s->overruns, memory_order_relaxed));
    if (atomic_load_explicit(&c->state, memory_order_relaxed) != s->state)
        atomic_store_explicit(&c->state, s->state, memory_order_relaxed);
    atomic_store_explicit(&c->frames, atomic_load_explicit(&s->frames, memory_order_relaxed), memory_order_relaxed);
    atomic_store_explicit(&c->clipped, atomic_load_explicit(&s->clipped, memory_order_relaxed), memory_order_relaxed);
    atomic_store_explicit(&c->peak_bits, atomic_load_explicit(&s->peak_bits, memory_order_relaxed), memory_order_relaxed);
}

static void cycle_stream(struct engine *e, struct engine_stream *s, const float *in, float *out,
                         uint32_t frames, const struct backend_time *t, uint64_t card_xruns)
{
    publish_timing(e, s, t);
    if (s->state == SHM_STATE_STOPPED)
        return;
    uint32_t progress = 0;
    bool ran_dry = false;
    if (s->capture_ring && s->state != SHM_STATE_DRAINING)
        progress = capture_stream(e, s, in, frames);
    if (s->play_ring) {
        uint32_t played = play_stream(e, s, out, frames);
        ran_dry = played < frames && s->state == SHM_STATE_RUNNING;
        progress = played > progress ? played : progress;
    }
    atomic_fetch_add_explicit(&s->frames, progress, memory_order_relaxed);
    publish_counters(s, card_xruns);
    /* Wake the client once per wake_frames of progress, not every period:
     * a stream with a long block sleeps through many periods.  A ring that
     * ran dry first makes no more progress: then the client hears at once
     * about what was taken, or it would wait forever. */
    s->wake_progress += progress;
    if (s->wake_progress >= s->wake_frames || (ran_dry && s->wake_progress > 0)) {
        s->wake_progress = ran_dry ? 0 : s->wake_progress % s->wake_frames;
        atomic_fetch_add_explicit(&s->wakeups, 1, memory_order_relaxed);
        wake_client(s);
    }
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void engine_process(void *ctx, const float *in, float *out, uint32_t frames,
                    const struct backend_time *time)
{
    struct engine *e = ctx;
    int64_t start = now_ns();
    run_commands(e);
    size_t samples = (size_t)frames * e->config.channels;
    memset(out, 0, samples * sizeof(float));
    uint64_t xruns = count_xruns(e, time->xruns);
    for (uint32_t i = 0; i < e->nstreams; i++)
        cycle_stream(e, e->streams[i], in, out, frames, time, xruns);
    uint64_t clipped = mix_clip(out, samples);
    if (clipped)
        atomic_fetch_add_explicit(&e->clipped, clipped, memory_order_relaxed);
    if (e->config.tap)
        tap_push(e->config.tap, out, frames);
    e->card_frames += frames;
    atomic_store_explicit(&e->card_frames_pub, e->card_frames, memory_order_relaxed);
    atomic_store_explicit(&e->xruns, xruns, memory_order_relaxed);
    atomic_store_explicit(&e->xrun_late_ns, time->xrun_late_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->cycles, 1, memory_order_relaxed);

    /* Load: this cycle's time over the period's, smoothed over ~1 s. */
    double period_ns = 1e9 * frames / e->config.rate;
    double load = (double)(now_ns() - start) / period_ns;
    double alpha = period_ns / 1e9 < 1.0 ? period_ns / 1e9 : 1.0;
    float old = engine_float_from_bits(atomic_load_explicit(&e->load_bits, memory_order_relaxed));
    float smoothed = (float)(old + alpha * (load - old));
    atomic_store_explicit(&e->load_bits, engine_bits_from_float(smoothed), memory_order_relaxed);
}

void engine_get_stats(struct engine *e, struct engine_stats *out)
{
    out->cycles = atomic_load_explicit(&e->cycles, memory_order_relaxed);
    out->card_frames = atomic_load_explicit(&e->card_frames_pub, memory_order_relaxed);
    out->xruns = atomic_load_explicit(&e->xruns, memory_order_relaxed);
    out->clipped = atomic_load_explicit(&e->clipped, memory_order_relaxed);
    out->xrun_late_ns = atomic_load_explicit(&e->xrun_late_ns, memory_order_relaxed);
    out->load = engine_float_from_bits(atomic_load_explicit(&e->load_bits, memory_order_relaxed));
}
