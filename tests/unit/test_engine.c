/* The RT engine (daemon/engine.c) driven directly, as the backend's RT thread
 * would drive it, with a fake clock and no backend thread.  The test plays
 * both other parts: the loop thread (engine_submit / engine_next_note) and
 * the clients (writing the playback ring and reading the capture ring through
 * the shm header's indices, reading the wake-up pipe, reading the timing record).
 *
 * Streams are made the way daemon/stream.c makes them: shm_layout_compute +
 * shm_create, a wake-up pipe, wake_frames, pending_stop = -1, gain 1.0.  The
 * hostile-client test puts the rings of its stream between PROT_NONE guard
 * pages, so a read or write out of bounds faults even without ASan. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "engine.h"
#include "proc_tasks.h"
#include "ring.h"
#include "shm.h"

enum { RATE = 48000, PERIOD = 64, CH = 2, MAX_STREAMS = 8, SAMPLES = PERIOD * CH };
#define PERIOD_NS ((int64_t)PERIOD * 1000000000 / RATE)

/* ---- streams, made as daemon/stream.c makes them ------------------------ */

struct guarded {
    void *base;
    size_t len;
};

struct tstream {
    struct engine_stream es;
    int memfd;
    int wake_pipe[2];
    struct guarded guard[2];
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static struct tstream *tstream_new(uint32_t in_ch, uint32_t out_ch, uint32_t capacity,
                                   uint32_t wake_frames)
{
    struct tstream *t = xcalloc(1, sizeof(*t));
    struct engine_stream *s = &t->es;
    int err = shm_layout_compute(&s->layout, RATE, PERIOD, capacity, in_ch, out_ch);
    if (err == 0)
        err = shm_create(&s->layout, "test-engine", &t->memfd, &s->shm);
    if (err) {
        fprintf(stderr, "cannot create a stream's shm: %s\n", strerror(-err));
        exit(2);
    }
    s->play_ring = shm_play_ring(s->shm, &s->layout);
    s->capture_ring = shm_capture_ring(s->shm, &s->layout);
    if (pipe2(t->wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        perror("pipe2");
        exit(2);
    }
    s->wake_fd = t->wake_pipe[1];
    s->wake_frames = wake_frames;
    s->pending_stop = -1;
    atomic_init(&s->gain_bits, engine_bits_from_float(1.0f));
    atomic_init(&s->mute, false);
    atomic_init(&s->frames, 0);
    atomic_init(&s->underruns, 0);
    atomic_init(&s->overruns, 0);
    atomic_init(&s->clipped, 0);
    atomic_init(&s->peak_bits, 0);
    atomic_init(&s->public_state, SHM_STATE_STOPPED);
    return t;
}

/* `bytes` of ring between two PROT_NONE pages, ending at the upper one. */
static float *guarded_ring(struct guarded *g, size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = (bytes + page - 1) / page * page;
    g->len = body + 2 * page;
    g->base = mmap(NULL, g->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->base == MAP_FAILED || mprotect(g->base, page, PROT_NONE) < 0 ||
        mprotect((char *)g->base + page + body, page, PROT_NONE) < 0) {
        perror("guard pages");
        exit(2);
    }
    return (float *)((char *)g->base + page + (body - bytes));
}

/* Before ADD: move the stream's rings between guard pages. */
static void tstream_guard(struct tstream *t)
{
    struct engine_stream *s = &t->es;
    if (s->play_ring)
        s->play_ring = guarded_ring(&t->guard[0], (size_t)s->layout.capacity *
                                                      s->layout.output_channels * sizeof(float));
    if (s->capture_ring)
        s->capture_ring = guarded_ring(&t->guard[1], (size_t)s->layout.capacity *
                                                         s->layout.input_channels * sizeof(float));
}

static void tstream_free(struct tstream *t)
{
    shm_unmap(t->es.shm, &t->es.layout);
    close(t->memfd);
    close(t->wake_pipe[0]);
    close(t->wake_pipe[1]);
    for (int i = 0; i < 2; i++)
        if (t->guard[i].base)
            munmap(t->guard[i].base, t->guard[i].len);
    free(t);
}

static void set_gain(struct tstream *t, float gain)
{
    atomic_store(&t->es.gain_bits, engine_bits_from_float(gain));
}

static uint64_t underruns(struct tstream *t)
{
    return atomic_load(&t->es.underruns);
}

/* ---- the client's side of the rings -------------------------------------- */

static uint32_t client_write(struct tstream *t, const float *src, uint32_t frames)
{
    struct engine_stream *s = &t->es;
    uint32_t cap = s->layout.capacity, ch = s->layout.output_channels;
    uint32_t w = atomic_load_explicit(&s->shm->play.write_index, memory_order_relaxed);
    uint32_t space = ring_space(w, ring_load_read(&s->shm->play), cap);
    uint32_t n = frames < space ? frames : space;
    ring_copy_in(s->play_ring, cap, ch * (uint32_t)sizeof(float), w, src, n);
    ring_publish(&s->shm->play.write_index, w + n);
    return n;
}

static uint32_t client_read(struct tstream *t, float *dst, uint32_t frames)
{
    struct engine_stream *s = &t->es;
    uint32_t cap = s->layout.capacity, ch = s->layout.input_channels;
    uint32_t r = atomic_load_explicit(&s->shm->capture.read_index, memory_order_relaxed);
    uint32_t fill = ring_fill(ring_load_write(&s->shm->capture), r, cap);
    uint32_t n = frames < fill ? frames : fill;
    ring_copy_out(s->capture_ring, cap, ch * (uint32_t)sizeof(float), r, dst, n);
    ring_publish(&s->shm->capture.read_index, r + n);
    return n;
}

/* Wake-ups since the last call: the bytes waiting in the wake-up pipe. */
static uint64_t client_wakes(struct tstream *t)
{
    uint64_t wakes = 0;
    char buf[256];
    ssize_t n;
    while ((n = read(t->wake_pipe[0], buf, sizeof(buf))) > 0)
        wakes += (uint64_t)n;
    return wakes;
}

/* ---- the loop thread's side, and the fake RT clock ----------------------- */

struct rig {
    struct engine *e;
    int notifies;
    long total_notes;
    bool untracked;            /* notes are not matched against requests */
    int64_t next_id;
    int64_t outstanding[256];  /* requests without their note yet */
    int noutstanding;
    struct engine_note notes[256];  /* the notes of the last cycle */
    int nnotes;
    int64_t clock_ns;
    uint64_t xruns;
    struct backend_time time;  /* what the last cycle was given */
    float in[SAMPLES], out[SAMPLES];
};

static void count_notify(void *ctx)
{
    (*(int *)ctx)++;
}

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    struct engine_config config = {
        .rate = RATE, .period = PERIOD, .channels = CH, .max_streams = MAX_STREAMS,
        .tap = NULL, .notify = count_notify, .notify_ctx = &r->notifies,
    };
    r->e = engine_create(&config);
    if (!r->e) {
        fprintf(stderr, "engine_create failed\n");
        exit(2);
    }
    r->clock_ns = 1000000000000;  /* any CLOCK_MONOTONIC-like value */
}

static int64_t rig_submit(struct rig *r, enum engine_cmd_type type, struct tstream *t)
{
    int64_t id = ++r->next_id;
    struct engine_cmd cmd = { .type = type, .stream = &t->es, .request_id = id };
    int rc = engine_submit(r->e, &cmd, type == ENGINE_CMD_REMOVE);
    CHECK(rc == 0);
    if (rc == 0 && r->noutstanding < (int)(sizeof(r->outstanding) / sizeof(r->outstanding[0])))
        r->outstanding[r->noutstanding++] = id;
    return id;
}

/* Stop waiting for a request's note (one a known bug lost). */
static void rig_forget(struct rig *r, int64_t id)
{
    for (int i = 0; i < r->noutstanding; i++) {
        if (r->outstanding[i] == id) {
            r->outstanding[i] = r->outstanding[--r->noutstanding];
            return;
        }
    }
}

static bool rig_is_outstanding(const struct rig *r, int64_t id)
{
    for (int i = 0; i < r->noutstanding; i++)
        if (r->outstanding[i] == id)
            return true;
    return false;
}

/* One RT cycle with the card input r->in, then the loop thread's turn: take
 * every note, each of which must answer exactly one outstanding request. */
static void rig_cycle(struct rig *r)
{
    r->time = (struct backend_time){
        .period_time_ns = r->clock_ns,
        .adc_time_ns = r->clock_ns - 2 * PERIOD_NS,
        .dac_time_ns = r->clock_ns + 3 * PERIOD_NS,
        .xruns = r->xruns,
    };
    for (int i = 0; i < SAMPLES; i++)
        r->out[i] = NAN;  /* the engine must write every sample */
    engine_process(r->e, r->in, r->out, PERIOD, &r->time);
    r->clock_ns += PERIOD_NS;
    r->nnotes = 0;
    struct engine_note note;
    while (engine_next_note(r->e, &note)) {
        r->total_notes++;
        if (r->nnotes < (int)(sizeof(r->notes) / sizeof(r->notes[0])))
            r->notes[r->nnotes++] = note;
        if (r->untracked)
            continue;
        bool known = rig_is_outstanding(r, note.request_id);
        CHECK(known);  /* no note twice, none for a request never made */
        if (!known)
            fprintf(stderr, "  note for request %lld (cmd %d) answers nothing outstanding\n",
                    (long long)note.request_id, (int)note.cmd);
        rig_forget(r, note.request_id);
    }
}

static void rig_cycles(struct rig *r, int n)
{
    for (int i = 0; i < n; i++)
        rig_cycle(r);
}

/* The note of the last cycle that answers request `id`, or NULL. */
static const struct engine_note *rig_note(const struct rig *r, int64_t id)
{
    for (int i = 0; i < r->nnotes; i++)
        if (r->notes[i].request_id == id)
            return &r->notes[i];
    return NULL;
}

static void rig_finish(struct rig *r)
{
    CHECK(r->noutstanding == 0);  /* every command got its note */
    for (int i = 0; i < r->noutstanding; i++)
        fprintf(stderr, "  request %lld never got a note\n", (long long)r->outstanding[i]);
    CHECK(r->notifies == r->total_notes);  /* the loop is woken for each note */
    engine_destroy(r->e);
}

/* Submit ADD + START for each stream, run one cycle, drain the wake-up pipes. */
static void rig_add_start(struct rig *r, struct tstream **ts, int n)
{
    for (int i = 0; i < n; i++) {
        rig_submit(r, ENGINE_CMD_ADD, ts[i]);
        rig_submit(r, ENGINE_CMD_START, ts[i]);
    }
    rig_cycle(r);
    for (int i = 0; i < n; i++)
        client_wakes(ts[i]);
}

static void rig_remove_free(struct rig *r, struct tstream **ts, int n)
{
    for (int i = 0; i < n; i++)
        rig_submit(r, ENGINE_CMD_REMOVE, ts[i]);
    rig_cycle(r);
    for (int i = 0; i < n; i++)
        tstream_free(ts[i]);
}

/* ---- signals ------------------------------------------------------------- */

/* A deterministic, non-periodic test signal in [-0.3, 0.3]. */
static float sig(uint32_t seed, uint32_t frame, uint32_t ch)
{
    uint32_t x = frame * 2654435761u + ch * 40503u + seed * 0x9e3779b9u;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    return ((float)(x % 2001u) / 1000.0f - 1.0f) * 0.3f;
}

static void gen(float *buf, uint32_t frames, uint32_t ch, uint32_t seed, uint32_t start)
{
    for (uint32_t f = 0; f < frames; f++)
        for (uint32_t c = 0; c < ch; c++)
            buf[(size_t)f * ch + c] = sig(seed, start + f, c);
}

static void fill_const(float *buf, uint32_t frames, float ch0, float ch1)
{
    for (uint32_t f = 0; f < frames; f++) {
        buf[f * 2] = ch0;
        buf[f * 2 + 1] = ch1;
    }
}

static bool near(float a, float b)
{
    return fabsf(a - b) <= 1e-6f;
}

static bool out_is(const float *out, const float *expect, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!near(out[i], expect[i]))
            return false;
    return true;
}

