/* Callback mode: one thread per stream, woken by the daemon (its futex word
 * or its pipe), that calls the application's callback with exactly
 * `blocksize` frames whenever a block of input has arrived and/or a block of
 * output fits, so the ring never holds more than the stream's latency
 * budget. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "pipeline.h"

/* Below soundcardd's engine thread (70 by default): the card comes first. */
#define CALLBACK_RT_PRIORITY 60

/* The daemon's counters as the status flags see them: an xrun of the card
 * itself (periods lost by a stall or a failure) is an output underflow and an
 * input overflow of every stream, as PortAudio reports a card's xrun. */
static uint64_t underflows(sc_stream *s)
{
    struct shm_counters *c = &s->shm->counters;
    return atomic_load_explicit(&c->underruns, memory_order_relaxed) +
           (s->play_ring ? atomic_load_explicit(&c->card_xruns, memory_order_relaxed) : 0);
}

static uint64_t overflows(sc_stream *s)
{
    struct shm_counters *c = &s->shm->counters;
    return atomic_load_explicit(&c->overruns, memory_order_relaxed) +
           (s->capture_ring ? atomic_load_explicit(&c->card_xruns, memory_order_relaxed) : 0);
}

/* Underflow/overflow since the last callback. */
static unsigned status_flags(sc_stream *s)
{
    uint64_t under = underflows(s), over = overflows(s);
    unsigned status = 0;
    if (under != s->seen_underruns)
        status |= SC_OUTPUT_UNDERFLOW;
    if (over != s->seen_overruns)
        status |= SC_INPUT_OVERFLOW;
    s->seen_underruns = under;
    s->seen_overruns = over;
    return status;
}

/* For sc_stream_latency() from other threads. */
static void publish_latency(sc_stream *s, const sc_time_info *t)
{
    union { double d; uint64_t u; } in, out;
    sc__latency_from(s, t, &in.d, &out.d);
    atomic_store_explicit(&s->latency_bits[0], in.u, memory_order_relaxed);
    atomic_store_explicit(&s->latency_bits[1], out.u, memory_order_relaxed);
}

/* Whether a whole block can be handled now: its input has arrived and its
 * output fits under the latency budget. */
static bool block_ready(sc_stream *s)
{
    uint32_t b = (uint32_t)s->blocksize;
    if (s->capture_ring && (pipeline_in_in_place(s) ? pipeline_in_ring_fill(s) : pipeline_in_pump(s)) < b)
        return false;
    if (s->play_ring && pipeline_out_in_place(s))
        return pipeline_out_ring_room(s) >= b;
    if (s->play_ring) {
        pipeline_out_pump(s);
        if (pipeline_out_room(s) < (long)b || pipeline_out_space(s) < b)
            return false;
    }
    return true;
}

/* Run every block that is ready; returns the callback's verdict. */
static int run_blocks(sc_stream *s)
{
    uint32_t b = (uint32_t)s->blocksize;
    size_t out_bytes = (size_t)b * s->layout.output_channels * s->sample_bytes;
    bool in_place_in = pipeline_in_in_place(s), in_place_out = pipeline_out_in_place(s);
    while (!atomic_load_explicit(&s->quit, memory_order_relaxed) && block_ready(s)) {
        sc_time_info t;
        sc__time_info(s, &t);
        publish_latency(s, &t);
        const void *in = NULL;
        void *out = NULL;
        if (in_place_in)
            in = pipeline_in_block(s, b);
        else if (s->capture_ring) {
            pipeline_in_take(s, s->cb_in, b);
            in = s->cb_in;
        }
        if (s->play_ring) {
            out = in_place_out ? pipeline_out_block(s, b) : s->cb_out;
            memset(out, 0, out_bytes);  /* a callback that writes nothing plays silence */
        }
        int verdict = s->callback(in, out, b, &t, status_flags(s), s->userdata);
        if (in_place_in)
            pipeline_in_release(s, b);
        if (verdict == SC_ABORT)
            return SC_ABORT;
        if (in_place_out) {
            pipeline_out_commit(s, out, b);
        } else if (s->play_ring) {
            pipeline_out_push(s, s->cb_out, b);
            pipeline_out_pump(s);
        }
        if (verdict != SC_CONTINUE)
            return SC_COMPLETE;
    }
    return SC_CONTINUE;
}

static void *callback_thread(void *arg)
{
    sc_stream *s = arg;
    s->seen_underruns = underflows(s);
    s->seen_overruns = overflows(s);
    for (;;) {
        int verdict = run_blocks(s);
        if (atomic_load(&s->quit))
            return NULL;
        if (verdict != SC_CONTINUE) {
            s->ended = verdict == SC_ABORT ? STREAM_END_ABORT : STREAM_END_COMPLETE;
            sc__end_stream(s, verdict == SC_COMPLETE);
            return NULL;
        }
        if (sc__wait_for_progress(s) < 0) {
            /* The daemon is gone: the stream ends as if aborted. */
            s->ended = STREAM_END_ERROR;
            atomic_store(&s->active, false);
            if (s->finished)
                s->finished(s->userdata);
            return NULL;
        }
    }
}

int sc__callback_start(sc_stream *s)
{
    atomic_store(&s->quit, false);
    s->ended = STREAM_END_NONE;
    /* SCHED_FIFO from the first instruction when the system allows it;
     * otherwise, quietly, a normal thread. */
    struct sched_param param = { .sched_priority = CALLBACK_RT_PRIORITY };
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
    pthread_attr_setschedparam(&attr, &param);
    atomic_store(&s->thread_started, true);
    atomic_store(&s->realtime, true);
    bool rt = pthread_create(&s->thread, &attr, callback_thread, s) == 0;
    pthread_attr_destroy(&attr);
    if (!rt) {
        atomic_store(&s->realtime, false);
        if (pthread_create(&s->thread, NULL, callback_thread, s) != 0) {
            atomic_store(&s->thread_started, false);
            return sc__fail(-EAGAIN, "cannot start the callback thread");
        }
    }

    /* Let the daemon show in stats whether the callback runs realtime. */
    cJSON *req = cJSON_CreateObject(), *reply;
    cJSON_AddStringToObject(req, "op", "stream.set");
    cJSON_AddNumberToObject(req, "stream", s->id);
    cJSON_AddBoolToObject(req, "callback_realtime", atomic_load(&s->realtime));
    sc__call(s->client, req, &reply, NULL, NULL, NULL);
    cJSON_Delete(reply);
    return 0;
}

enum stream_end sc__callback_join(sc_stream *s)
{
    if (!s->thread_started)
        return STREAM_END_NONE;
    atomic_store(&s->quit, true);
    uint64_t one = 1, drained;  /* wake it if it sleeps in sc__wait_for_progress */
    (void)!write(s->quit_fd, &one, sizeof(one));
    sc__wake_waiter(s);
    pthread_join(s->thread, NULL);
    (void)!read(s->quit_fd, &drained, sizeof(drained));  /* a later wait must sleep again */
    s->thread_started = false;
    return s->ended;
}