static bool out_silent(const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] != 0.0f)
            return false;
    return true;
}

static bool out_all(const float *out, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] != v)
            return false;
    return true;
}

static bool out_sane(const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(out[i]) || out[i] < -1.0f || out[i] > 1.0f)
            return false;
    return true;
}

/* ---- tests --------------------------------------------------------------- */

static void test_add_start_underrun(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *t = tstream_new(0, 2, 1024, PERIOD);
    int64_t add = rig_submit(&r, ENGINE_CMD_ADD, t);
    int64_t start = rig_submit(&r, ENGINE_CMD_START, t);
    CHECK(r.notifies == 0);  /* nothing happens before the RT cycle */
    rig_cycle(&r);
    CHECK(r.nnotes == 2 && r.notifies == 2);
    const struct engine_note *n = rig_note(&r, add);
    CHECK(n && n->type == ENGINE_NOTE_DONE && n->cmd == ENGINE_CMD_ADD && n->stream == &t->es &&
          n->state == SHM_STATE_STOPPED);
    n = rig_note(&r, start);
    CHECK(n && n->type == ENGINE_NOTE_DONE && n->cmd == ENGINE_CMD_START &&
          n->state == SHM_STATE_STARTING);
    /* Started with an empty ring: waiting for its first frames, no underrun. */
    CHECK(out_silent(r.out, SAMPLES));
    CHECK(underruns(t) == 0);
    CHECK(atomic_load(&t->es.public_state) == SHM_STATE_STARTING);
    CHECK(atomic_load(&t->es.shm->counters.state) == SHM_STATE_STARTING);
    rig_cycles(&r, 3);
    CHECK(underruns(t) == 0 && atomic_load(&t->es.frames) == 0);
    CHECK(atomic_load(&t->es.public_state) == SHM_STATE_STARTING);

    /* Three periods of a known signal at gain 0.5. */
    set_gain(t, 0.5f);
    float signal[3 * SAMPLES];
    gen(signal, 3 * PERIOD, 2, 1, 0);
    CHECK(client_write(t, signal, 3 * PERIOD) == 3 * PERIOD);
    for (int k = 0; k < 3; k++) {
        rig_cycle(&r);
        float expect[SAMPLES];
        float peak = 0.0f;
        for (int i = 0; i < SAMPLES; i++) {
            expect[i] = 0.5f * signal[k * SAMPLES + i];
            peak = fabsf(expect[i]) > peak ? fabsf(expect[i]) : peak;
        }
        CHECK(out_is(r.out, expect, SAMPLES));
        CHECK(underruns(t) == 0);
        CHECK(atomic_load(&t->es.public_state) == SHM_STATE_RUNNING);
        CHECK(atomic_load(&t->es.frames) == (uint64_t)(k + 1) * PERIOD);
        CHECK(near(engine_float_from_bits(atomic_load(&t->es.peak_bits)), peak));
        CHECK(atomic_load(&t->es.shm->counters.frames) == (uint64_t)(k + 1) * PERIOD);
    }
    CHECK(ring_load_read(&t->es.shm->play) == 3 * PERIOD);

    /* Fourth cycle, nothing written: silence and one underrun. */
    rig_cycle(&r);
    CHECK(out_silent(r.out, SAMPLES));
    CHECK(underruns(t) == 1);
    CHECK(atomic_load(&t->es.shm->counters.underruns) == 1);
    CHECK(atomic_load(&t->es.frames) == 3 * PERIOD);
    CHECK(atomic_load(&t->es.public_state) == SHM_STATE_RUNNING);
    /* Every period short of frames is one more. */
    rig_cycle(&r);
    CHECK(underruns(t) == 2);

    /* Half a period: played, the rest silent, one underrun. */
    float half[PERIOD / 2 * 2];
    gen(half, PERIOD / 2, 2, 7, 0);
    set_gain(t, 1.0f);
    CHECK(client_write(t, half, PERIOD / 2) == PERIOD / 2);
    rig_cycle(&r);
    CHECK(out_is(r.out, half, PERIOD / 2 * 2));
    CHECK(out_silent(r.out + PERIOD / 2 * 2, PERIOD / 2 * 2));
    CHECK(underruns(t) == 3);
    CHECK(atomic_load(&t->es.frames) == 3 * PERIOD + PERIOD / 2);

    rig_remove_free(&r, &t, 1);
    rig_finish(&r);
}

static void test_mix_and_isolation(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *ts[3];
    for (int i = 0; i < 3; i++)
        ts[i] = tstream_new(0, 2, 1024, PERIOD);
    rig_add_start(&r, ts, 3);
    float a[4 * SAMPLES], b[4 * SAMPLES], c[SAMPLES];
    gen(a, 4 * PERIOD, 2, 11, 0);
    gen(b, 4 * PERIOD, 2, 12, 0);
    gen(c, PERIOD, 2, 13, 0);
    CHECK(client_write(ts[0], a, 4 * PERIOD) == 4 * PERIOD);
    CHECK(client_write(ts[1], b, 4 * PERIOD) == 4 * PERIOD);
    CHECK(client_write(ts[2], c, PERIOD) == PERIOD);  /* then it stops writing */
    for (int k = 0; k < 4; k++) {
        rig_cycle(&r);
        float expect[SAMPLES];
        for (int i = 0; i < SAMPLES; i++) {
            expect[i] = a[k * SAMPLES + i] + b[k * SAMPLES + i];
            if (k == 0)
                expect[i] += c[i];
        }
        CHECK(out_is(r.out, expect, SAMPLES));
        CHECK(underruns(ts[0]) == 0 && underruns(ts[1]) == 0);
        CHECK(underruns(ts[2]) == (uint64_t)k);
    }
    CHECK(atomic_load(&ts[0]->es.frames) == 4 * PERIOD);
    CHECK(atomic_load(&ts[1]->es.frames) == 4 * PERIOD);
    CHECK(atomic_load(&ts[2]->es.frames) == PERIOD);
    CHECK(atomic_load(&ts[0]->es.shm->counters.underruns) == 0);
    CHECK(atomic_load(&ts[2]->es.shm->counters.underruns) == 3);
    struct engine_stats st;
    engine_get_stats(r.e, &st);
    CHECK(st.clipped == 0);
    rig_remove_free(&r, ts, 3);
    rig_finish(&r);
}

static void test_gain_mute_clip(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *ts[2] = { tstream_new(0, 2, 1024, PERIOD), tstream_new(0, 2, 1024, PERIOD) };
    struct tstream *a = ts[0], *b = ts[1];
    rig_add_start(&r, ts, 2);
    float buf[2 * SAMPLES];
    struct engine_stats st;

    /* Gain 2 on 0.75: 1.5 in the mix, the stream counts its clipped samples,
     * the card is clipped to 1 and counts them too. */
    fill_const(buf, 2 * PERIOD, 0.75f, -0.75f);
    client_write(a, buf, 2 * PERIOD);
    set_gain(a, 2.0f);
    rig_cycle(&r);
    for (int f = 0; f < PERIOD; f++)
        CHECK(r.out[f * 2] == 1.0f && r.out[f * 2 + 1] == -1.0f);
    CHECK(atomic_load(&a->es.clipped) == SAMPLES);
    CHECK(engine_float_from_bits(atomic_load(&a->es.peak_bits)) == 1.5f);
    engine_get_stats(r.e, &st);
    CHECK(st.clipped == SAMPLES);

    /* Muted: silent, still consumed (the stream's clock runs on), nothing
     * clipped. */
    atomic_store(&a->es.mute, true);
    rig_cycle(&r);
    CHECK(out_silent(r.out, SAMPLES));
    CHECK(ring_load_read(&a->es.shm->play) == 2 * PERIOD);
    CHECK(atomic_load(&a->es.clipped) == SAMPLES);
    CHECK(underruns(a) == 0);
    engine_get_stats(r.e, &st);
    CHECK(st.clipped == SAMPLES);
    atomic_store(&a->es.mute, false);

    /* Gain 0.25 applied exactly. */
    set_gain(a, 0.25f);
    gen(buf, PERIOD, 2, 21, 0);
    client_write(a, buf, PERIOD);
    rig_cycle(&r);
    float expect[SAMPLES];
    for (int i = 0; i < SAMPLES; i++)
        expect[i] = 0.25f * buf[i];
    CHECK(out_is(r.out, expect, SAMPLES));

    /* Two streams each in range whose sum is not: only the card clips. */
    set_gain(a, 1.0f);
    fill_const(buf, PERIOD, 0.6f, -0.2f);
    client_write(a, buf, PERIOD);
    client_write(b, buf, PERIOD);
    rig_cycle(&r);
    for (int f = 0; f < PERIOD; f++)
        CHECK(r.out[f * 2] == 1.0f && near(r.out[f * 2 + 1], -0.4f));
    CHECK(atomic_load(&a->es.clipped) == SAMPLES && atomic_load(&b->es.clipped) == 0);
    engine_get_stats(r.e, &st);
    CHECK(st.clipped == SAMPLES + PERIOD);
    fill_const(buf, PERIOD, -0.7f, -0.7f);
    client_write(a, buf, PERIOD);
    client_write(b, buf, PERIOD);
    rig_cycle(&r);
    CHECK(out_all(r.out, SAMPLES, -1.0f));
    engine_get_stats(r.e, &st);
    CHECK(st.clipped == 2 * SAMPLES + PERIOD);
    CHECK(underruns(a) == 0 && underruns(b) == 0);

    rig_remove_free(&r, ts, 2);
    rig_finish(&r);
}

static void test_stop_drains(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *t = tstream_new(0, 2, 1024, PERIOD);
    rig_add_start(&r, &t, 1);
    float signal[5 * SAMPLES / 2];
    gen(signal, 5 * PERIOD / 2, 2, 31, 0);
    CHECK(client_write(t, signal, 5 * PERIOD / 2) == 5 * PERIOD / 2);  /* 2.5 periods */
    rig_cycle(&r);
    CHECK(out_is(r.out, signal, SAMPLES));
    int64_t stop = rig_submit(&r, ENGINE_CMD_STOP, t);
    rig_cycle(&r);  /* a full period left to play: draining, no note yet */
    CHECK(r.nnotes == 0 && rig_note(&r, stop) == NULL);
    CHECK(out_is(r.out, signal + SAMPLES, SAMPLES));
    CHECK(atomic_load(&t->es.public_state) == SHM_STATE_DRAINING);
    CHECK(atomic_load(&t->es.shm->counters.state) == SHM_STATE_DRAINING);
    rig_cycle(&r);  /* the ring runs empty in this cycle: the note comes */
    const struct engine_note *n = rig_note(&r, stop);
    CHECK(n && n->type == ENGINE_NOTE_DONE && n->cmd == ENGINE_CMD_STOP &&
          n->state == SHM_STATE_STOPPED && n->stream == &t->es);
    CHECK(out_is(r.out, signal + 2 * SAMPLES, SAMPLES / 2));
    CHECK(out_silent(r.out + SAMPLES / 2, SAMPLES / 2));
    CHECK(underruns(t) == 0);  /* the end of a drain is no underrun */
    CHECK(atomic_load(&t->es.public_state) == SHM_STATE_STOPPED);
    CHECK(atomic_load(&t->es.shm->counters.state) == SHM_STATE_STOPPED);
    rig_cycle(&r);
    CHECK(r.nnotes == 0 && out_silent(r.out, SAMPLES) && underruns(t) == 0);
    CHECK(atomic_load(&t->es.frames) == 5 * PERIOD / 2);

    /* Exactly two periods queued, START and STOP in one batch: the note
     * comes once the ring is found empty, never while frames are left. */
    gen(signal, 2 * PERIOD, 2, 32, 0);
    client_write(t, signal, 2 * PERIOD);
    int64_t start = rig_submit(&r, ENGINE_CMD_START, t);
    stop = rig_submit(&r, ENGINE_CMD_STOP, t);
    rig_cycle(&r);
    CHECK(rig_note(&r, start) && rig_note(&r, stop) == NULL);
    CHECK(out_is(r.out, signal, SAMPLES));
    int stop_cycle = 0;
    for (int k = 2; k <= 4 && !stop_cycle; k++) {
        rig_cycle(&r);
        if (k == 2)
            CHECK(out_is(r.out, signal + SAMPLES, SAMPLES));
        n = rig_note(&r, stop);
        if (n) {
            stop_cycle = k;
            CHECK(n->state == SHM_STATE_STOPPED);
        }
    }
    /* Cycle 2 plays the last frames; the engine notes the drain on cycle 3,
     * the first to find the ring empty. Either is a correct drain. */
    CHECK(stop_cycle == 2 || stop_cycle == 3);
    CHECK(underruns(t) == 0);

    /* STOP with nothing queued, and STOP on a stopped stream: at once. */
    rig_submit(&r, ENGINE_CMD_START, t);
    rig_cycle(&r);
    stop = rig_submit(&r, ENGINE_CMD_STOP, t);
    rig_cycle(&r);
    n = rig_note(&r, stop);
    CHECK(n && n->state == SHM_STATE_STOPPED);
    stop = rig_submit(&r, ENGINE_CMD_STOP, t);
    rig_cycle(&r);
    n = rig_note(&r, stop);
    CHECK(n && n->state == SHM_STATE_STOPPED);
    CHECK(underruns(t) == 0);

    rig_remove_free(&r, &t, 1);
    rig_finish(&r);
}

static void test_abort(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *t = tstream_new(0, 2, 1024, PERIOD);
    rig_add_start(&r, &t, 1);
    float signal[4 * SAMPLES];
    gen(signal, 4 * PERIOD, 2, 41, 0);
    client_write(t, signal, 4 * PERIOD);
    rig_cycle(&r);
    CHECK(out_is(r.out, signal, SAMPLES));
    int64_t abort_id = rig_submit(&r, ENGINE_CMD_ABORT, t);
    rig_cycle(&r);
    const struct engine_note *n = rig_note(&r, abort_id);
    CHECK(n && n->type == ENGINE_NOTE_DONE && n->cmd == ENGINE_CMD_ABORT &&
          n->state == SHM_STATE_STOPPED);
    CHECK(out_silent(r.out, SAMPLES));  /* dropped at once, not played */
    CHECK(ring_load_read(&t->es.shm->play) == 4 * PERIOD);
    CHECK(ring_load_read(&t->es.shm->play) == ring_load_write(&t->es.shm->play));
    CHECK(atomic_load(&t->es.public_state) == SHM_STATE_STOPPED);
    CHECK(underruns(t) == 0);
    rig_cycle(&r);
    CHECK(out_silent(r.out, SAMPLES) && underruns(t) == 0);

    /* Started again: begins with fresh data, not with what was dropped. */
    rig_submit(&r, ENGINE_CMD_START, t);
    rig_cycle(&r);
    CHECK(out_silent(r.out, SAMPLES) && underruns(t) == 0);
    float fresh[SAMPLES];
    gen(fresh, PERIOD, 2, 42, 0);
    client_write(t, fresh, PERIOD);
    rig_cycle(&r);
    CHECK(out_is(r.out, fresh, SAMPLES));
    CHECK(underruns(t) == 0);

    rig_remove_free(&r, &t, 1);
    rig_finish(&r);
}

static void test_remove_and_notes(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *ts[2] = { tstream_new(0, 2, 1024, PERIOD), tstream_new(0, 2, 1024, PERIOD) };
    struct tstream *a = ts[0], *b = ts[1];
    rig_add_start(&r, ts, 2);
    CHECK(r.total_notes == 4);
    float sa[4 * SAMPLES], sb[4 * SAMPLES];
    gen(sa, 4 * PERIOD, 2, 51, 0);
    gen(sb, 4 * PERIOD, 2, 52, 0);
    client_write(a, sa, 4 * PERIOD);
    client_write(b, sb, 4 * PERIOD);
    rig_cycle(&r);
    float expect[SAMPLES];
    for (int i = 0; i < SAMPLES; i++)
        expect[i] = sa[i] + sb[i];
    CHECK(out_is(r.out, expect, SAMPLES));

    int64_t rm = rig_submit(&r, ENGINE_CMD_REMOVE, a);
    rig_cycle(&r);
    CHECK(r.nnotes == 1);
    const struct engine_note *n = rig_note(&r, rm);
    CHECK(n && n->type == ENGINE_NOTE_REMOVED && n->cmd == ENGINE_CMD_REMOVE &&
          n->stream == &a->es && n->state == SHM_STATE_STOPPED);
    CHECK(out_is(r.out, sb + SAMPLES, SAMPLES));  /* gone from the mix at once */
    rig_cycle(&r);
    CHECK(out_is(r.out, sb + 2 * SAMPLES, SAMPLES));
    CHECK(ring_load_read(&a->es.shm->play) == PERIOD);  /* nothing more taken from it */
    CHECK(atomic_load(&a->es.public_state) == SHM_STATE_STOPPED);
    CHECK(underruns(a) == 0 && underruns(b) == 0);
    /* The RT thread is done with it: the loop may free it now. */
    tstream_free(a);

    /* A whole life in one batch: five commands, five notes, in order. */
    struct tstream *c = tstream_new(0, 2, 1024, PERIOD);
    client_write(c, sa, 2 * PERIOD);
    int64_t ids[5];
    ids[0] = rig_submit(&r, ENGINE_CMD_ADD, c);
    ids[1] = rig_submit(&r, ENGINE_CMD_START, c);
    ids[2] = rig_submit(&r, ENGINE_CMD_ABORT, c);
    ids[3] = rig_submit(&r, ENGINE_CMD_STOP, c);
    ids[4] = rig_submit(&r, ENGINE_CMD_REMOVE, c);
    rig_cycle(&r);
    CHECK(r.nnotes == 5);
    for (int i = 0; i < 5 && i < r.nnotes; i++)
        CHECK(r.notes[i].request_id == ids[i]);
    CHECK(r.nnotes == 5 && r.notes[4].type == ENGINE_NOTE_REMOVED &&
          r.notes[3].type == ENGINE_NOTE_DONE && r.notes[3].state == SHM_STATE_STOPPED);
    CHECK(out_is(r.out, sb + 3 * SAMPLES, SAMPLES));  /* c never played */
    tstream_free(c);

    /* Offline (no backend running the cycle): commands still get notes. */
    struct tstream *d = tstream_new(0, 2, 1024, PERIOD);
    rig_submit(&r, ENGINE_CMD_ADD, d);
    int64_t rm_d = rig_submit(&r, ENGINE_CMD_REMOVE, d);
    engine_run_commands_offline(r.e);
    struct engine_note note;
    int offline = 0;
    while (engine_next_note(r.e, &note)) {
        offline++;
        r.total_notes++;
        rig_forget(&r, note.request_id);
        if (note.request_id == rm_d)
            CHECK(note.type == ENGINE_NOTE_REMOVED);
    }
    CHECK(offline == 2);
    tstream_free(d);

    rig_remove_free(&r, &b, 1);
    /* 4 + 1 + 5 + 2 + 1 commands, as many notes and wakeups of the loop. */
    CHECK(r.next_id == 13 && r.total_notes == 13 && r.notifies == 13);
    rig_finish(&r);
}

/* While a STOP waits for its drain, the client may send another command:
 * every one of them must still get exactly one note, or the request never
 * gets its reply and the engine's count of commands in flight leaks. */
static void test_notes_while_draining(void)
{
    static const enum engine_cmd_type follow[] = { ENGINE_CMD_STOP, ENGINE_CMD_START,
                                                   ENGINE_CMD_ABORT, ENGINE_CMD_REMOVE };
    static const char *const names[] = { "STOP", "START", "ABORT", "REMOVE" };
    for (int f = 0; f < 4; f++) {
        struct rig r;
        rig_init(&r);
        struct tstream *t = tstream_new(0, 2, 1024, PERIOD);
        rig_add_start(&r, &t, 1);
        float signal[4 * SAMPLES];
        gen(signal, 4 * PERIOD, 2, 61, 0);
        client_write(t, signal, 4 * PERIOD);
        rig_cycle(&r);
        int64_t stop = rig_submit(&r, ENGINE_CMD_STOP, t);
        rig_cycle(&r);
        CHECK(atomic_load(&t->es.public_state) == SHM_STATE_DRAINING);
        int64_t second = rig_submit(&r, follow[f], t);
        bool stop_noted = false, second_noted = false;
        for (int k = 0; k < 6; k++) {
            rig_cycle(&r);
            stop_noted |= rig_note(&r, stop) != NULL;
            second_noted |= rig_note(&r, second) != NULL;
        }
        CHECK(second_noted);
        if (!stop_noted)
            fprintf(stderr, "  STOP pending its drain, then %s: the STOP's note never came\n",
                    names[f]);
        CHECK(stop_noted);
        rig_forget(&r, stop);  /* reported above; keep rig_finish to the rest */
        if (follow[f] != ENGINE_CMD_REMOVE) {
            rig_submit(&r, ENGINE_CMD_REMOVE, t);
            rig_cycle(&r);
        }
        tstream_free(t);
        rig_finish(&r);
    }

    /* What the lost notes cost: each one is a command counted in flight for
     * ever.  A client repeating start / write / stop / abort (all allowed)
     * fills the engine's budget, and then engine_submit refuses every
     * non-removal command of every client ("the engine is busy"). */
    struct rig r;
    rig_init(&r);
    struct tstream *t = tstream_new(0, 2, 1024, PERIOD);
    rig_add_start(&r, &t, 1);
    r.untracked = true;
    float frame[2] = { 0.1f, 0.1f };
    int refused_at = -1;
    for (int i = 0; i < 5000 && refused_at < 0; i++) {
        static const enum engine_cmd_type seq[] = { ENGINE_CMD_START, ENGINE_CMD_STOP,
                                                    ENGINE_CMD_ABORT };
        client_write(t, frame, 1);
        for (int j = 0; j < 3; j++) {
            struct engine_cmd cmd = { .type = seq[j], .stream = &t->es, .request_id = -1 };
            if (engine_submit(r.e, &cmd, false) < 0) {
                refused_at = i;
                break;
            }
        }
        rig_cycle(&r);  /* every note is taken: nothing is really in flight */
    }
    if (refused_at >= 0)
        fprintf(stderr, "  engine_submit refused after %d start/stop/abort rounds with every "
                        "note taken\n", refused_at);
    CHECK(refused_at < 0);
    struct engine_cmd rm = { .type = ENGINE_CMD_REMOVE, .stream = &t->es, .request_id = -1 };
    CHECK(engine_submit(r.e, &rm, true) == 0);  /* removal still works: reserved slots */
    rig_cycle(&r);
    CHECK(r.nnotes == 1 && r.notes[0].type == ENGINE_NOTE_REMOVED);
    tstream_free(t);
    rig_finish(&r);
}

static void test_capture(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *ts[3] = {
        tstream_new(2, 0, 1024, PERIOD),  /* stereo capture */
        tstream_new(1, 0, 1024, PERIOD),  /* mono capture: channel 0 */
        tstream_new(2, 0, 128, PERIOD),   /* two periods of room, never read */
    };
    struct tstream *st = ts[0], *mono = ts[1], *small = ts[2];
    enum { CYCLES = 4 };
    float input[(CYCLES + 1) * SAMPLES];
    gen(input, (CYCLES + 1) * PERIOD, 2, 71, 0);
    memcpy(r.in, input, sizeof(r.in));
    rig_add_start(&r, ts, 3);  /* capture starts in the cycle of the START */
    CHECK(atomic_load(&st->es.public_state) == SHM_STATE_RUNNING);
    for (int k = 0; k < CYCLES; k++) {
        if (k > 0) {
            memcpy(r.in, input + k * SAMPLES, sizeof(r.in));
            rig_cycle(&r);
        }
        float got[SAMPLES], got_mono[PERIOD];
        CHECK(client_read(st, got, 2 * PERIOD) == PERIOD);
        CHECK(out_is(got, input + k * SAMPLES, SAMPLES));
        CHECK(client_read(mono, got_mono, 2 * PERIOD) == PERIOD);
        bool ok = true;
        for (int f = 0; f < PERIOD; f++)
            ok &= got_mono[f] == input[k * SAMPLES + f * 2];
        CHECK(ok);
        /* The small ring fills in two cycles, then each cycle overruns. */
        CHECK(atomic_load(&small->es.overruns) == (uint64_t)(k < 2 ? 0 : k - 1));
    }
    CHECK(atomic_load(&st->es.overruns) == 0 && atomic_load(&mono->es.overruns) == 0);
    CHECK(atomic_load(&st->es.frames) == CYCLES * PERIOD);
    CHECK(atomic_load(&small->es.frames) == 2 * PERIOD);
    CHECK(atomic_load(&small->es.shm->counters.overruns) == 2);
    /* What a full ring holds is the oldest capture; what did not fit was
     * dropped.  Read one period, and the next cycle fits again. */
    float got[2 * SAMPLES];
    CHECK(client_read(small, got, PERIOD) == PERIOD);
    CHECK(out_is(got, input, SAMPLES));
    memcpy(r.in, input + CYCLES * SAMPLES, sizeof(r.in));
    rig_cycle(&r);
    CHECK(atomic_load(&small->es.overruns) == 2);
    CHECK(client_read(small, got, 2 * PERIOD) == 2 * PERIOD);
    CHECK(out_is(got, input + SAMPLES, SAMPLES));
    CHECK(out_is(got + SAMPLES, input + CYCLES * SAMPLES, SAMPLES));
    /* Capture-only streams leave the card output silent. */
    CHECK(out_silent(r.out, SAMPLES));

    /* Half a period of room: half is written, the period counts an overrun. */
    CHECK(client_read(small, got, PERIOD) == 0);
    rig_cycle(&r);  /* 64 in, 64 room left */
    float half[SAMPLES / 2];
    CHECK(client_read(small, half, PERIOD / 2) == PERIOD / 2);  /* 96 room */
    rig_cycle(&r);  /* 64 of 64 written: 32 room */
    rig_cycle(&r);  /* 32 written, overrun */
    CHECK(atomic_load(&small->es.overruns) == 3);
    CHECK(ring_fill(ring_load_write(&small->es.shm->capture),
                    atomic_load(&small->es.shm->capture.read_index), 128) == 128);

    rig_remove_free(&r, ts, 3);
    rig_finish(&r);
}

static void test_wakeups(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *ts[3] = {
        tstream_new(0, 2, 1024, 256),
        tstream_new(0, 2, 1024, 64),
        tstream_new(2, 0, 1024, 128),  /* capture progress counts too */
    };
    rig_add_start(&r, ts, 3);  /* drains the wakeups the commands gave */
    float signal[8 * SAMPLES];
    gen(signal, 8 * PERIOD, 2, 81, 0);
    client_write(ts[0], signal, 8 * PERIOD);
    client_write(ts[1], signal, 8 * PERIOD);
    uint64_t total[3] = { 0, 0, 0 };
    for (int k = 1; k <= 8; k++) {
        rig_cycle(&r);
        uint64_t w0 = client_wakes(ts[0]), w1 = client_wakes(ts[1]), w2 = client_wakes(ts[2]);
        CHECK(w0 == (k % 4 == 0 ? 1u : 0u));
        CHECK(w1 == 1);
        /* 64 captured already in the START cycle: 128 reached on odd cycles. */
        CHECK(w2 == (k % 2 == 1 ? 1u : 0u));
        float sink[SAMPLES];
        client_read(ts[2], sink, PERIOD);
        total[0] += w0;
        total[1] += w1;
        total[2] += w2;
    }
    CHECK(total[0] == 2 && total[1] == 8 && total[2] == 4);
    rig_remove_free(&r, ts, 3);
    rig_finish(&r);
}

/* The futex wake-up: the same wake-ups as the pipe's, each one step of
 * wake.seq; FUTEX_WAKE only when the client said it sleeps (the engine then
 * clears `waiting`); nothing in the pipe.  And a thread asleep in
 * FUTEX_WAIT is woken by the cycle, every time (no lost wake-up). */
struct sleeper {
    _Atomic uint32_t *seq, *waiting;
    uint32_t seen;
    long result;
    int error;
    _Atomic pid_t tid;
};

static void *sleep_on_futex(void *arg)
{
    struct sleeper *z = arg;
    atomic_store(&z->tid, (pid_t)syscall(SYS_gettid));
    atomic_store(z->waiting, 1);
    if (atomic_load(z->seq) != z->seen) {  /* as libsoundcard: look again after saying so */
        z->result = 0;
        return NULL;
    }
    struct timespec limit = { 5, 0 };
    z->result = syscall(SYS_futex, z->seq, FUTEX_WAIT, z->seen, &limit, NULL, 0);
    z->error = z->result < 0 ? errno : 0;
    return NULL;
}

/* Whether thread `tid` of this process sleeps (state S in its stat line),
 * waiting at most 2 s for it. */
static bool thread_asleep(_Atomic pid_t *tid)
{
    for (int tries = 0; tries < 2000; tries++) {
        struct task t;
        pid_t id = atomic_load(tid);
        if (id && proc_task(getpid(), id, &t) && t.state == 'S')
            return true;
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);  /* polling /proc, which has no event to wait on */
    }
    return false;
}

static void test_futex_wakeups(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *ts[2] = { tstream_new(0, 2, 1024, 256), tstream_new(0, 2, 1024, 64) };
    ts[0]->es.wake_futex = ts[1]->es.wake_futex = true;
    struct shm_wake *w0 = &ts[0]->es.shm->wake, *w1 = &ts[1]->es.shm->wake;
    rig_add_start(&r, ts, 2);
    uint32_t seq0 = atomic_load(&w0->seq), seq1 = atomic_load(&w1->seq);
    CHECK(seq0 >= 2 && seq1 >= 2);  /* ADD and START each woke the client */
    float signal[8 * SAMPLES];
    gen(signal, 8 * PERIOD, 2, 83, 0);
    client_write(ts[0], signal, 8 * PERIOD);
    client_write(ts[1], signal, 8 * PERIOD);
    for (int k = 1; k <= 8; k++) {
        atomic_store(&w1->waiting, (uint32_t)(k % 2));  /* asleep on odd cycles only */
        atomic_store(&w0->waiting, 7);                  /* any non-zero value says asleep */
        rig_cycle(&r);
        CHECK(atomic_load(&w1->seq) == seq1 + (uint32_t)k);
        CHECK(atomic_load(&w0->seq) == seq0 + (uint32_t)(k / 4));
        CHECK(atomic_load(&w1->waiting) == 0);
        CHECK(atomic_load(&w0->waiting) == (k % 4 == 0 ? 0u : 7u));  /* cleared only by a wake-up */
    }
    CHECK(client_wakes(ts[0]) == 0 && client_wakes(ts[1]) == 0);

    /* A real sleeper, 50 times: each returns at once, never by its 5 s limit.
     * A period written before each cycle: every cycle is a wake-up.  Every
     * other time the cycle comes once the sleeper is asleep in FUTEX_WAIT,
     * else whenever it comes (the sleeper may not have got to it yet). */
    float more[SAMPLES];
    gen(more, PERIOD, 2, 84, 0);
    int late = 0;
    for (int k = 0; k < 50; k++) {
        CHECK(client_write(ts[1], more, PERIOD) == PERIOD);
        struct sleeper z = { &w1->seq, &w1->waiting, atomic_load(&w1->seq), 0, 0, 0 };
        pthread_t t;
        CHECK(pthread_create(&t, NULL, sleep_on_futex, &z) == 0);
        if (k % 2 == 0)
            CHECK(thread_asleep(&z.tid));
        rig_cycle(&r);
        pthread_join(t, NULL);
        late += z.result < 0 && z.error == ETIMEDOUT;
    }
    CHECK(late == 0);
    rig_remove_free(&r, ts, 2);
    rig_finish(&r);
}

/* A client scribbles over its own mapping: indices huge, negative, wrapped,
 * header fields wrong, ring full of NaN and 1e30.  The engine stays in
 * bounds (guard pages, ASan), the card stays finite in [-1, 1], and the other
 * stream plays on exactly as before. */
static void test_hostile_shm(void)
{
    struct rig r;
    rig_init(&r);
    enum { CAP = 1024, ROUNDS = 12 };
    struct tstream *victim = tstream_new(0, 2, CAP, PERIOD);
    struct tstream *evil = tstream_new(2, 2, CAP, PERIOD);
    tstream_guard(evil);
    evil->es.wake_futex = true;  /* its wake-up words are scribbled too */
    struct tstream *ts[2] = { victim, evil };
    rig_add_start(&r, ts, 2);

    const float garbage[] = { NAN, 1e30f, -1e30f, INFINITY, -INFINITY, -NAN, 3e38f, -3e38f };
    size_t ring_samples = (size_t)CAP * 2;
    for (size_t i = 0; i < ring_samples; i++)
        evil->es.play_ring[i] = garbage[i % (sizeof(garbage) / sizeof(garbage[0]))];

    float signal[ROUNDS * SAMPLES];
    gen(signal, ROUNDS * PERIOD, 2, 91, 0);
    CHECK(client_write(victim, signal, ROUNDS * PERIOD) == ROUNDS * PERIOD);
    gen(r.in, PERIOD, 2, 92, 0);

    struct shm_header *h = evil->es.shm;
    for (int k = 0; k < ROUNDS; k++) {
        /* The daemon publishes its own index: that is where it really is. */
        uint32_t rd = atomic_load(&h->play.read_index);
        uint32_t cw = atomic_load(&h->capture.write_index);
        uint32_t w;
        switch (k) {
        case 0: w = rd + 0x7fffffffu; break;   /* huge */
        case 1: w = rd - 1; break;             /* negative distance */
        case 2: w = rd + 0x80000000u; break;   /* half the index space */
        case 3: w = UINT32_MAX; break;
        case 4: w = rd + CAP + 1; break;       /* just beyond full */
        case 5: w = rd + CAP; break;           /* full */
        case 6: w = rd + 17; break;            /* partial period */
        case 7: w = rd - 0x7fffffffu; break;
        case 8: w = 0; break;
        default: w = rd + 3u * CAP; break;
        }
        /* What a sane consumer takes from that: the distance clamped to
         * [0, capacity], at most one period. */
        int32_t dist = (int32_t)(w - rd);
        uint32_t taken = dist <= 0 ? 0 : ((uint32_t)dist < PERIOD ? (uint32_t)dist : PERIOD);
        atomic_store(&h->play.write_index, w);
        /* Indices that are the daemon's, and header fields it must not use. */
        atomic_store(&h->play.read_index, 0xdeadbeefu * (uint32_t)k);
        atomic_store(&h->capture.read_index, cw + 0x40000000u * (uint32_t)k);
        atomic_store(&h->capture.write_index, 12345u);
        h->capacity = 0xffffffffu;
        h->output_channels = 64;
        h->input_channels = 64;
        h->play_offset = UINT64_MAX / 2;
        h->capture_offset = 1;
        h->magic = 0;
        atomic_store(&h->counters.state, 0xffu);
        atomic_store(&h->wake.seq, 0xdeadbeefu * (uint32_t)k);
        atomic_store(&h->wake.waiting, k % 2 ? UINT32_MAX : (uint32_t)k);

        uint32_t victim_read = ring_load_read(&victim->es.shm->play);
        rig_cycle(&r);
        CHECK(out_sane(r.out, SAMPLES));
        /* The victim: its period taken, no underrun, nothing clipped. */
        CHECK(ring_load_read(&victim->es.shm->play) == victim_read + PERIOD);
        CHECK(underruns(victim) == 0 && atomic_load(&victim->es.clipped) == 0);
        CHECK(atomic_load(&victim->es.frames) == (uint64_t)(k + 1) * PERIOD);
        /* The daemon took at most one period and put its own index back. */
        CHECK(atomic_load(&h->play.read_index) == rd + taken);
        if (taken == 0)  /* nothing of the evil stream's played: exactly the victim */
            CHECK(out_is(r.out, signal + k * SAMPLES, SAMPLES));
        uint32_t cw2 = atomic_load(&h->capture.write_index);
        CHECK(cw2 - cw <= PERIOD);
    }
    CHECK(underruns(victim) == 0);

    /* NaN and infinities only, huge index: that stream is silence, the card
     * carries exactly the victim. */
    for (size_t i = 0; i < ring_samples; i++)
        evil->es.play_ring[i] = i % 3 == 0 ? NAN : (i % 3 == 1 ? INFINITY : -INFINITY);
    uint32_t rd = atomic_load(&h->play.read_index);
    atomic_store(&h->play.write_index, rd + 0x7ffffff0u);
    float more[2 * SAMPLES];
    gen(more, 2 * PERIOD, 2, 93, 0);
    client_write(victim, more, 2 * PERIOD);
    rig_cycle(&r);
    CHECK(atomic_load(&h->play.read_index) == rd + PERIOD);
    CHECK(out_is(r.out, more, SAMPLES));

    /* Two hostile streams at gain 16 (stream.set accepts 0..16): finite
     * samples whose products overflow to +inf and -inf.  Their sum is NaN,
     * and NaN passes mix_clip to the card (engine.c:200 mix_add ->
     * mix.c:18/26/37; engine.c:312 mix_clip -> mix.c:60-70). */
    struct tstream *h1 = tstream_new(0, 2, CAP, PERIOD), *h2 = tstream_new(0, 2, CAP, PERIOD);
    struct tstream *hs[2] = { h1, h2 };
    rig_add_start(&r, hs, 2);
    float up[SAMPLES], down[SAMPLES];
    fill_const(up, PERIOD, 3e38f, 3e38f);
    fill_const(down, PERIOD, -3e38f, -3e38f);
    set_gain(h1, 16.0f);
    set_gain(h2, 16.0f);
    client_write(h1, up, PERIOD);
    client_write(h2, down, PERIOD);
    client_write(victim, more + SAMPLES, PERIOD);
    rig_cycle(&r);
    CHECK(out_sane(r.out, SAMPLES));
    if (!out_sane(r.out, SAMPLES))
        fprintf(stderr, "  card output sample 0 is %f\n", (double)r.out[0]);
    CHECK(underruns(victim) == 0);

    rig_remove_free(&r, hs, 2);
    rig_remove_free(&r, ts, 2);
    rig_finish(&r);
}

/* Indices that cross 2^32 (a stream that has run for a day) and the ring's
 * end in the same transfer. */
static void test_index_wrap(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *t = tstream_new(2, 2, 1024, PERIOD);
    const uint32_t base = UINT32_MAX - 100;
    t->es.play_read = base;
    t->es.capture_write = base;
    atomic_store(&t->es.shm->play.read_index, base);
    atomic_store(&t->es.shm->play.write_index, base);
    atomic_store(&t->es.shm->capture.read_index, base);
    atomic_store(&t->es.shm->capture.write_index, base);
    float signal[4 * SAMPLES], input[4 * SAMPLES];
    gen(signal, 4 * PERIOD, 2, 101, 0);
    gen(input, 4 * PERIOD, 2, 102, 0);
    CHECK(client_write(t, signal, 4 * PERIOD) == 4 * PERIOD);
    memcpy(r.in, input, sizeof(r.in));
    rig_add_start(&r, &t, 1);
    CHECK(out_is(r.out, signal, SAMPLES));
    for (int k = 1; k < 4; k++) {
        memcpy(r.in, input + k * SAMPLES, sizeof(r.in));
        rig_cycle(&r);
        CHECK(out_is(r.out, signal + k * SAMPLES, SAMPLES));
    }
    CHECK(ring_load_read(&t->es.shm->play) == base + 4 * PERIOD);
    float got[4 * SAMPLES];
    CHECK(client_read(t, got, 4 * PERIOD) == 4 * PERIOD);
    CHECK(out_is(got, input, 4 * SAMPLES));
    CHECK(underruns(t) == 0 && atomic_load(&t->es.overruns) == 0);
    rig_remove_free(&r, &t, 1);
    rig_finish(&r);
}

static void test_timing(void)
{
    struct rig r;
    rig_init(&r);
    struct tstream *t = tstream_new(2, 2, 1024, PERIOD);
    float signal[2 * SAMPLES];
    gen(signal, 2 * PERIOD, 2, 111, 0);
    client_write(t, signal, 2 * PERIOD);
    r.xruns = 7;
    rig_add_start(&r, &t, 1);  /* cycle 0 */
    struct shm_timing_snapshot snap;
    for (int k = 0; k < 4; k++) {
        if (k > 0)
            rig_cycle(&r);
        CHECK(shm_timing_read(&t->es.shm->timing, &snap) == 0);
        /* The daemon's indices at the start of this cycle: the playback ring
         * holds two periods, capture takes one every cycle. */
        uint32_t played = (uint32_t)(k < 2 ? k : 2) * PERIOD;
        CHECK(snap.play_index == played);
        CHECK(snap.capture_index == (uint32_t)k * PERIOD);
        CHECK(snap.card_frame == (uint64_t)k * PERIOD);
        CHECK(snap.period_time_ns == r.time.period_time_ns);
        CHECK(snap.dac_time_ns == r.time.dac_time_ns);
        CHECK(snap.adc_time_ns == r.time.adc_time_ns);
        CHECK(atomic_load(&t->es.shm->timing.seq) == 2u * (uint32_t)(k + 1));
        float sink[SAMPLES];
        CHECK(client_read(t, sink, 2 * PERIOD) == PERIOD);
    }
    struct engine_stats st;
    engine_get_stats(r.e, &st);
    CHECK(st.cycles == 4 && st.card_frames == 4 * PERIOD && st.xruns == 7);
    CHECK(st.load >= 0.0 && st.load < 1.0);
    CHECK(atomic_load(&t->es.shm->counters.card_xruns) == 7);

    /* The card reopened (its own count starts again) after it was lost
     * (one more): the total goes on, and every stream sees it. */
    engine_count_card_fault(r.e);
    r.xruns = 2;
    rig_cycle(&r);
    engine_get_stats(r.e, &st);
    CHECK(st.xruns == 10);
    CHECK(atomic_load(&t->es.shm->counters.card_xruns) == 10);
    float drain[SAMPLES];
    client_read(t, drain, 2 * PERIOD);

    /* A stopped stream's record still moves with the card. */
    rig_submit(&r, ENGINE_CMD_ABORT, t);
    rig_cycle(&r);
    rig_cycle(&r);
    CHECK(shm_timing_read(&t->es.shm->timing, &snap) == 0);
    CHECK(snap.card_frame == 6 * PERIOD && snap.dac_time_ns == r.time.dac_time_ns);
    rig_remove_free(&r, &t, 1);
    rig_finish(&r);
}

int main(void)
{
    test_add_start_underrun();
    test_mix_and_isolation();
    test_gain_mute_clip();
    test_stop_drains();
    test_abort();
    test_remove_and_notes();
    test_notes_while_draining();
    test_capture();
    test_wakeups();
    test_futex_wakeups();
    test_hostile_shm();
    test_index_wrap();
    test_timing();
    return check_summary();
}
